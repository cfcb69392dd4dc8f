"""The restorer's U-shape: widths, heads and the SS2D state sizes per level (with the decoder's
doubled d_state), and the initialisation rules."""
import math

import pytest
import torch
from torch import nn

from retinexmamba_mm.models.layers import Restorer

pytestmark = pytest.mark.usefixtures('single_thread')


def test_levels_widths_heads_and_state_sizes():
    m = Restorer(n_feat=40, num_blocks=(1, 2, 2), d_state=16)
    expected = {  # path: (blocks, width, heads, d_state)
        'encoders.0.blocks': (1, 40, 1, 16), 'encoders.1.blocks': (2, 80, 2, 32),
        'bottleneck': (2, 160, 4, 64), 'decoders.1.blocks': (2, 80, 2, 64),
        'decoders.0.blocks': (1, 40, 1, 32)}
    for path, (count, width, heads, state) in expected.items():
        stack = m.get_submodule(path)
        assert len(stack) == count, path
        for block in stack:
            assert block.ss2d.out_proj.out_features == width, path
            assert block.ifa.attn.num_heads == heads, path
            assert block.ss2d.A_logs.shape[1] == state, path
    assert m.encoders[0]['down_feat'].weight.shape == (80, 40, 4, 4)
    assert m.decoders[1]['up'].weight.shape == (160, 80, 2, 2)
    assert m.decoders[1]['fuse'].weight.shape == (80, 160, 1, 1)


def test_init_rules():
    torch.manual_seed(0)
    m = Restorer(n_feat=40, num_blocks=(1, 2, 2))
    weights = torch.cat([mod.weight.flatten() for mod in m.modules()
                         if isinstance(mod, nn.Linear)])
    assert abs(weights.std().item() - 0.02) < 1e-3 and weights.abs().max() <= 2.0
    for mod in m.modules():
        if isinstance(mod, nn.Linear) and mod.bias is not None:
            assert torch.count_nonzero(mod.bias) == 0
        if isinstance(mod, nn.LayerNorm) or type(mod).__name__ == 'ChannelLayerNorm':
            assert torch.equal(mod.weight, torch.ones_like(mod.weight))
            assert torch.equal(mod.bias, torch.zeros_like(mod.bias))
    # convs keep PyTorch's default (kaiming-uniform, a=sqrt(5)): |w| <= 1/sqrt(fan_in)
    emb = m.embedding.weight
    bound = 1 / math.sqrt(3 * 3 * 3)
    assert emb.abs().max() <= bound and emb.abs().max() > 0.8 * bound
