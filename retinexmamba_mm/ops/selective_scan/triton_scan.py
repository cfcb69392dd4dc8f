"""The ``triton`` backend of the scan contract: a chunked, fused selective scan (CUDA).

Why it is faster than mamba_ssm's one thread block per channel walking the whole sequence: the
sequence is cut into chunks that are walked side by side (a first pass finds each chunk's end
state, a scan over the chunks gives every chunk its start state, a second pass emits y), and the
four directions of SS2D read the (H, W) feature map in their own order by index arithmetic and add
their outputs into one y, so the flipped/transposed copies of the authors' path never exist. The
backward walks the same chunks backwards. Kernels and vocabulary (family, group, chunk, lane):
``triton_kernels.py``.

Imports without triton or CUDA; triton is imported on first use. On a CPU the kernels run only
under Triton's interpreter (``TRITON_INTERPRET=1``), which the tests use at tiny sizes.
Non-contiguous inputs are copied (the spatial plane must be contiguous).
"""
import contextlib
import dataclasses
import os

import torch

__all__ = ['is_available', 'selective_scan', 'cross_selective_scan']

_LOG2E = 1.4426950408889634


@dataclasses.dataclass
class _Config:
    """Block sizes of the walks (see triton_kernels.py); tuned on an H100 (tools/gpu/).

    A program walks BD channels x NB states x TL lanes. Rows: lanes are chunks of the flat
    sequence; columns: lanes are neighbouring columns (TL * 4 bytes per coalesced row load).
    """
    row_tl: int = 16
    row_nb: int = 16
    row_bd: int = 8
    row_warps: int = 4
    col_tl: int = 32
    col_nb: int = 16
    col_bd: int = 8
    col_warps: int = 4
    bwd_row_tl: int = 16
    bwd_col_tl: int = 16
    bwd_nb: int = 8
    bwd_bd: int = 4
    bwd_warps: int = 4
    bwd_waves: int = 4        # backward programs per SM (they loop over the work items)
    waves: int = 8            # aim for waves * SMs forward programs when choosing chunks
    max_row_chunk: int = 256  # steps; bounds the backward's per-program scratch
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

    ``u``/``y``/``dy`` are indexed (b, k, d), with k-stride 0 when the four directions share x
    and add into one y (the cross-scan); ``delta`` (b, k, d); ``B``/``C`` (b, k, n). The spatial
    plane (H*W, or L) is contiguous.
    """
    batch: int
    groups: int
    ch: int
    state: int
    height: int
    width: int
    su: tuple
    sd: tuple
    sb: tuple


@dataclasses.dataclass(frozen=True)
class _Launch:
    """One direction family walked one way, for ``nk`` groups k0, k0 + k_step, ..."""
    k0: int
    k_step: int
    nk: int
    col: bool
    rev: bool


@dataclasses.dataclass(frozen=True)
class _Walk:
    """Where one launch's chunks lie; shared by its forward and backward."""
    col: bool
    ext_a: int      # steps along the scan axis: rows H*W (flat), columns H
    chunk: int      # steps per chunk, a multiple of 4
    n_lanes: int    # rows: chunks; columns: W
    n_cs: int       # chunks per lane: rows 1; columns ceil(H / chunk)
    stride: int     # plane offset of one step: columns W (rows: 1, unused)

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
        height, width = prob.height, prob.width
        chunks = _cdiv(target, per_block * _cdiv(width, tl))
        chunk = cfg.chunk or _round_up(_cdiv(height, chunks), 4)
        return _Walk(True, height, chunk, width, _cdiv(height, chunk), width)
    length = prob.height * prob.width
    chunks = _cdiv(target, per_block) * tl
    chunk = cfg.chunk or min(_round_up(_cdiv(length, chunks), 32), cfg.max_row_chunk)
    return _Walk(False, length, chunk, _cdiv(length, chunk), 1, 1)


