"""The whole network on the GPU: every CUDA scan backend against the torch reference and the CPU.

Runs on the GPU machine (``make gpu-test``); skipped elsewhere. Random weights, fp32, forward and
gradients of every parameter; bound: max abs difference <= 1e-4 (relative to the gradient's
scale for gradients), the issue's parity bound.
"""
import copy

import pytest
import torch

from retinexmamba_mm.models import RetinexMamba
from retinexmamba_mm.ops import available_backends

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device'),
]

TOL = 1e-4


def _forward_backward(model, image):
    image = image.clone().requires_grad_(True)
    model.zero_grad()
    out = model(image)
    (out * torch.linspace(-1, 1, out.numel(), device=out.device).view_as(out)).sum().backward()
    grads = {n: p.grad.detach().double().cpu() for n, p in model.named_parameters()}
    return out.detach().double().cpu(), image.grad.double().cpu(), grads


def _assert_close(ref, other, label):
    out_r, gin_r, grads_r = ref
    out_o, gin_o, grads_o = other
    diff = (out_r - out_o).abs().max().item()
    print(f'{label}: max |output difference| {diff:.2e}')
    assert diff <= TOL, f'{label}: output differs by {diff:.2e}'
    diff = (gin_r - gin_o).abs().max().item()
    assert diff <= TOL * max(1., gin_r.abs().max().item()), f'{label}: input grad {diff:.2e}'
    worst = max((g - grads_o[n]).abs().max().item() / max(1., g.abs().max().item())
                for n, g in grads_r.items())
    print(f'{label}: max scaled |parameter-gradient difference| {worst:.2e}')
    for name, g in grads_r.items():
        diff = (g - grads_o[name]).abs().max().item()
        assert diff <= TOL * max(1., g.abs().max().item()), f'{label}: grad of {name} ({diff:.2e})'


@pytest.fixture(scope='module')
def model_and_image(true_fp32):
    torch.manual_seed(0)
    model = RetinexMamba(scan_backend='torch')  # the paper's model, random weights
    image = torch.rand(2, 3, 52, 76)  # odd multiple-of-4 sizes: every level sees H != W
    return model, image


@pytest.mark.parametrize('backend', ['torch', 'mamba_ssm', 'triton'])
def test_cuda_backends_match_the_cpu_reference(model_and_image, backend):
    if backend not in available_backends('cuda'):
        pytest.skip(f'{backend} is not installed on this machine')
    model, image = model_and_image
    reference = _forward_backward(model, image)  # torch backend on the CPU
    cuda_model = copy.deepcopy(model).cuda()
    cuda_model.set_scan_backend(backend)
    _assert_close(reference, _forward_backward(cuda_model, image.cuda()), f'{backend} on CUDA')
