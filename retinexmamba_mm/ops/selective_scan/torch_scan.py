"""The ``torch`` backend: a portable selective scan in plain PyTorch, the reference backend.

Why it looks the way it does (a 400x600 image gives sequences of 240,000 steps, and the model's
scans touch ~1.4e10 (channel, state, step) elements, so every pass over them counts):

* Time-major layout. Inside, the sequence is the outermost axis and one time step of every
  independent chain (batch x group x state x channel) is one contiguous slab, so the recurrence
  is one fused multiply-add per step over a whole slab. SS2D's four directions are laid out once
  in the order each reads (two of them reversed), so all four advance in the same steps.
* Block-sequential. The sequence is cut into blocks of T steps (T x slab ~ ``BLOCK_ELEMENTS``).
  Per block, everything that does not depend on the previous step is vectorised over the block:
  the decays ``exp2(delta * A * log2 e)`` (one exp per element; the exponent is <= 0 for
  delta >= 0 and A <= 0, so decays stay in [0, 1]: nothing overflows however long the sequence
  or however extreme delta and A), the inputs ``delta * u * B`` and, at the end, the contraction
  with C as one batched matmul. Only ``h_t = decay_t * h_{t-1} + input_t`` runs step by step,
  in place: the plain recurrence in fp32, with no exp of a positive number and no division.
  At the model's sizes (batch 1: slabs of 5k-80k elements, all four directions together) that is
  one fused op per step, 0.3-0.9 ns per element (a quarter to a third of the scan's time; the
  exp is the largest share); smaller slabs, where call overhead would dominate, run the block's
  steps in pairs or as ~sqrt(T) segments advanced together (``_recur_pairs``,
  ``_recur_segments``). On a GPU, where each op is a kernel launch, blocks are larger and the
  forward always runs as segments.
* Backward is written out (``_ScanFunction``): the forward pass saves the state entering every
  ~sqrt(L)-step segment (so memory grows like sqrt(L) slabs, not L); backward revisits the
  segments in reverse, recomputes their states and runs the adjoint state backwards with the same
  fused multiply-add. Under ``torch.no_grad`` nothing is saved.

State layout inside a block: (T, batch, K, N, D), state before channel, so contracting with C
is a (1 x N) @ (N x D) matmul per (step, batch, group).
Accumulation is fp32 (float64 inputs are computed in float64, which the tests use).
"""
import functools
import math

import torch
import torch.nn.functional as F

from .dispatch import needs_grad

__all__ = ['is_available', 'selective_scan', 'cross_selective_scan']

# SS2D asks the backend for its preferred layout: from a channels-last feature map the row-major
# directions are read sequentially here.
prefers_channels_last = True

_LOG2E = 1.0 / math.log(2.0)
# Elements (steps x slab) per block. Larger blocks mean fewer Python-level ops; ~2^19 (2 MiB per
# fp32 buffer) measured fastest on a 2-core EPYC (the working set then lives in L2/L3).
BLOCK_ELEMENTS = 1 << 19
# Small slabs make each sequential step mostly call overhead: below these sizes the recurrence
# runs in pairs of steps (``_recur_pairs``) or in ~sqrt(T) segments of the block at once
# (``_recur_segments``). Thresholds measured on a 2-core EPYC (ns per element, blocks of 2^19):
# slab 256: 12.1 step by step, 6.8 pairs, 2.7 segments; 2048: 1.85, 1.29, 1.35;
# 5120: 0.89, 0.78, 1.09; 10240: 0.57, 0.63, 0.93.
SEGMENTED_BELOW = 1 << 11
PAIRED_BELOW = 1 << 13
# On a GPU every op is a kernel launch of ~10 us whatever its size, so blocks are large (64 MiB
# per fp32 buffer) and the forward recurrence always runs as segments: ~3 sqrt(T) launches per
# block instead of T.
GPU_BLOCK_ELEMENTS = 1 << 24


def is_available():
    return True