def _walk_args(prob, launch, walk, tl, nb, bd):
    n_lb, n_db, n_nb = _cdiv(walk.n_lanes, tl), _cdiv(prob.ch, bd), _cdiv(prob.state, nb)
    items = prob.batch * launch.nk * walk.n_cs * n_lb * n_db * n_nb
    args = (prob.ch, prob.state, walk.ext_a, walk.chunk, walk.n_lanes, walk.n_cs, walk.n_ct,
            walk.stride, n_lb, n_db, n_nb, launch.k0, launch.k_step, launch.nk)
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
    programs = max(1, min(items, cfg.bwd_waves * _n_sm(u.device)))
    scratch = torch.empty(programs * (walk.chunk // 4) * bd * nb * tl, device=u.device,
                          dtype=torch.float32)
    du, ddl, db, dc, da, ddsk, dbias = grads
    k._bwd_walk_kernel[(programs, )](
        u, delta, a2, bm, cm, dummy if dsk is None else dsk, bias_t, dy,
        dummy if start is None else start, dummy if rin is None else rin, scratch, du, ddl, db,
        dc, da, dummy if ddsk is None else ddsk, dummy if dbias is None else dbias, items, *args,
        *prob.su, *prob.sd, *prob.sb, *prob.su, **flags, HAS_D=dsk is not None,
        HAS_START=rin is not None, num_warps=cfg.bwd_warps)


class _Scan(torch.autograd.Function):
    """Autograd of both entry points; ``cross`` selects the SS2D layout."""

    @staticmethod
    def forward(ctx, cross, u, delta, A, B, C, D, delta_bias, softplus):
        prob, launches = _plan(cross, u, delta, A, B)
        a2, dsk, bias = _params(A, D, delta_bias)
        y = torch.zeros(u.shape, device=u.device, dtype=torch.float32)
        walks, starts = zip(*[_forward(prob, launch, u, delta, a2, B, C, dsk, bias, softplus, y)
                              for launch in launches])
        ctx.softplus, ctx.prob, ctx.launches, ctx.walks = softplus, prob, launches, walks
        ctx.dtypes = (u.dtype, delta.dtype, A.dtype, B.dtype, C.dtype,
                      None if D is None else D.dtype,
                      None if delta_bias is None else delta_bias.dtype)
        if any(ctx.needs_input_grad[1:8]):
            ctx.save_for_backward(u, delta, a2, B, C, dsk, bias, *starts)
        return y.to(u.dtype)

    @staticmethod
    def backward(ctx, dy):
        u, delta, a2, bm, cm, dsk, bias, *starts = ctx.saved_tensors
        dy = dy.contiguous()
        f32 = dict(device=u.device, dtype=torch.float32)
        grads = (torch.zeros(u.shape, **f32), torch.zeros(delta.shape, **f32),
                 torch.zeros(bm.shape, **f32), torch.zeros(cm.shape, **f32),
                 torch.zeros(a2.shape, **f32),
                 torch.zeros(dsk.shape, **f32) if dsk is not None else None,
                 torch.zeros(bias.shape, **f32) if bias is not None else None)
        for launch, walk, start in zip(ctx.launches, ctx.walks, starts):
            _backward(ctx.prob, launch, walk, start, u, delta, a2, bm, cm, dsk, bias,
                      ctx.softplus, dy, grads)
        du, ddl, db, dc, da, ddsk, dbias = grads
        ordered = (du, ddl, da, db, dc, ddsk, dbias)
        return (None, *[None if g is None else g.to(t) for g, t in zip(ordered, ctx.dtypes)],
                None)


def _plan(cross, u, delta, A, B):
    batch, groups, state = B.shape[0], B.shape[1], B.shape[2]
    height, width = (u.shape[2], u.shape[3]) if cross else (1, u.shape[2])
    ch = A.shape[0] // groups
    plane = height * width
    if cross:
        prob = _Problem(batch, groups, ch, state, height, width,
                        su=(ch * plane, 0, plane), sd=(groups * ch * plane, ch * plane, plane),
                        sb=(groups * state * plane, state * plane, plane))
        launches = (_Launch(0, 1, 1, col=False, rev=False), _Launch(1, 1, 1, col=True, rev=False),
                    _Launch(2, 1, 1, col=False, rev=True), _Launch(3, 1, 1, col=True, rev=True))
    else:
        prob = _Problem(batch, groups, ch, state, height, width,
                        su=(groups * ch * plane, ch * plane, plane),
                        sd=(groups * ch * plane, ch * plane, plane),
                        sb=(groups * state * plane, state * plane, plane))
        launches = (_Launch(0, 1, groups, col=False, rev=False), )
    return prob, launches


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
    x, delta, B, C = _contig(x, delta, B, C)
    return _Scan.apply(True, x, delta, A, B, C, D, delta_bias, bool(delta_softplus))
