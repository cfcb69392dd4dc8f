"""The whole network with the compiled ``cpu`` scan backend against the torch reference backend
(random weights, fp32, inference): the issue's parity bound, max abs difference <= 1e-4."""
import pytest
import torch

from retinexmamba_mm.models import RetinexMamba
from retinexmamba_mm.ops import available_backends

pytestmark = [pytest.mark.usefixtures('single_thread'),
              pytest.mark.skipif('cpu' not in available_backends('cpu'),
                                 reason='the cpu scan backend needs a C compiler')]


def test_paper_model_matches_the_torch_backend():
    torch.manual_seed(0)
    model = RetinexMamba(scan_backend='torch').eval()   # the paper's model
    image = torch.rand(1, 3, 26, 38)                    # not multiples of 4: padded inside
    with torch.no_grad():
        reference = model(image)
        ours = model.set_scan_backend('cpu')(image)
    assert ours.shape == reference.shape == image.shape
    assert (ours - reference).abs().max().item() <= 1e-4
