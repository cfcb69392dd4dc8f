"""The ``mamba_ssm`` backend (CUDA only) against the ``torch`` backend, forward and gradients.

Runs on the GPU machine (``gpu`` marker) when mamba_ssm is built there; skipped elsewhere.
Tolerance: max abs difference <= 1e-4 at fp32, the issue's parity bound.
"""
import pytest
import torch

from retinexmamba_mm.ops import available_backends, cross_selective_scan, selective_scan

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or
                       'mamba_ssm' not in available_backends('cuda'),
                       reason='needs CUDA and mamba_ssm'),
]


def _leaves(tensors):
    return {k: v.detach().clone().requires_grad_(True) for k, v in tensors.items()}


def _run(fn, inputs, grad_out, backend):
    leaves = _leaves(inputs)
    y = fn(**leaves, backend=backend)
    y.backward(grad_out)
    return y.detach(), {k: v.grad for k, v in leaves.items()}


def _compare(fn, inputs, grad_out):
    y_t, g_t = _run(fn, inputs, grad_out, 'torch')
    y_m, g_m = _run(fn, inputs, grad_out, 'mamba_ssm')
    assert (y_t - y_m).abs().max().item() <= 1e-4
    for name in g_t:
        scale = max(1.0, g_t[name].abs().max().item())
        assert (g_t[name] - g_m[name]).abs().max().item() <= 1e-4 * scale, name


def test_selective_scan_matches_torch_backend():
    gen = torch.Generator(device='cuda').manual_seed(0)
    batch, groups, channels, state, length = 2, 4, 16, 16, 1000

    def r(*shape):
        return torch.randn(*shape, device='cuda', generator=gen)

    kd = groups * channels
    inputs = dict(u=r(batch, kd, length), delta=r(batch, kd, length) * 0.5,
                  A=-torch.exp(r(kd, state) * 0.5), B=r(batch, groups, state, length),
                  C=r(batch, groups, state, length), D=r(kd), delta_bias=r(kd) * 0.3 - 2)
    _compare(lambda **kw: selective_scan(**kw, delta_softplus=True), inputs,
             r(batch, kd, length))


def test_cross_selective_scan_matches_torch_backend():
    gen = torch.Generator(device='cuda').manual_seed(1)
    batch, channels, state, height, width = 2, 8, 16, 24, 40

    def r(*shape):
        return torch.randn(*shape, device='cuda', generator=gen)

    inputs = dict(x=r(batch, channels, height, width),
                  delta=r(batch, 4, channels, height, width) * 0.5,
                  A=-torch.exp(r(4 * channels, state) * 0.5),
                  B=r(batch, 4, state, height, width), C=r(batch, 4, state, height, width),
                  D=r(4 * channels), delta_bias=r(4 * channels) * 0.3 - 2)
    _compare(cross_selective_scan, inputs, r(batch, channels, height, width))
