"""The whole network with the compiled ``cpu`` scan backend against the torch reference backend
(random weights, fp32): the issue's parity bound, max abs difference <= 1e-4, for the output
and (relative to each gradient's scale) every parameter's gradient."""
import pytest
import torch

from retinexmamba_mm.models import RetinexMamba
from retinexmamba_mm.ops import available_backends

pytestmark = [pytest.mark.usefixtures('single_thread'),
              pytest.mark.skipif('cpu' not in available_backends('cpu'),
                                 reason='the cpu scan backend needs a C compiler')]

TOL = 1e-4


def forward_backward(model, image, backend):
    model.set_scan_backend(backend).zero_grad()
    out = model(image)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_paper_model_matches_the_torch_backend():
    torch.manual_seed(0)
    model = RetinexMamba()                       # the paper's model
    image = torch.rand(2, 3, 26, 38)             # not multiples of 4: padded inside
    out_ref, grads_ref = forward_backward(model, image, 'torch')
    out, grads = forward_backward(model, image, 'cpu')
    assert out.shape == image.shape
    assert (out - out_ref).abs().max().item() <= TOL
    for name, reference in grads_ref.items():
        diff = (grads[name] - reference).abs().max().item()
        assert diff <= TOL * max(1.0, reference.abs().max().item()), name
    with torch.no_grad():
        assert (model.eval()(image) - out_ref).abs().max().item() <= TOL   # no-grad path
