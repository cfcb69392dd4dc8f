"""The ``torch`` backend: a portable selective scan in plain PyTorch, the reference backend.

Why it looks the way it does (a 400x600 image gives sequences of 240,000 steps, and the model's
scans touch ~1.4e10 (channel, state, step) elements, so every pass over them counts):

* Time-major layout. Inside, the sequence is the outermost axis and one time step of every
  independent chain (batch x group x state x channel) is one contiguous slab, so the recurrence
  is one fused multiply-add per step over a whole slab.
* Block-sequential. The sequence is cut into blocks of T steps (T x slab ~ ``BLOCK_ELEMENTS``).
  Per block, everything that does not depend on the previous step is vectorised over the block:
  the decays ``exp2(delta * A * log2 e)`` (one exp per element; the exponent is <= 0 for
  delta >= 0 and A <= 0, so decays stay in [0, 1]: nothing overflows however long the sequence
  or however extreme delta and A), the inputs ``delta * u * B`` and, at the end, the contraction
  with C as one batched matmul. Only ``h_t = decay_t * h_{t-1} + input_t`` runs step by step,
  in place: the plain recurrence in fp32, with no exp of a positive number and no division.
* Runs. Groups (directions) that read the sequence backwards (SS2D's directions 2 and 3) are a
  second "run" whose blocks are taken from the far end of the same data, flipped in cache, and
  whose outputs are added back flipped: no reversed copy of the inputs is ever made, and both
  directions of a family add into one output.
* Backward is written out (``_ScanFunction``): blocks are revisited in reverse, their states
  recomputed from the block-start states saved by the forward pass, and the adjoint state runs
  backwards with the same fused multiply-add. Under ``torch.no_grad`` nothing is saved.

State layout inside a block: (T, batch, K, N, D), state before channel, so contracting with C
is a (1 x N) @ (N x D) matmul per (step, batch, group).
Accumulation is fp32 (float64 inputs are computed in float64, which the tests use).
"""
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ['is_available', 'selective_scan', 'cross_selective_scan']

# SS2D asks the backend for its preferred layout: channels-last feature maps make the row-major
# directions free views here.
prefers_channels_last = True

_LOG2E = 1.0 / math.log(2.0)
# Elements (steps x slab) per block. Larger blocks mean fewer Python-level ops; ~2^19 (2 MiB per
# fp32 buffer) measured fastest on a 2-core EPYC (the working set then lives in L2/L3).
BLOCK_ELEMENTS = 1 << 19


def is_available():
    return True


class Run(NamedTuple):
    """Groups ``groups`` read families ``families`` of u, forwards or backwards in time, and add
    their outputs into those families of y."""
    groups: slice
    families: slice
    reverse: bool


