"""``ops.layer_norm``: its backends against the LayerNorm formula written here, in float64.

The triton kernels run under Triton's interpreter without CUDA (tiny sizes) and compiled on the
GPU machine (``gpu`` marker, the model's channel counts). Tolerance: relative norm error 1e-5
for fp32 against float64 (fp32 lands near 1e-7).
"""
import os

import pytest
import torch

from .gpu_marks import HAS_CUDA, needs_cuda, needs_interpreter

if not HAS_CUDA:
    os.environ.setdefault('TRITON_INTERPRET', '1')  # before the kernels are imported

from retinexmamba_mm.ops import layer_norm  # noqa: E402
from retinexmamba_mm.ops.layer_norm import resolve_layer_norm_backend  # noqa: E402
from retinexmamba_mm.ops.selective_scan import BackendUnavailable  # noqa: E402

TOL = 1e-5


def reference(x, weight, bias, eps):
    """(x - mean) / sqrt(biased variance + eps) * weight + bias over the last axis."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean)**2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def rel_err(out, ref):
    return ((out.double() - ref).norm() / ref.norm()).item()


def check(fn, shape, device='cpu', seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) * 3 + 1
    w, b = (torch.randn(shape[-1], generator=gen, dtype=torch.float64) for _ in range(2))
    ours = [t.float().to(device).requires_grad_() for t in (x, w, b)]
    refs = [t.clone().requires_grad_() for t in (x, w, b)]
    y, y_ref = fn(*ours, 1e-5), reference(*refs, 1e-5)
    grad = torch.randn(y_ref.shape, generator=gen, dtype=torch.float64)
    y.backward(grad.float().to(device))
    y_ref.backward(grad)
    errors = {'y': rel_err(y.cpu(), y_ref)}
    errors.update({n: rel_err(p.grad.cpu(), q.grad) for n, p, q in zip('xwb', ours, refs)})
    assert y.dtype == torch.float32 and y.shape == y_ref.shape
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize('shape', [(2, 3, 5, 40), (7, 6), (1, 2, 3, 160)])
def test_torch_backend(shape):
    check(lambda *a: layer_norm(*a, backend='torch'), shape)


@needs_interpreter
@pytest.mark.parametrize('shape', [(2, 3, 5, 40), (130, 6), (1, 2, 3, 80)])
def test_triton_kernels_interpreter(shape):
    """Partial row blocks (130 rows), channel counts that are not powers of two."""
    pytest.importorskip('triton', reason='triton is not installed')
    from retinexmamba_mm.ops.layer_norm import triton_layer_norm
    check(triton_layer_norm.layer_norm, shape)


def test_environment_chooses_when_no_backend_is_given(monkeypatch):
    x, w, b = torch.randn(3, 8), torch.randn(8), torch.randn(8)
    monkeypatch.setenv('RETINEXMAMBA_LAYER_NORM', 'torch')
    torch.testing.assert_close(layer_norm(x, w, b), reference(x, w, b, 1e-5))
    monkeypatch.setenv('RETINEXMAMBA_LAYER_NORM', 'fused')
    with pytest.raises(ValueError, match='RETINEXMAMBA_LAYER_NORM'):
        layer_norm(x, w, b)
    if not HAS_CUDA:
        monkeypatch.setenv('RETINEXMAMBA_LAYER_NORM', 'triton')
        with pytest.raises(BackendUnavailable):
            layer_norm(x, w, b)


def test_auto_is_torch_on_cpu_and_triton_needs_cuda():
    assert resolve_layer_norm_backend('auto', torch.device('cpu')) == 'torch'
    with pytest.raises(BackendUnavailable, match='needs CUDA tensors and triton'):
        resolve_layer_norm_backend('triton', torch.device('cpu'))
    with pytest.raises(ValueError, match='unknown layer-norm backend'):
        resolve_layer_norm_backend('apex', torch.device('cpu'))


gpu = pytest.mark.gpu  # (written out: tools/gpu/gpu_test.sh collects the files that say so)


@gpu
@needs_cuda
@pytest.mark.parametrize('shape', [(1, 400, 600, 40), (8, 64, 64, 160), (2, 37, 53, 320),
                                   (1, 100, 150, 80)])
def test_triton_backend_gpu(shape):
    """Compiled kernels at the model's channel counts (40-320) and map sizes."""
    check(lambda *a: layer_norm(*a, backend='triton'), shape, device='cuda')


@gpu
@needs_cuda
def test_triton_backend_under_autocast_is_fp32_like_torch():
    x = torch.randn(2, 9, 11, 40, device='cuda', dtype=torch.bfloat16)
    w, b = torch.randn(40, device='cuda'), torch.randn(40, device='cuda')
    with torch.autocast('cuda', dtype=torch.bfloat16):
        ours, theirs = layer_norm(x, w, b, backend='triton'), layer_norm(x, w, b, backend='torch')
    assert ours.dtype == theirs.dtype == torch.float32
    assert rel_err(ours, theirs.double()) < TOL