class _Blocks:
    """Shapes of one scan and its block partition (shared by the forward and backward passes).

    du, delta: (L, b, K, D); B, C: (L, b, K, N); A: (K, D, N) natural base.
    """

    def __init__(self, du, A, steps=None):
        self.length, self.batch, self.groups, self.channels = du.shape
        self.state = A.shape[-1]
        self.a2 = (A * _LOG2E).transpose(1, 2).contiguous()       # (K, N, D), base 2
        self.slab = slab = self.batch * self.groups * self.state * self.channels
        self.on_gpu = du.device.type != 'cpu'
        budget = GPU_BLOCK_ELEMENTS if self.on_gpu else BLOCK_ELEMENTS
        self.steps = max(1, min(self.length, steps or budget // slab))
        self.shape = (self.steps, self.batch, self.groups, self.state, self.channels)

    def segment_len(self):
        """Steps between saved states for backward: ~sqrt(L), a multiple of the block length,
        so saved states and the backward's buffers both stay ~sqrt(L) slabs."""
        return self.steps * max(1, round(math.sqrt(self.length) / self.steps))

    def __iter__(self):
        for index, t0 in enumerate(range(0, self.length, self.steps)):
            yield index, t0, min(self.steps, self.length - t0)

    def rows(self, n):
        """(n, b, K) folded into one batch axis for bmm."""
        return n * self.batch * self.groups

    def decays_and_inputs(self, du, delta, B, t0, n, dA, hs):
        """dA[:n] = exp(delta A) and hs[:n] = (delta u) B for steps t0 .. t0+n-1."""
        torch.mul(delta[t0:t0 + n, :, :, None, :], self.a2, out=dA[:n])
        dA[:n].exp2_()
        torch.mul(du[t0:t0 + n, :, :, None, :], B[t0:t0 + n, :, :, :, None], out=hs[:n])


class _StepViews:
    """Per-step views of the reused block buffers, made once per scan and looked up by memory
    location and layout: unbinding a block into its steps anew costs ~1.5 us per step, a third
    of the recurrence itself."""

    def __init__(self):
        self._views = {}

    def __call__(self, t, dim=0):
        key = (t.data_ptr(), t.shape, t.stride(), dim)
        views = self._views.get(key)
        if views is None:
            views = self._views[key] = t.unbind(dim)
        return views


def _in_order(targets):
    """True when one CPU foreach call may run a sequential recurrence over ``targets``: PyTorch
    runs CPU foreach ops as a loop over the list in order (its fused kernels are CUDA-only),
    which ``_foreach_runs_in_order`` checks once per process."""
    return bool(targets) and targets[0].device.type == 'cpu' and _foreach_runs_in_order()


@functools.cache
def _foreach_runs_in_order():
    """Both foreach ops used here, on a running sum (1, 2, 3, 4) and a running product."""
    sums, products = torch.ones(4, 3), torch.full((4, 3), 2.0)
    steps = list(sums.unbind(0))
    torch._foreach_addcmul_(steps[1:], steps[:-1], [torch.ones(3)] * 3)
    steps = list(products.unbind(0))
    torch._foreach_mul_(steps[1:], steps[:-1])
    return (torch.equal(sums[:, 0], torch.tensor([1.0, 2.0, 3.0, 4.0]))
            and torch.equal(products[:, 0], torch.tensor([2.0, 4.0, 8.0, 16.0])))


def _in_order_multiply_add(targets, sources, factors):
    """``targets[i] += sources[i] * factors[i]`` for i = 0, 1, ... in order, where a source may
    be the target before it: the recurrence's sequential steps, in one call on the CPU (no
    Python overhead per step), else a Python loop."""
    if _in_order(targets):
        torch._foreach_addcmul_(targets, sources, factors)
        return
    for target, source, factor in zip(targets, sources, factors):
        target.addcmul_(source, factor)


def _in_order_multiply(targets, factors):
    """``targets[i] *= factors[i]`` in order (a running product); see above."""
    if _in_order(targets):
        torch._foreach_mul_(targets, factors)
        return
    for target, factor in zip(targets, factors):
        target.mul_(factor)


def _recur(hs, dA, h, steps):
    """In place: hs[t] += dA[t] * hs[t-1] (hs[-1] = h, the state entering the block)."""
    slabs, decays = steps(hs), steps(dA)
    if h is not None:
        slabs[0].addcmul_(h, decays[0])
    _in_order_multiply_add(slabs[1:], slabs[:-1], decays[1:])


def _recur_pairs(hs, dA, h, steps):
    """``_recur`` with half the sequential steps, for small slabs (whose per-step cost is
    mostly call overhead): combine steps in pairs with whole-block ops, run the recurrence over
    the pairs, then fill in the even steps with one more whole-block op. Overwrites dA."""
    n = hs.shape[0]
    if h is not None:
        hs[0].addcmul_(h, dA[0])
    m = n - n % 2
    if m >= 2:
        hs[1:m:2].addcmul_(dA[1:m:2], hs[0:m:2])   # h_2i+1 from h_2i inside each pair
        dA[1:m:2].mul_(dA[0:m:2])                  # decay across a pair
        _recur(hs[1:m:2], dA[1:m:2], None, steps)   # odd steps: h_2i+1 += decay * h_2i-1
        hs[2:m:2].addcmul_(dA[2:m:2], hs[1:m - 1:2])  # even steps from the odd before them
    if 0 < m < n:
        hs[m].addcmul_(dA[m], hs[m - 1])


def _recur_segments(hs, dA, h, steps):
    """``_recur`` with ~2 sqrt(T) sequential steps, for very small slabs: the block's T steps are
    cut into P segments of S steps; all segments advance together from a zero start while their
    decays accumulate, a P-step pass gives each segment its true start state, and one
    whole-block op adds each start state times the accumulated decays. Overwrites dA."""
    n = hs.shape[0]
    size = max(2, math.isqrt(n))
    segments = n // size
    if segments < 2:
        _recur(hs, dA, h, steps)
        return
    m = segments * size
    states, decays = hs[:m].unflatten(0, (segments, size)), dA[:m].unflatten(0, (segments, size))
    if h is not None:
        states[0, 0].addcmul_(h, decays[0, 0])
    state_steps, decay_steps = steps(states, 1), steps(decays, 1)   # (segments, ...) per step
    _in_order_multiply_add(state_steps[1:], state_steps[:-1], decay_steps[1:])
    _in_order_multiply(decay_steps[1:], decay_steps[:-1])   # decay since the segment's start
    start, starts = states[0, -1], [states[0, -1]]
    for p in range(1, segments - 1):
        start = torch.addcmul(states[p, -1], decays[p, -1], start)
        starts.append(start)
    states[1:].addcmul_(decays[1:], torch.stack(starts)[:, None])
    if m < n:
        _recur(hs[m:], dA[m:], hs[m - 1], steps)


def _scan_forward(blocks, du, delta, B, C, segment_starts=None, segment=0, out=None):
    """y (L, b, K, D) of the recurrence, without the D term; see ``_ScanFunction``. With
    ``segment_starts`` (a list), the state entering every ``segment``-th step is appended.
    ``out`` may be ``du`` itself: each block reads its steps of du before writing them."""
    y = du.new_empty(du.shape) if out is None else out
    dA = du.new_empty(blocks.shape)
    states = [du.new_empty(blocks.shape) for _ in range(2)]
    state, channels = blocks.state, blocks.channels
    recur = (_recur_segments if blocks.slab < SEGMENTED_BELOW or blocks.on_gpu else
             _recur_pairs if blocks.slab < PAIRED_BELOW else _recur)
    steps = _StepViews()
    h = None
    for index, t0, n in blocks:
        hs = states[index % 2]
        blocks.decays_and_inputs(du, delta, B, t0, n, dA, hs)
        if segment_starts is not None and t0 and t0 % segment == 0:
            segment_starts.append(h.clone())
        recur(hs[:n], dA[:n], h, steps)
        rows = blocks.rows(n)
        torch.bmm(C[t0:t0 + n].view(rows, 1, state), hs[:n].view(rows, state, channels),
                  out=y[t0:t0 + n].view(rows, 1, channels))
        h = hs[n - 1]
    return y


def _scan_backward(blocks, grad_y, du, delta, A, B, C, segment_starts):
    """Gradients of sum(grad_y * y) w.r.t. du, delta (through the decays), A, B and C.

    ``blocks`` cuts the sequence into the forward pass's segments; ``segment_starts`` holds the
    state entering each segment but the first. Each segment's states are recomputed, then the
    adjoint runs back through it."""
    state, channels = blocks.state, blocks.channels
    a_nat = A.transpose(1, 2).contiguous()                        # (K, N, D)
    grad_du, grad_delta = torch.empty_like(du), torch.empty_like(delta)
    grad_B, grad_C = torch.empty_like(B), torch.empty_like(C)
    grad_a = torch.zeros_like(a_nat)
    dA, hs, adj = (du.new_empty(blocks.shape) for _ in range(3))
    views = _StepViews()
    carry = None  # decay[t1] * adjoint[t1] from the block after this one
    for index, t0, n in reversed(list(blocks)):
        d_, h_, g_ = dA[:n], hs[:n], adj[:n]
        rows, steps = blocks.rows(n), slice(t0, t0 + n)
        h0 = segment_starts[index - 1] if index else None
        blocks.decays_and_inputs(du, delta, B, t0, n, dA, hs)
        _recur(h_, d_, h0, views)
        gy = grad_y[steps]
        # grad C_t[n] = sum_d h_t[n, d] gy_t[d]
        torch.bmm(h_.view(rows, state, channels), gy.reshape(rows, channels, 1),
                  out=grad_C[steps].view(rows, state, 1))
        # adjoint: g_t = C_t gy_t + decay_{t+1} g_{t+1}, backwards through the block
        torch.mul(C[steps, :, :, :, None], gy[:, :, :, None, :], out=g_)
        slabs, decays = views(g_), views(d_)
        if carry is not None:
            slabs[n - 1].add_(carry)
        _in_order_multiply_add(slabs[:-1][::-1], slabs[1:][::-1], decays[1:][::-1])
        carry = slabs[0] * decays[0]
        # through the inputs (delta u) B
        g_rows = g_.view(rows, state, channels)
        torch.bmm(B[steps].view(rows, 1, state), g_rows,
                  out=grad_du[steps].view(rows, 1, channels))
        torch.bmm(g_rows, du[steps].view(rows, channels, 1), out=grad_B[steps].view(rows, state, 1))
        # through the decays exp(delta A): q_t = g_t * h_{t-1} * decay_t  (reuses dA)
        d_.mul_(g_)
        d_[1:].mul_(h_[:n - 1])
        if h0 is None:
            d_[0].zero_()
        else:
            d_[0].mul_(h0)
        grad_a.add_((d_ * delta[steps, :, :, None, :]).sum((0, 1)))
        d_.mul_(a_nat)
        torch.sum(d_, dim=3, out=grad_delta[steps])
    return grad_du, grad_delta, grad_a.transpose(1, 2), grad_B, grad_C


class _ScanFunction(torch.autograd.Function):
    """The recurrence core with a hand-written backward.

    Inputs (time-major, compute dtype, contiguous): du = delta * u and delta (L, b, K, D),
    A (K, D, N), B and C (L, b, K, N). Output y (L, b, K, D) without the D term. The state
    entering every ~sqrt(L)-step segment is saved (memory ~sqrt(L) slabs); backward recomputes
    each segment's states from it.
    """

    @staticmethod
    def forward(ctx, du, delta, A, B, C):
        blocks = _Blocks(du, A)
        ctx.segment = blocks.segment_len()
        starts = []
        y = _scan_forward(blocks, du, delta, B, C, starts, ctx.segment)
        starts = torch.stack(starts) if starts else du.new_empty(0)
        ctx.save_for_backward(du, delta, A, B, C, starts)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        du, delta, A, B, C, starts = ctx.saved_tensors
        return _scan_backward(_Blocks(du, A, steps=ctx.segment), grad_y.contiguous(), du,
                              delta, A, B, C, list(starts.unbind(0)))


def _activate(delta, bias, delta_softplus, grad, own):
    """delta + bias (broadcast to delta), then PyTorch's softplus. Overwrites delta only when it
    is ``own`` (a temporary of ours) and no gradients are wanted."""
    if bias is not None:
        delta = delta.add_(bias) if own and not grad else delta + bias
        own = True
    if not delta_softplus:
        return delta
    if own and not grad:
        return torch.ops.aten.softplus.out(delta, 1, 20, out=delta)
    return F.softplus(delta)


def _recurrence(du, delta, A, B, C):
    """y (L, b, K, D) of h_t = exp(delta_t A) h_{t-1} + du_t B_t, y_t = <C_t, h_t> (no D)."""
    groups, channels = delta.shape[2:]
    if du.numel() == 0:        # an empty batch or sequence: empty y, still in the graph
        return du * 0
    du, delta, B, C = (t.contiguous() for t in (du, delta, B, C))
    A = A.to(delta.dtype).view(groups, channels, -1)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (du, delta, A, B, C)):
        return _ScanFunction.apply(du, delta, A, B, C)
    return _scan_forward(_Blocks(du, A), du, delta, B, C, out=du)  # du is a temporary here


def _compute_dtype(tensor):
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


# ------------------------------------------------------------------------------ entry points
def _time_major(t):
    """(b, C, L) -> (L, b, C), contiguous. Done as one 2-D transpose of the (b*C, L) matrix,
    which ATen copies in cache-sized tiles: 2-3x faster than a general permuted copy."""
    batch, channels, length = t.shape
    return t.reshape(batch * channels, length).t().contiguous().view(length, batch, channels)


def _contract_major(t):
    """(L, b, C) -> (b, C, L), contiguous: the inverse of ``_time_major``."""
    length, batch, channels = t.shape
    return t.reshape(length, batch * channels).t().contiguous().view(batch, channels, length)


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """Contract layout in and out: u, delta (b, K*D, L); B, C (b, K, N, L).

    The step sizes and delta * u are formed in the contract layout, where they are contiguous;
    only they, B, C and y change layout (``_time_major``), and the D term is added back in the
    contract layout."""
    batch, kd, length = u.shape
    groups, state = B.shape[1:3]
    out_dtype, dtype = u.dtype, _compute_dtype(u)
    grad = needs_grad(u, delta, A, B, C, D, delta_bias)
    u = u.to(dtype)
    bias = None if delta_bias is None else delta_bias.to(dtype)[:, None]
    steps = _activate(delta.to(dtype), bias, delta_softplus, grad, own=delta.dtype != dtype)
    du, steps = (_time_major(t).view(length, batch, groups, kd // groups)
                 for t in (steps * u, steps))
    B, C = (_time_major(t.to(dtype).flatten(1, 2)).view(length, batch, groups, state)
            for t in (B, C))
    y = _contract_major(_recurrence(du, steps, A, B, C).view(length, batch, kd))
    if D is not None:
        y.addcmul_(D.to(dtype)[:, None], u)
    return y.to(out_dtype)


def _chunk(height, width, batch, channels):
    """Rows (or columns) per piece when flipping a map piece by piece: ~1M elements, so the
    flipped pieces stay small instead of a whole flipped copy of the map."""
    return max(1, (1 << 20) // max(1, batch * channels * max(height, width)))


def _layouts(t, height, width):
    """A direction-ordered (H*W, ...) tensor seen in the two reading orders: row-major
    (H, W, ...), used by directions 0 and 2, and column-major (W, H, ...), by 1 and 3."""
    return t.view(height, width, *t.shape[1:]), t.view(width, height, *t.shape[1:])


def _direction_pieces(source, height, width, batch, channels):
    """(k, index, piece): ``source(k)`` (b, c, H, W) read in direction k's order, as the rows
    ``index`` of k's layout (``_layouts``): 0 row-major, 1 column-major, 2 and 3 their reverses
    (pixel (H-1-h, W-1-w) first). The reversed ones come piece by piece (``_chunk``), so no
    flipped copy of a whole map is made."""
    everything = slice(None)
    yield 0, everything, source(0).permute(2, 3, 0, 1)
    yield 1, everything, source(1).permute(3, 2, 0, 1)
    step = _chunk(height, width, batch, channels)
    for h0 in range(0, height, step):
        h1 = min(height, h0 + step)
        yield 2, slice(h0, h1), source(2)[:, :, height - h1:height - h0].flip(2, 3).permute(
            2, 3, 0, 1)
    for w0 in range(0, width, step):
        w1 = min(width, w0 + step)
        yield 3, slice(w0, w1), source(3)[..., width - w1:width - w0].flip(2, 3).permute(
            3, 2, 0, 1)


def _directions(t, height, width):
    """(b, 4, c, H, W) per-direction maps -> (H*W, b, 4, c), direction k in the order it reads."""
    batch, _, channels = t.shape[:3]
    out = t.new_empty(height * width, batch, 4, channels)
    layouts = _layouts(out, height, width)
    for k, index, piece in _direction_pieces(lambda k: t[:, k], height, width, batch, channels):
        layouts[k % 2][index, :, :, k] = piece
    return out


def _delta_times_x(delta, x):
    """delta (H*W, b, 4, D) in direction order times x (b, D, H, W) read in the same order,
    without laying x out four times (no-grad path)."""
    batch, channels, height, width = x.shape
    out = torch.empty_like(delta)
    steps, products = _layouts(delta, height, width), _layouts(out, height, width)
    for k, index, piece in _direction_pieces(lambda k: x, height, width, batch, channels):
        torch.mul(steps[k % 2][index, :, :, k], piece, out=products[k % 2][index, :, :, k])
    return out


def _merge(y, x, D):
    """Sum of the four directions' outputs (H*W, b, 4, D) back at their pixels, plus the D
    terms (all four multiply x at its own pixel): (b, H, W, D), no-grad path, no full-size
    temporaries."""
    batch, channels, height, width = x.shape
    out = x.new_empty(batch, height, width, channels)
    pixels = out.permute(1, 2, 0, 3)                                          # (H, W, b, D)
    y_rows = y.view(height, width, batch, 4, channels)
    y_cols = y.view(width, height, batch, 4, channels)
    torch.add(y_rows[:, :, :, 0], y_cols[:, :, :, 1].transpose(0, 1), out=pixels)
    step = _chunk(height, width, batch, channels)
    for h0 in range(0, height, step):
        h1 = min(height, h0 + step)
        pixels[h0:h1] += y_rows[height - h1:height - h0, :, :, 2].flip(0, 1)
        pixels[h0:h1] += y_cols[:, height - h1:height - h0, :, 3].flip(0, 1).transpose(0, 1)
    if D is not None:
        pixels.addcmul_(D.to(x.dtype).view(4, channels).sum(0), x.permute(2, 3, 0, 1))
    return out


def _merge_differentiable(y, x, D):
    """``_merge`` with autograd-friendly ops."""
    batch, channels, height, width = x.shape
    pairs = y[:, :, 0:2] + y[:, :, 2:4].flip(0)          # undo the reversal of 2 and 3
    pixels = (pairs[:, :, 0].view(height, width, batch, channels)
              + pairs[:, :, 1].view(width, height, batch, channels).transpose(0, 1))
    if D is not None:
        pixels = pixels + D.to(x.dtype).view(4, channels).sum(0) * x.permute(2, 3, 0, 1)
    return pixels.permute(2, 0, 1, 3).contiguous()


def cross_selective_scan(x, delta, A, B, C, D, delta_bias, delta_softplus=True):
    """SS2D's four-direction scan: x (b, D, H, W); delta (b, 4, D, H, W); B, C (b, 4, N, H, W).

    Returns (b, D, H, W) in x's dtype; its memory is channels-last, which SS2D reads next.
    """
    height, width = x.shape[2:]
    out_dtype, dtype = x.dtype, _compute_dtype(x)
    grad = needs_grad(x, delta, A, B, C, D, delta_bias)
    x = x.to(dtype)
    bias = None if delta_bias is None else delta_bias.to(dtype).view(4, -1)
    dl = _activate(_directions(delta.to(dtype), height, width), bias, delta_softplus, grad,
                   own=True)
    if grad:
        du = dl * _directions(x.unsqueeze(1).expand(-1, 4, -1, -1, -1), height, width)
    else:
        du = _delta_times_x(dl, x)
    y = _recurrence(du, dl, A, _directions(B.to(dtype), height, width),
                    _directions(C.to(dtype), height, width))
    out = _merge_differentiable(y, x, D) if grad else _merge(y, x, D)
    return out.to(out_dtype).permute(0, 3, 1, 2)