def _block_len(length, slab):
    return max(1, min(length, BLOCK_ELEMENTS // slab))


def _take(t, run, index, t0, n, length):
    """Steps t0 .. t0+n-1 of a run, in the run's time order, from a (L, b, G, c) tensor."""
    part = run.groups if index == 'groups' else run.families
    if not run.reverse:
        return t[t0:t0 + n, :, part]
    return t[length - t0 - n:length - t0, :, part].flip(0)


def _put(dst, value, run, t0, n, length):
    """dst[steps of the run, :, families] += value (value in the run's time order)."""
    if not run.reverse:
        dst[t0:t0 + n, :, run.families] += value
    else:
        dst[length - t0 - n:length - t0, :, run.families] += value.flip(0)


class _Problem:
    """Shapes, runs and the per-block buffers shared by the forward and backward passes."""

    def __init__(self, du, A, runs, families):
        self.length, self.batch, self.groups, self.channels = du.shape
        self.state = A.shape[-1]
        self.runs, self.families = runs, families
        self.a2 = (A * _LOG2E).transpose(1, 2).contiguous()       # (K, N, D), base 2
        self.steps = _block_len(self.length,
                                self.batch * self.groups * self.state * self.channels)
        self.block_shape = (self.steps, self.batch, self.groups, self.state, self.channels)

    def blocks(self):
        for index, t0 in enumerate(range(0, self.length, self.steps)):
            yield index, t0, min(self.steps, self.length - t0)

    def decays_and_inputs(self, du, delta, B, t0, n, dA, hs):
        """Fill dA[:n] = exp(delta A) and hs[:n] = delta u B for steps t0.. of every run."""
        for run in self.runs:
            d = _take(delta, run, 'groups', t0, n, self.length)
            torch.mul(d[:, :, :, None, :], self.a2[run.groups], out=dA[:n, :, run.groups])
            x = _take(du, run, 'groups', t0, n, self.length)
            b = _take(B, run, 'groups', t0, n, self.length)
            torch.mul(x[:, :, :, None, :], b[:, :, :, :, None], out=hs[:n, :, run.groups])
        dA[:n].exp2_()


def _recur(hs, dA, h):
    """In place: hs[t] += dA[t] * hs[t-1] (hs[-1] = h, the state entering the block)."""
    slabs, decays = hs.unbind(0), dA.unbind(0)
    if h is not None:
        slabs[0].addcmul_(h, decays[0])
    for prev, cur, decay in zip(slabs, slabs[1:], decays[1:]):
        cur.addcmul_(prev, decay)


def _scan_forward(prob, du, delta, B, C, block_starts=None):
    """y (L, b, F, D) of the recurrence, without the D term; see ``_ScanFunction``."""
    y = du.new_zeros(prob.length, prob.batch, prob.families, prob.channels)
    dA = du.new_empty(prob.block_shape)
    states = [du.new_empty(prob.block_shape) for _ in range(2)]
    out = du.new_empty(prob.steps, prob.batch, prob.groups, 1, prob.channels)
    h = None
    for index, t0, n in prob.blocks():
        hs = states[index % 2]
        prob.decays_and_inputs(du, delta, B, t0, n, dA, hs)
        if block_starts is not None and h is not None:
            block_starts.append(h.clone())
        _recur(hs[:n], dA[:n], h)
        for run in prob.runs:
            c = _take(C, run, 'groups', t0, n, prob.length)
            torch.matmul(c[:, :, :, None, :], hs[:n, :, run.groups],
                         out=out[:n, :, run.groups])
            _put(y, out[:n, :, run.groups, 0], run, t0, n, prob.length)
        h = hs[n - 1]
    return y


def _scan_backward(prob, grad_y, du, delta, A, B, C, block_starts):
    """Gradients of sum(grad_y * y) w.r.t. du, delta (through the decays), A, B and C."""
    a_nat = A.transpose(1, 2).contiguous()                        # (K, N, D)
    grads = [torch.zeros_like(t) for t in (du, delta, B, C)]
    grad_du, grad_delta, grad_B, grad_C = grads
    grad_a = torch.zeros_like(a_nat)
    dA, hs, adj = (du.new_empty(prob.block_shape) for _ in range(3))
    gy_blk = du.new_empty(prob.steps, prob.batch, prob.groups, prob.channels)
    c_blk = du.new_empty(prob.steps, prob.batch, prob.groups, prob.state)
    small = du.new_empty(prob.steps, prob.batch, prob.groups, prob.channels)
    vec = du.new_empty(prob.steps, prob.batch, prob.groups, prob.state)
    carry = None  # decay[t1] * adjoint[t1] from the block after this one
    for index, t0, n in reversed(list(prob.blocks())):
        d_, h_, g_ = dA[:n], hs[:n], adj[:n]
        h0 = block_starts[index - 1] if index else None
        prob.decays_and_inputs(du, delta, B, t0, n, dA, hs)
        _recur(h_, d_, h0)
        for run in prob.runs:
            gy_blk[:n, :, run.groups] = _take(grad_y, run, 'families', t0, n, prob.length)
            c_blk[:n, :, run.groups] = _take(C, run, 'groups', t0, n, prob.length)
        # grad C_t[n] = sum_d h_t[n, d] gy_t[d]
        torch.matmul(h_, gy_blk[:n, :, :, :, None], out=vec[:n, :, :, :, None])
        _put_groups(grad_C, vec[:n], prob, t0, n)
        # adjoint: g_t = C_t gy_t + decay_{t+1} g_{t+1}, backwards through the block
        torch.mul(c_blk[:n, :, :, :, None], gy_blk[:n, :, :, None, :], out=g_)
        slabs, decays = g_.unbind(0), d_.unbind(0)
        if carry is not None:
            slabs[n - 1].add_(carry)
        for t in range(n - 2, -1, -1):
            slabs[t].addcmul_(slabs[t + 1], decays[t + 1])
        carry = slabs[0] * decays[0]
        # through the inputs delta * u * B
        for run in prob.runs:
            b = _take(B, run, 'groups', t0, n, prob.length)
            torch.matmul(b[:, :, :, None, :], g_[:, :, run.groups],
                         out=small[:n, :, run.groups, None])
            x = _take(du, run, 'groups', t0, n, prob.length)
            torch.matmul(g_[:, :, run.groups], x[:, :, :, :, None],
                         out=vec[:n, :, run.groups, :, None])
        _put_groups(grad_du, small[:n], prob, t0, n)
        _put_groups(grad_B, vec[:n], prob, t0, n)
        # through the decays exp(delta A): q_t = g_t * h_{t-1} * decay_t  (reuses dA)
        d_.mul_(g_)
        d_[1:].mul_(h_[:n - 1])
        if h0 is None:
            d_[0].zero_()
        else:
            d_[0].mul_(h0)
        for run in prob.runs:
            dl = _take(delta, run, 'groups', t0, n, prob.length)
            grad_a[run.groups] += (d_[:, :, run.groups] * dl[:, :, :, None, :]).sum((0, 1))
        d_.mul_(a_nat)
        torch.sum(d_, dim=3, out=small[:n])
        _put_groups(grad_delta, small[:n], prob, t0, n)
    return grad_du, grad_delta, grad_a.transpose(1, 2), grad_B, grad_C


def _put_groups(dst, value, prob, t0, n):
    """dst[steps, :, groups] = value for every run (value in run time order, (n, b, K, c))."""
    for run in prob.runs:
        v = value[:, :, run.groups]
        if not run.reverse:
            dst[t0:t0 + n, :, run.groups] = v
        else:
            dst[prob.length - t0 - n:prob.length - t0, :, run.groups] = v.flip(0)


class _ScanFunction(torch.autograd.Function):
    """The recurrence core with a hand-written backward.

    Inputs (time-major, compute dtype): du = delta * u and delta (L, b, K, D) per group, A
    (K, D, N), B and C (L, b, K, N). Output y (L, b, F, D): every run's groups add into its
    families. The block-start states are saved; everything else is recomputed in backward.
    """

    @staticmethod
    def forward(ctx, du, delta, A, B, C, runs, families):
        prob = _Problem(du, A, runs, families)
        block_starts = [] if any(ctx.needs_input_grad[:5]) else None
        y = _scan_forward(prob, du, delta, B, C, block_starts)
        if block_starts is not None:
            starts = torch.stack(block_starts) if block_starts else du.new_empty(0)
            ctx.save_for_backward(du, delta, A, B, C, starts)
            ctx.prob = prob
        return y

    @staticmethod
    def backward(ctx, grad_y):
        du, delta, A, B, C, starts = ctx.saved_tensors
        grads = _scan_backward(ctx.prob, grad_y.contiguous(), du, delta, A, B, C,
                               list(starts.unbind(0)))
        return (*grads, None, None)


def _scan(u, delta, A, B, C, D, delta_bias, delta_softplus, runs):
    """Shared front end: bias/softplus, du, the core, the D term. Time-major in and out.

    u: (L, b, F, D), the F families; delta: (L, b, K, D) with K = F * len(runs), run r owning
    groups r*F .. r*F+F-1, which read families 0 .. F-1; B, C: (L, b, K, N); A: (K*D, N);
    D, delta_bias: (K*D,) or None.
    """
    length, batch, groups, channels = delta.shape
    families = u.shape[2]
    if delta_bias is not None:
        delta = delta + delta_bias.to(delta.dtype).view(groups, channels)
    if delta_softplus:
        delta = F.softplus(delta)
    du = (delta.view(length, batch, len(runs), families, channels) * u.unsqueeze(2)) \
        .view(length, batch, groups, channels)
    A = A.to(delta.dtype).view(groups, channels, -1)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (du, delta, A, B, C)):
        y = _ScanFunction.apply(du, delta, A, B, C, runs, families)
    else:
        y = _scan_forward(_Problem(du, A, runs, families), du, delta, B, C)
    if D is not None:
        skip = D.to(delta.dtype).view(len(runs), families, channels).sum(0)
        y = y + skip * u
    return y


def _compute_dtype(tensor):
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


# ------------------------------------------------------------------------------ entry points
def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """Contract layout in and out: u, delta (b, K*D, L); B, C (b, K, N, L)."""
    batch, kd, length = u.shape
    groups = B.shape[1]
    dtype = _compute_dtype(u)

    def time_major(t):  # (b, K*D, L) -> (L, b, K, D)
        return t.to(dtype).permute(2, 0, 1).reshape(length, batch, groups, kd // groups)

    runs = (Run(slice(0, groups), slice(0, groups), False), )
    y = _scan(time_major(u), time_major(delta), A, B.to(dtype).permute(3, 0, 1, 2),
              C.to(dtype).permute(3, 0, 1, 2), D, delta_bias, delta_softplus, runs)
    return y.reshape(length, batch, kd).permute(1, 2, 0).to(u.dtype)


# SS2D's directions: 0 rows, 1 columns (families 0 and 1), 2 and 3 the same backwards.
_CROSS_RUNS = (Run(slice(0, 2), slice(0, 2), False), Run(slice(2, 4), slice(0, 2), True))


def _families(t, height, width):
    """(b, G, c, H, W) -> (H*W, b, G, c), group g read in row order if g is even, else in
    column order (one copy; the even groups of a channels-last map are read sequentially)."""
    batch, groups, channels = t.shape[:3]
    out = t.new_empty(height * width, batch, groups, channels)
    out.view(height, width, batch, groups, channels)[:, :, :, 0::2] = \
        t[:, 0::2].permute(3, 4, 0, 1, 2)
    out.view(width, height, batch, groups, channels)[:, :, :, 1::2] = \
        t[:, 1::2].permute(4, 3, 0, 1, 2)
    return out


def cross_selective_scan(x, delta, A, B, C, D, delta_bias, delta_softplus=True):
    """SS2D's four-direction scan: x (b, D, H, W); delta (b, 4, D, H, W); B, C (b, 4, N, H, W).

    Returns (b, D, H, W) in x's dtype; its memory is channels-last, which SS2D reads next.
    """
    batch, channels, height, width = x.shape
    dtype = _compute_dtype(x)
    u = _families(x.to(dtype).unsqueeze(1).expand(-1, 2, -1, -1, -1), height, width)
    y = _scan(u, _families(delta.to(dtype), height, width), A,
              _families(B.to(dtype), height, width), _families(C.to(dtype), height, width),
              D, delta_bias, delta_softplus, _CROSS_RUNS)
    rows = y[:, :, 0].view(height, width, batch, channels)
    cols = y[:, :, 1].view(width, height, batch, channels).transpose(0, 1)
    return (rows + cols).permute(2, 0, 1, 3).to(x.dtype, memory_format=torch.contiguous_format) \
        .permute(0, 3, 1, 2)
