"""The ``triton`` backend of the scan contract: a chunked, fused selective scan (CUDA).

Why it is faster than mamba_ssm's one thread block per channel walking the whole sequence: the
sequence is cut into chunks that are walked side by side (a first pass finds each chunk's end
state, a scan over the chunks gives every chunk its start state, a second pass emits y), and the
four directions of SS2D read the feature map in their own order by index arithmetic and add their
outputs into one y: the column directions walk down the (H, W) map, the row directions across
it, forwards and backwards, where the authors' path makes four flipped/transposed copies. The
backward walks the same chunks backwards. The cross-scan works on pixel-major (channels-last)
maps, the layout SS2D computes them in, so a line walk reads whole sectors in every direction.
Kernels and vocabulary (family, group, chunk, lane): ``triton_kernels.py``; the line walks'
backward walk: ``gluon_kernels.py``.

Imports without triton or CUDA; triton is imported on first use. On a CPU the kernels run only
under Triton's interpreter (``TRITON_INTERPRET=1``), which the tests use at tiny sizes.
Inputs in another layout are copied into it: contiguous sequences for the plain scan,
pixel-major maps for the cross-scan.
"""
import contextlib
import dataclasses
import functools
import os

import torch

from ...utils import log_once

__all__ = ['is_available', 'selective_scan', 'cross_selective_scan']

# SS2D asks the backend for its preferred layout: the cross-scan walks pixel-major maps.
prefers_channels_last = True

_LOG2E = 1.4426950408889634


@dataclasses.dataclass
class _Config:
    """Block sizes of the walks (see triton_kernels.py); tuned on an H100 (tools/gpu/).

    A program walks BD channels x NB states x TL lanes. Rows (plain scan): lanes are chunks of
    the flat sequence; lines (cross-scan): lanes are neighbouring lines of a pixel-major map,
    and a lane reads the BD channels (BD * 4 bytes) or NB states of one pixel per step. The
    ``bwd_*`` sizes set the backward's summary pass and the Triton kernel of its walk; the line
    walks' backward walk is the Gluon kernel (``gluon_*``) unless ``gluon`` is off.
    """
    row_tl: int = 16
    row_nb: int = 16
    row_bd: int = 8
    row_warps: int = 4
    col_tl: int = 16
    col_nb: int = 16
    col_bd: int = 16
    col_warps: int = 4
    bwd_row_tl: int = 16
    bwd_col_tl: int = 32
    bwd_nb: int = 8
    bwd_bd: int = 4
    bwd_warps: int = 4
    bwd_waves: int = 4        # backward programs per SM (they loop over the work items)
    waves: int = 8            # aim for waves * SMs forward programs when choosing chunks
    max_row_chunk: int = 256  # steps; bounds the backward's per-program scratch
    # the line walks' backward (pass 3b) by the Gluon kernel (gluon_kernels.py) where Gluon
    # compiles; the environment variable RETINEXMAMBA_TRITON_GLUON=0 keeps the Triton kernel
    gluon: bool = os.environ.get('RETINEXMAMBA_TRITON_GLUON', '1') != '0'
    gluon_bd: int = 4         # Gluon kernel: channels x states of one lane, per thread
    gluon_nb: int = 4
    gluon_max_warps: int = 4  # one lane per thread: up to 32 * 4 lanes per program
    chunk: int = 0            # steps per chunk (multiple of 4); 0 = choose from ``waves``


_config = _Config()


@contextlib.contextmanager
def _override(**sizes):
    """Temporarily change block sizes (tests use tiny blocks; tools/gpu sweeps them)."""
    global _config
    saved = _config
    _config = dataclasses.replace(saved, **sizes)
    try:
        yield
    finally:
        _config = saved


