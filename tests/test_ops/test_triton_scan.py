"""Parity of the ``triton`` scan backend with a naive float64 scan written here.

On a CUDA machine the compiled kernels are checked at the model's real state sizes (``gpu``
marker; tools/gpu/run_gpu_tests.sh). Without CUDA the same kernels run under Triton's interpreter
at tiny sizes with tiny blocks, so that partial groups, several chunks per sequence, several state
and channel blocks and all four directions are exercised in CI.

Tolerance: ||out - ref|| / ||ref|| <= 1e-4 against float64, the issue's parity bound; fp32 lands
around 1e-7..1e-6 (the gap leaves room for the GPU's approximate exp2 and for summation order).
"""
import os

import pytest
import torch
import torch.nn.functional as F

from .gpu_marks import HAS_CUDA, needs_cuda, needs_interpreter

if not HAS_CUDA:
    # Must be set before triton_kernels is imported (triton.jit reads it at decoration).
    os.environ.setdefault('TRITON_INTERPRET', '1')

triton = pytest.importorskip('triton', reason='triton is not installed')

from retinexmamba_mm.ops.selective_scan import triton_scan  # noqa: E402

TOL = 1e-4
TINY_TILES = dict(row_tl=2, row_nb=4, row_bd=2, col_tl=4, col_nb=4, col_bd=2, bwd_row_tl=2,
                  bwd_col_tl=4, bwd_nb=4, bwd_bd=2, chunk=8)


