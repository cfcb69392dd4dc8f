"""The RetinexMamba backbone: size, any input size, the illumination output, the ablation
switches (each removes exactly its part, counted independently), and training on the CPU."""
import math

import pytest
import torch
import torch.nn.functional as F

from retinexmamba_mm.models import RetinexMamba
from retinexmamba_mm.models.layers import SS2D

pytestmark = pytest.mark.usefixtures('single_thread')

TINY = dict(n_feat=8, num_blocks=(1, 1, 1), d_state=4, scan_backend='torch')


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts():
    assert n_params(RetinexMamba()) == 4_589_001                     # the paper's LOL model
    assert n_params(RetinexMamba(block_type='igab')) == 1_605_701    # Retinexformer


# Parameter counts of the parts, from the spec's layer list (independent of the modules).
def ifa_params(c):
    hidden = int(2.66 * c)
    return ((c * c + c) + 2 * c + c // 8 + (2 * c * c + 2 * c) + (2 * c * 9 + 2 * c)
            + (c * c + c) + (9 * c * c + c) + (c * c + c) + 2 * c
            + (c * 2 * hidden + 2 * hidden) + (2 * hidden * 9 + 2 * hidden) + (hidden * c + c))


def ss2d_params(c, state):
    d, r = 2 * c, math.ceil(c / 16)
    return (c * 2 * d + (9 * d + d) + 4 * (r + 2 * state) * d + 4 * d * r + 4 * d
            + 4 * d * state + 4 * d + 2 * d + d * c)


def block_widths(n_feat, num_blocks, d_state):
    """(width, d_state) of every IFSSM block: encoders, bottleneck, decoders."""
    out = []
    for level in range(2):
        out += [(n_feat * 2**level, d_state * 2**level)] * num_blocks[level]
        out += [(n_feat * 2**level, d_state * 2**(level + 1))] * num_blocks[level]
    return out + [(4 * n_feat, 4 * d_state)] * num_blocks[2]


def test_ablations_remove_exactly_their_part():
    arch = dict(n_feat=16, num_blocks=(1, 2, 1), d_state=8)
    full = n_params(RetinexMamba(**arch))
    blocks = block_widths(**arch)
    # ifa_params counts temperature as c // 8 heads: heads = c // n_feat here
    ifa = sum(ifa_params(c) - c // 8 + c // 16 for c, _ in blocks)
    ss2d = sum(ss2d_params(c, n) for c, n in blocks)
    c = arch['n_feat']
    estimator = (4 * c + c) + (c * (c // 4) * 25 + c) + (3 * c + 3)
    plain_conv = 3 * c * 9 + c
    assert n_params(RetinexMamba(use_ifa=False, **arch)) == full - ifa
    assert n_params(RetinexMamba(use_ss2d=False, **arch)) == full - ss2d
    assert n_params(RetinexMamba(use_illumination_estimator=False, **arch)) == \
        full - estimator + plain_conv


@pytest.mark.parametrize('size', [(37, 53), (40, 44), (5, 3)])
def test_any_size_gives_the_same_size(size):
    model = RetinexMamba(**TINY).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        out, illumination = model(x, return_illumination=True)
    assert out.shape == x.shape and illumination.shape == x.shape


def test_odd_sizes_are_reflect_padded_and_cropped():
    """Same result as padding by hand (right/bottom, reflect) to a multiple of 4 and cropping."""
    torch.manual_seed(0)
    model = RetinexMamba(**TINY).double().eval()
    x = torch.rand(1, 3, 13, 18, dtype=torch.float64)
    with torch.no_grad():
        by_hand = model(F.pad(x, (0, 2, 0, 3), mode='reflect'))[..., :13, :18]
        torch.testing.assert_close(model(x), by_hand)


def test_too_small_input_is_refused():
    with pytest.raises(ValueError, match='at least 3x3'):
        RetinexMamba(**TINY)(torch.rand(1, 3, 2, 8))


def test_illumination_output():
    torch.manual_seed(0)
    model = RetinexMamba(**TINY).double().eval()
    x = torch.rand(1, 3, 8, 12, dtype=torch.float64)
    estimator = model.stages[0].estimator
    with torch.no_grad():
        out, illumination = model(x, return_illumination=True)
        torch.testing.assert_close(illumination, estimator(x)[1])
        torch.testing.assert_close(out, model.stages[0].restorer(x * illumination + x,
                                                                estimator(x)[0]))


def test_no_estimator_means_no_lighting_up():
    torch.manual_seed(0)
    model = RetinexMamba(use_illumination_estimator=False, **TINY).double().eval()
    x = torch.rand(1, 3, 8, 12, dtype=torch.float64)
    stage = model.stages[0]
    assert stage.estimator is None
    with torch.no_grad():
        out, illumination = model(x, return_illumination=True)
        assert torch.count_nonzero(illumination) == 0
        torch.testing.assert_close(out, stage.restorer(x, stage.illu_embedding(x)))


def test_igab_variant_and_invalid_switches():
    model = RetinexMamba(block_type='igab', **TINY)
    assert not any(isinstance(m, SS2D) for m in model.modules())
    with torch.no_grad():
        assert model(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="block_type='igab'"):
        RetinexMamba(block_type='igab', use_ss2d=False)
    with pytest.raises(ValueError, match='block_type'):
        RetinexMamba(block_type='transformer')
    with pytest.raises(ValueError, match='needs IFA or SS2D'):
        RetinexMamba(use_ifa=False, use_ss2d=False)


def test_stages_chain():
    torch.manual_seed(0)
    model = RetinexMamba(stage=2, **TINY).double().eval()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        first, _ = model.stages[0](x)
        second, illumination = model.stages[1](first)
        out, illu = model(x, return_illumination=True)
    torch.testing.assert_close(out, second)
    torch.testing.assert_close(illu, illumination)


def test_set_scan_backend_reaches_every_ss2d():
    model = RetinexMamba(**TINY)
    model.set_scan_backend('mamba_ssm')
    assert {m.scan_backend for m in model.modules() if isinstance(m, SS2D)} == {'mamba_ssm'}
    with pytest.raises(ValueError, match='unknown scan_backend'):
        model.set_scan_backend('fast')


def test_trains_on_cpu():
    torch.manual_seed(0)
    model = RetinexMamba(**TINY)
    x, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    F.l1_loss(model(x), target).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads['stages.0.restorer.bottleneck.0.ss2d.A_logs'].abs().sum() > 0