def is_available():
    """True when triton imports and a CUDA device is present."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def _interpreting():
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


@functools.cache
def _has_gluon():
    try:
        from triton.experimental import gluon  # noqa: F401
    except ImportError:
        return False
    return True


def _use_gluon():
    """Whether the line walks' backward runs the Gluon kernel: asked for (the default), Gluon
    is in this triton (3.5+) and compiles for real (Triton's interpreter cannot run it), on an
    NVIDIA GPU (its layout assumes 32-thread warps). Both kernels give the same gradients up to
    fp32 rounding; which one runs is logged once."""
    use = (_config.gluon and _has_gluon() and not _interpreting()
           and torch.version.hip is None)
    log_once(f'triton_scan.gluon.{use}', f'triton scan backend: the line walks\' backward runs '
             f'the {"Gluon" if use else "Triton"} kernel')
    return use


def _kernels():
    from . import triton_kernels
    return triton_kernels


def _pow2(n):
    return 1 << max(0, (int(n) - 1).bit_length())


def _cdiv(a, b):
    return -(-a // b)


def _round_up(a, b):
    return _cdiv(a, b) * b


def _n_sm(device):
    if device.type == 'cuda':
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4


@dataclasses.dataclass(frozen=True)
class _Problem:
    """Sizes and strides (elements) of one call, in the kernels' terms.

    ``u``/``y``/``dy`` are indexed (b, k, d, pixel), with k-stride 0 when the four directions
    share x and add into one y (the cross-scan); ``delta`` (b, k, d, pixel); ``B``/``C``
    (b, k, n, pixel). Pixels of the (H, W) plane (or the L steps) lie in row-major order, one
    pixel stride apart.
    """
    batch: int
    ch: int
    state: int
    height: int
    width: int
    su: tuple
    sd: tuple
    sb: tuple


@dataclasses.dataclass(frozen=True)
class _Launch:
    """One direction family walked one way, for ``nk`` groups k0, k0 + k_step, ...

    ``col``: a line walk (``COL``): down the map's columns, or across its rows when ``across``
    (the row directions of the cross-scan).
    """
    k0: int
    k_step: int
    nk: int
    col: bool
    rev: bool
    across: bool = False


@dataclasses.dataclass(frozen=True)
class _Walk:
    """Where one launch's chunks lie; shared by its forward and backward."""
    col: bool
    ext_a: int      # steps along the scan axis: rows H*W (flat), lines H (or W across)
    chunk: int      # steps per chunk, a multiple of 4
    n_lanes: int    # rows: chunks; lines: W (or H across)
    n_cs: int       # chunks per lane: rows 1; lines ceil(ext_a / chunk)
    s_row: int = 1  # pixels between two steps of a line walk: W (1 across)
    s_lane: int = 1  # pixels between two lanes of a line walk: 1 (W across)

    @property
    def n_ct(self):
        return self.n_lanes * self.n_cs


def _blocks(prob, col, backward):
    cfg = _config
    if backward:
        tl, nb, bd = (cfg.bwd_col_tl if col else cfg.bwd_row_tl), cfg.bwd_nb, cfg.bwd_bd
    elif col:
        tl, nb, bd = cfg.col_tl, cfg.col_nb, cfg.col_bd
    else:
        tl, nb, bd = cfg.row_tl, cfg.row_nb, cfg.row_bd
    return tl, min(nb, _pow2(prob.state)), min(bd, _pow2(prob.ch))


def _plan_walk(prob, launch, device):
    """Chunk length: enough forward programs to fill the GPU, chunks as long as possible."""
    cfg = _config
    tl, nb, bd = _blocks(prob, launch.col, backward=False)
    per_block = prob.batch * launch.nk * _cdiv(prob.state, nb) * _cdiv(prob.ch, bd)
    target = cfg.waves * _n_sm(device)
    if launch.col:
        ext, lanes = prob.height, prob.width
        s_row, s_lane = prob.width, 1
        if launch.across:
            ext, lanes, s_row, s_lane = lanes, ext, s_lane, s_row
        chunks = _cdiv(target, per_block * _cdiv(lanes, tl))
        chunk = cfg.chunk or _round_up(_cdiv(ext, chunks), 4)
        return _Walk(True, ext, chunk, lanes, _cdiv(ext, chunk), s_row, s_lane)
    length = prob.height * prob.width
    chunks = _cdiv(target, per_block) * tl
    chunk = cfg.chunk or min(_round_up(_cdiv(length, chunks), 32), cfg.max_row_chunk)
    return _Walk(False, length, chunk, _cdiv(length, chunk), 1)


def _walk_args(prob, launch, walk, tl, nb, bd):
    n_lb, n_db, n_nb = _cdiv(walk.n_lanes, tl), _cdiv(prob.ch, bd), _cdiv(prob.state, nb)
    items = prob.batch * launch.nk * walk.n_cs * n_lb * n_db * n_nb
    args = (prob.ch, prob.state, walk.ext_a, walk.chunk, walk.n_lanes, walk.n_cs, walk.n_ct,
            walk.s_row, walk.s_lane, n_lb, n_db, n_nb, launch.k0, launch.k_step, launch.nk)
    return items, args


def _combine_chunks(prob, launch, a2, ssum, local, rev):
    """Pass 2: start value of every chunk from the chunks' local summaries."""
    k = _kernels()
    n_ct = local.shape[3]
    start = torch.zeros_like(local)
    nb = min(_pow2(prob.state), 64)
    ncb = max(16, min(_pow2(n_ct), 128))
    n_nb = _cdiv(prob.state, nb)
    grid = (prob.batch * launch.nk * prob.ch * n_nb, )
    k._chunk_combine_kernel[grid](
        a2, ssum, local, start, prob.ch, prob.state, n_ct, _cdiv(n_ct, ncb), launch.k0,
        launch.k_step, launch.nk, n_nb, NB=nb, NCB=ncb, REV=rev, num_warps=4)
    return start


def _summaries(prob, launch, walk, device):
    shape = (prob.batch, launch.nk, prob.ch, walk.n_ct)
    return (torch.empty(shape + (prob.state, ), device=device, dtype=torch.float32),
            torch.empty(shape, device=device, dtype=torch.float32))


def _forward(prob, launch, u, delta, a2, bm, cm, dsk, bias, softplus, y):
    """All forward passes of one launch; returns its walk and chunk start states."""
    k = _kernels()
    cfg = _config
    walk = _plan_walk(prob, launch, u.device)
    tl, nb, bd = _blocks(prob, launch.col, backward=False)
    items, args = _walk_args(prob, launch, walk, tl, nb, bd)
    dummy = a2
    kernel = k._column_walk_kernel if walk.col else k._row_walk_kernel
    consts = dict(NB=nb, TL=tl, BD=bd, REV=launch.rev, HAS_D=dsk is not None,
                  HAS_BIAS=bias is not None, SOFTPLUS=softplus,
                  num_warps=cfg.col_warps if walk.col else cfg.row_warps)
    tensors = (u, delta, a2, bm, cm, dummy if dsk is None else dsk,
               dummy if bias is None else bias)
    strides = (*prob.su, *prob.sd, *prob.sb)
    start = None
    if walk.n_ct > 1:
        hend, ssum = _summaries(prob, launch, walk, u.device)
        kernel[(items, )](*tensors, dummy, dummy, hend, ssum, *args, *strides, EMIT_Y=False,
                          HAS_START=False, **consts)
        start = _combine_chunks(prob, launch, a2, ssum, hend, launch.rev)
    kernel[(items, )](*tensors, y, dummy if start is None else start, dummy, dummy, *args,
                      *strides, EMIT_Y=True, HAS_START=start is not None, **consts)
    return walk, start


def _backward(prob, launch, walk, start, u, delta, a2, bm, cm, dsk, bias, softplus, dy, grads):
    """All backward passes of one launch, adding into the fp32 gradient buffers ``grads``."""
    k = _kernels()
    cfg = _config
    tl, nb, bd = _blocks(prob, walk.col, backward=True)
    items, args = _walk_args(prob, launch, walk, tl, nb, bd)
    dummy = a2
    flags = dict(NB=nb, TL=tl, BD=bd, COL=walk.col, REV=launch.rev, HAS_BIAS=bias is not None,
                 SOFTPLUS=softplus)
    bias_t = dummy if bias is None else bias
    rin = None
    if walk.n_ct > 1:
        rend, ssum = _summaries(prob, launch, walk, u.device)
        k._bwd_summary_kernel[(items, )](delta, a2, cm, bias_t, dy, rend, ssum, *args, *prob.sd,
                                         *prob.sb, *prob.su, **flags, num_warps=cfg.bwd_warps)
        rin = _combine_chunks(prob, launch, a2, ssum, rend, not launch.rev)
    kernel, extra, cells = k._bwd_walk_kernel, dict(num_warps=cfg.bwd_warps), nb
    if walk.col and _use_gluon():
        # one lane per thread, as few warps as the lanes fill (32 lanes per warp)
        from . import gluon_kernels
        warps = min(cfg.gluon_max_warps, max(1, _pow2(walk.n_lanes) // 32))
        tl, nb, bd = 32 * warps, min(cfg.gluon_nb, _pow2(prob.state)), min(cfg.gluon_bd,
                                                                            _pow2(prob.ch))
        items, args = _walk_args(prob, launch, walk, tl, nb, bd)
        flags = dict(NB=nb, TL=tl, BD=bd, REV=launch.rev, HAS_BIAS=bias is not None,
                     SOFTPLUS=softplus)
        kernel = gluon_kernels.bwd_line_walk_kernel
        extra = dict(WARPS=warps, num_warps=warps)
        cells = nb + 4   # a group's entering state and its four steps' step sizes
    programs = max(1, min(items, cfg.bwd_waves * _n_sm(u.device)))
    scratch = torch.empty(programs * (walk.chunk // 4) * bd * cells * tl, device=u.device,
                          dtype=torch.float32)
    du, ddl, db, dc, da, ddsk, dbias = grads
    kernel[(programs, )](
        u, delta, a2, bm, cm, dummy if dsk is None else dsk, bias_t, dy,
        dummy if start is None else start, dummy if rin is None else rin, scratch, du, ddl, db,
        dc, da, dummy if ddsk is None else ddsk, dummy if dbias is None else dbias, items, *args,
        *prob.su, *prob.sd, *prob.sb, *prob.su, **flags, HAS_D=dsk is not None,
        HAS_START=rin is not None, **extra)


class _Scan(torch.autograd.Function):
    """Autograd of both entry points; ``cross`` selects the SS2D layout."""

    @staticmethod
    def forward(ctx, cross, u, delta, A, B, C, D, delta_bias, softplus):
        prob, launches = _plan(cross, u, delta, A, B)
        a2, dsk, bias = _params(A, D, delta_bias)
        # y takes u's layout, so u's strides address both (the kernels add into y)
        y = torch.zeros_like(u, dtype=torch.float32)
        walks, starts = [], []
        for launch in launches:
            walk, start = _forward(prob, launch, u, delta, a2, B, C, dsk, bias, softplus, y)
            walks.append(walk)
            starts.append(start)
        ctx.softplus, ctx.cross, ctx.walks = softplus, cross, walks
        ctx.dtypes = (u.dtype, delta.dtype, A.dtype, B.dtype, C.dtype,
                      None if D is None else D.dtype,
                      None if delta_bias is None else delta_bias.dtype)
        if any(ctx.needs_input_grad[1:8]):
            ctx.save_for_backward(u, delta, a2, B, C, dsk, bias, *starts)
        return y.to(u.dtype)

    @staticmethod
    def backward(ctx, dy):
        u, delta, a2, bm, cm, dsk, bias, *starts = ctx.saved_tensors
        # the kernels write each gradient with its input's strides: dense inputs (B and C may be
        # slices of one projection) and dy in u's layout make zeros_like buffers fit
        layout = dense_pixel_major if ctx.cross else torch.Tensor.contiguous
        delta, bm, cm = (layout(t) for t in (delta, bm, cm))
        dy = _like(dy, u)
        grads = [None if t is None else torch.zeros_like(t, dtype=torch.float32)
                 for t in (u, delta, bm, cm, a2, dsk, bias)]
        prob, launches = _plan(ctx.cross, u, delta, a2, bm)
        for launch, walk, start in zip(launches, ctx.walks, starts):
            _backward(prob, launch, walk, start, u, delta, a2, bm, cm, dsk, bias, ctx.softplus,
                      dy, grads)
        du, ddl, db, dc, da, ddsk, dbias = grads
        ordered = (du, ddl, da, db, dc, ddsk, dbias)
        return (None, *[None if g is None else g.to(t) for g, t in zip(ordered, ctx.dtypes)],
                None)


def _plan(cross, u, delta, A, B):
    """The problem and launches of one call. The cross-scan walks each of its four directions
    as lines of the map, reading delta, B and C of that direction in place: columns (1, 3) down
    the map, rows (0, 2) across it; 2 and 3 backwards."""
    batch, groups, state = B.shape[0], B.shape[1], B.shape[2]
    ch = A.shape[0] // groups
    if not cross:
        def per_group(t):  # (b, K*D, L) -> strides (b, k, d, step)
            return (t.stride(0), ch * t.stride(1), t.stride(1), t.stride(2))

        prob = _Problem(batch, ch, state, 1, u.shape[2], su=per_group(u), sd=per_group(delta),
                        sb=B.stride())
        return prob, (_Launch(0, 1, groups, col=False, rev=False), )
    height, width = u.shape[2], u.shape[3]
    # u (and y, dy) has no direction axis: k-stride 0
    prob = _Problem(batch, ch, state, height, width, su=(u.stride(0), 0, u.stride(1), u.stride(3)),
                    sd=_flat_plane(delta), sb=_flat_plane(B))
    launches = tuple(_Launch(k, 1, 1, col=True, rev=k >= 2, across=k % 2 == 0)
                     for k in range(4))
    return prob, launches


def _flat_plane(t):
    """Strides (b, k, d, pixel) of a (b, k, d, H, W) map whose pixels lie row-major."""
    return (t.stride(0), t.stride(1), t.stride(2), t.stride(4))


def _pixel_major(t):
    """``t`` (b, ..., c, H, W) laid out pixel-major: pixels row-major, the c values of a pixel
    contiguous (channels-last). Copied only when it is not so already; a slice along c of a
    pixel-major tensor is kept (SS2D's B and C are slices of one projection)."""
    if t.stride(-2) == t.shape[-1] * t.stride(-1) and t.stride(-3) == 1 \
            and t.stride(-1) >= t[0].numel() // (t.shape[-1] * t.shape[-2]):
        return t
    return dense_pixel_major(t)


def dense_pixel_major(t):
    """``t`` as a dense pixel-major tensor (a no-op when it is one); also what the tools use to
    lay out test inputs the way SS2D hands them over."""
    order = (0, t.dim() - 2, t.dim() - 1, *range(1, t.dim() - 2))
    back = [order.index(i) for i in range(t.dim())]
    return t.permute(order).contiguous().permute(back)


def _like(t, ref):
    """``t`` with ``ref``'s strides (a copy only when they differ)."""
    if t.stride() == ref.stride():
        return t
    return torch.empty_like(ref, dtype=t.dtype).copy_(t)


def _params(A, D, delta_bias):
    a2 = (A.float() * _LOG2E).contiguous()
    dsk = None if D is None else D.float().contiguous()
    bias = None if delta_bias is None else delta_bias.float().contiguous()
    return a2, dsk, bias


def _check_device(*tensors):
    for t in tensors:
        if t is None:
            continue
        if t.device.type != 'cuda' and not _interpreting():
            raise ValueError(f'triton scan backend: tensors must be on a CUDA device, got '
                             f'{t.device} (set TRITON_INTERPRET=1 to run the kernels on CPU).')


def _expect(name, t, shape):
    if t is None:
        return
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f'triton scan backend: {name} has shape {tuple(t.shape)}, expected '
                         f'{tuple(shape)} (see retinexmamba_mm/ops/selective_scan/__init__.py).')


def _contig(*tensors):
    return [None if t is None else t.contiguous() for t in tensors]


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """Selective scan over (batch, K*D, L) in K groups; see the contract in ``__init__.py``."""
    if u.dim() != 3 or B.dim() != 4:
        raise ValueError('triton scan backend: expected u (batch, K*D, L) and B (batch, K, N, L), '
                         f'got u {tuple(u.shape)} and B {tuple(B.shape)}.')
    batch, kd, length = u.shape
    groups, state = B.shape[1], B.shape[2]
    if kd % groups:
        raise ValueError(f'triton scan backend: u has {kd} channels, not a multiple of the '
                         f'{groups} groups of B.')
    _expect('delta', delta, u.shape)
    _expect('A', A, (kd, state))
    _expect('B', B, (batch, groups, state, length))
    _expect('C', C, (batch, groups, state, length))
    _expect('D', D, (kd, ))
    _expect('delta_bias', delta_bias, (kd, ))
    _check_device(u, delta, A, B, C, D, delta_bias)
    u, delta, B, C = _contig(u, delta, B, C)
    return _Scan.apply(False, u, delta, A, B, C, D, delta_bias, bool(delta_softplus))


def cross_selective_scan(x, delta, A, B, C, D, delta_bias, delta_softplus=True):
    """The SS2D core (four-direction scan and merge); see the contract in ``__init__.py``."""
    if x.dim() != 4 or B.dim() != 5 or B.shape[1] != 4:
        raise ValueError('triton scan backend: expected x (batch, D, H, W) and B '
                         f'(batch, 4, N, H, W), got x {tuple(x.shape)} and B {tuple(B.shape)}.')
    batch, ch, height, width = x.shape
    state = B.shape[2]
    _expect('delta', delta, (batch, 4, ch, height, width))
    _expect('A', A, (4 * ch, state))
    _expect('B', B, (batch, 4, state, height, width))
    _expect('C', C, (batch, 4, state, height, width))
    _expect('D', D, (4 * ch, ))
    _expect('delta_bias', delta_bias, (4 * ch, ))
    _check_device(x, delta, A, B, C, D, delta_bias)
    x = dense_pixel_major(x)
    delta, B, C = (_pixel_major(t) for t in (delta, B, C))
    if B.stride() != C.stride():
        B, C = dense_pixel_major(B), dense_pixel_major(C)
    return _Scan.apply(True, x, delta, A, B, C, D, delta_bias, bool(delta_softplus))