# ----------------------------------------------------------------------------- references
def naive_scan(u, delta, A, B, C, D, bias, softplus):
    """h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t, y_t = <C_t, h_t> + D u_t, step by step."""
    kd = u.shape[1]
    groups = B.shape[1]
    dl = delta if bias is None else delta + bias[:, None]
    if softplus:
        dl = F.softplus(dl)
    bx = B.repeat_interleave(kd // groups, 1)
    cx = C.repeat_interleave(kd // groups, 1)
    h = u.new_zeros(u.shape[0], kd, A.shape[1])
    ys = []
    for t in range(u.shape[2]):
        h = torch.exp(dl[..., t, None] * A) * h + (dl[..., t] * u[..., t])[..., None] * bx[..., t]
        ys.append((h * cx[..., t]).sum(-1))
    y = torch.stack(ys, -1)
    return y if D is None else y + D[:, None] * u


def _to_direction(t, k):
    """(..., H, W) -> (..., H*W) in direction k's order (0 rows, 1 columns, 2/3 reversed)."""
    seq = t.flatten(-2) if k % 2 == 0 else t.transpose(-1, -2).flatten(-2)
    return seq.flip(-1) if k >= 2 else seq


def _from_direction(seq, k, height, width):
    if k >= 2:
        seq = seq.flip(-1)
    if k % 2 == 0:
        return seq.unflatten(-1, (height, width))
    return seq.unflatten(-1, (width, height)).transpose(-1, -2)


def naive_cross_scan(x, delta, A, B, C, D, bias, softplus):
    """The authors' path: four flipped/transposed copies, one scan, copies back, summed."""
    ch, height, width = x.shape[1:]
    u = torch.cat([_to_direction(x, k) for k in range(4)], 1)
    dl = torch.cat([_to_direction(delta[:, k], k) for k in range(4)], 1)
    bs = torch.stack([_to_direction(B[:, k], k) for k in range(4)], 1)
    cs = torch.stack([_to_direction(C[:, k], k) for k in range(4)], 1)
    ys = naive_scan(u, dl, A, bs, cs, D, bias, softplus)
    return sum(_from_direction(ys[:, k * ch:(k + 1) * ch], k, height, width) for k in range(4))


def make_cross(batch, ch, state, height, width, seed, device='cpu'):
    """Random inputs in float64 with the model's scales (A < 0, small step sizes)."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device)

    return dict(x=r(batch, ch, height, width), delta=r(batch, 4, ch, height, width) * 0.5,
                A=-torch.exp(r(4 * ch, state) * 0.5), B=r(batch, 4, state, height, width),
                C=r(batch, 4, state, height, width), D=r(4 * ch), delta_bias=r(4 * ch) * 0.3 - 1)


def rel_err(out, ref):
    return ((out.double() - ref).norm() / ref.norm()).item()


def check_parity(fn, ref_fn, inputs, softplus, dtype=torch.float32, tol=TOL):
    """Forward and every input gradient of ``fn`` (in ``dtype``) against float64 ``ref_fn``."""
    names = list(inputs)
    ours = {k: v.to(dtype).detach().requires_grad_(True) for k, v in inputs.items()}
    # The reference sees the same (rounded) input values, so only our arithmetic is measured.
    refs = {k: v.to(dtype).double().detach().requires_grad_(True) for k, v in inputs.items()}
    y = fn(*ours.values(), delta_softplus=softplus)
    y_ref = ref_fn(*refs.values(), softplus)
    assert y.dtype == dtype and y.shape == y_ref.shape
    errors = {'y': rel_err(y, y_ref)}
    grad = torch.randn_like(y_ref)
    y.backward(grad.to(dtype))
    y_ref.backward(grad)
    for k in names:
        errors['d' + k] = rel_err(ours[k].grad, refs[k].grad)
    bad = {k: e for k, e in errors.items() if not e <= tol}
    assert not bad, f'relative errors above {tol}: {bad} (all: {errors})'
    return errors


# ----------------------------------------------------------------------------- CPU interpreter
@pytest.fixture
def fast_interpreter(monkeypatch):
    """Run the interpreter's generic scan one slice at a time instead of one element at a time.

    Same combine function and order (first segment, then second, along the axis), vectorised
    over the other axes; the stock version loops in Python over every element (only the chunk
    combine scans). Left unpatched where this triton has no such hook: slower, same result.
    """
    import numpy as np
    from triton.runtime import interpreter
    if not hasattr(getattr(interpreter, 'ScanOps', None), 'generic_scan'):
        return

    def generic_scan(self, inputs):
        datas = [np.moveaxis(t.handle.data, self.axis, 0) for t in inputs]
        outs = [np.empty_like(d) for d in datas]
        acc = None
        for i in range(datas[0].shape[0]):
            cur = tuple(self.to_tensor(d[i], t.dtype) for d, t in zip(datas, inputs))
            if acc is None:
                acc = cur
            else:
                res = self.combine_fn.fn(*acc, *cur)
                acc = res if isinstance(res, tuple) else (res, )
            for out, a in zip(outs, acc):
                out[i] = np.asarray(a.handle.data).reshape(out[i].shape)
        return [self.to_tensor(np.moveaxis(o, 0, self.axis), t.dtype)
                for o, t in zip(outs, inputs)]

    monkeypatch.setattr(interpreter.ScanOps, 'generic_scan', generic_scan)


def in_ss2d_layout(x, delta, A, B, C, D, delta_bias, delta_softplus):
    """The cross-scan called with SS2D's layouts: x channels-last, delta pixel-major, B and C
    slices of one pixel-major projection (the kernels read them in place)."""
    def pixel_major(t):
        return t.permute(0, 3, 4, 1, 2).contiguous().permute(0, 3, 4, 1, 2)

    state = B.shape[2]
    bc = pixel_major(torch.cat([B, C], dim=2))
    return triton_scan.cross_selective_scan(
        x.contiguous(memory_format=torch.channels_last), pixel_major(delta), A,
        bc[:, :, :state], bc[:, :, state:], D, delta_bias, delta_softplus=delta_softplus)


CROSS_LAYOUTS = {'planar': triton_scan.cross_selective_scan, 'ss2d': in_ss2d_layout}


@needs_interpreter
@pytest.mark.parametrize('layout', CROSS_LAYOUTS)
def test_cross_scan_interpreter(fast_interpreter, layout):
    """All four directions, odd H/W, partial groups, several chunks per sequence, partial state
    and channel blocks (batch > 1 is covered by the plain scan here and by the GPU tests);
    planar (NCHW) inputs, which the backend lays out pixel-major, and SS2D's own layout."""
    inputs = make_cross(batch=1, ch=3, state=6, height=5, width=7, seed=0)
    with triton_scan._override(**TINY_TILES):
        check_parity(CROSS_LAYOUTS[layout], naive_cross_scan, inputs, softplus=True)


@needs_interpreter
@pytest.mark.parametrize('chunk', [8, 16])
def test_selective_scan_interpreter(fast_interpreter, chunk):
    """Plain grouped scan, no D, no bias, no softplus (positive step sizes given directly);
    several chunks, or one chunk per sequence (no chunk combine)."""
    gen = torch.Generator().manual_seed(1)
    batch, groups, ch, state, length = 2, 2, 3, 5, 11

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    inputs = dict(u=r(batch, groups * ch, length), delta=r(batch, groups * ch, length).abs(),
                  A=-torch.exp(r(groups * ch, state)), B=r(batch, groups, state, length),
                  C=r(batch, groups, state, length), D=None, delta_bias=None)
    inputs = {k: v for k, v in inputs.items() if v is not None}

    def ref(u, delta, A, B, C, softplus):
        return naive_scan(u, delta, A, B, C, None, None, softplus)

    with triton_scan._override(**dict(TINY_TILES, chunk=chunk)):
        check_parity(triton_scan.selective_scan, ref, inputs, softplus=False)


@needs_interpreter
def test_cross_scan_bf16_interpreter(fast_interpreter):
    """bf16 inputs (autocast projections) are computed in fp32 and returned in bf16."""
    inputs = make_cross(batch=1, ch=2, state=4, height=4, width=3, seed=2)
    ours = {k: v.to(torch.bfloat16) for k, v in inputs.items()}
    with triton_scan._override(**TINY_TILES), torch.no_grad():
        y = triton_scan.cross_selective_scan(*ours.values(), delta_softplus=True)
    ref = naive_cross_scan(*[v.double() for v in ours.values()], True)
    assert y.dtype == torch.bfloat16
    assert rel_err(y, ref) < 1e-2  # bf16 output rounding only


# ----------------------------------------------------------------------------- any machine
def test_bad_shapes_name_the_argument():
    inputs = make_cross(batch=1, ch=2, state=4, height=3, width=3, seed=3)
    inputs['C'] = inputs['C'][:, :, :3]
    with pytest.raises(ValueError, match='C has shape'):
        triton_scan.cross_selective_scan(*inputs.values())


def test_availability_matches_cuda():
    assert triton_scan.is_available() == HAS_CUDA


# ----------------------------------------------------------------------------- GPU
gpu = pytest.mark.gpu  # (written out: tools/gpu/gpu_test.sh collects the files that say so)


@gpu
@needs_cuda
@pytest.mark.parametrize('layout', CROSS_LAYOUTS)
@pytest.mark.parametrize('state,batch,ch,height,width',
                         [(16, 2, 8, 37, 53), (32, 1, 20, 64, 48), (64, 2, 24, 29, 31)])
def test_cross_scan_gpu(state, batch, ch, height, width, layout):
    """Compiled kernels, real block sizes, every d_state of the model, odd sizes, batch > 1,
    both input layouts."""
    inputs = make_cross(batch, ch, state, height, width, seed=state, device='cuda')
    check_parity(CROSS_LAYOUTS[layout], naive_cross_scan, inputs, softplus=True)


@gpu
@needs_cuda
@pytest.mark.parametrize('state', [16, 64])
def test_cross_scan_gpu_triton_backward(state):
    """The line walks' backward by the Triton kernel (the default is the Gluon kernel; the
    Triton one runs where Gluon is missing and under the interpreter)."""
    inputs = make_cross(2, 12, state, 37, 53, seed=state + 1, device='cuda')
    with triton_scan._override(gluon=False):
        check_parity(triton_scan.cross_selective_scan, naive_cross_scan, inputs, softplus=True)


@gpu
@needs_cuda
def test_cross_scan_gpu_many_chunks():
    """Force one group per chunk, so the chunk combine carries every state."""
    inputs = make_cross(2, 4, 16, 33, 41, seed=7, device='cuda')
    with triton_scan._override(chunk=4):
        check_parity(triton_scan.cross_selective_scan, naive_cross_scan, inputs, softplus=True)


@gpu
@needs_cuda
def test_selective_scan_gpu():
    gen = torch.Generator().manual_seed(5)
    batch, groups, ch, state, length = 2, 4, 6, 16, 1000

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).cuda()

    inputs = dict(u=r(batch, groups * ch, length), delta=r(batch, groups * ch, length),
                  A=-torch.exp(r(groups * ch, state)), B=r(batch, groups, state, length),
                  C=r(batch, groups, state, length), D=r(groups * ch),
                  delta_bias=r(groups * ch))
    check_parity(triton_scan.selective_scan, naive_scan, inputs, softplus=True)


@gpu
@needs_cuda
def test_cross_scan_gpu_matches_torch_backend():
    """fp32 against the package's reference backend (its own independent implementation)."""
    from retinexmamba_mm.ops.selective_scan import torch_scan
    inputs = make_cross(2, 16, 32, 48, 80, seed=13, device='cuda')

    def reference(*args):
        *tensors, softplus = args
        return torch_scan.cross_selective_scan(*[t.double() for t in tensors], softplus)

    check_parity(triton_scan.cross_selective_scan, reference, inputs, softplus=True)


@gpu
@needs_cuda
def test_cross_scan_gpu_bf16():
    inputs = make_cross(2, 8, 16, 40, 24, seed=11, device='cuda')
    check_parity(triton_scan.cross_selective_scan, naive_cross_scan, inputs, softplus=True,
                 dtype=torch.bfloat16, tol=1e-2)
