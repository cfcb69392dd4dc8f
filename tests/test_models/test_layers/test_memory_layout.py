"""One memory layout throughout, channels-last: given channels-last maps (and weights, as
``model.to(memory_format=torch.channels_last)`` makes them; otherwise convs copy their weights
into the input's layout at every call), the layers copy nothing, and the restorer hands every
block channels-last maps. SS2D is left out: the scan backends arrange their own inputs."""
import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from retinexmamba_mm.models.layers import (
    GDFN,
    IFA,
    ChannelLayerNorm,
    FeedForward,
    IFSSMBlock,
    IGABBlock,
    IlluminationEstimator,
    Restorer,
)

pytestmark = pytest.mark.usefixtures('single_thread')

CL = torch.channels_last
COPIES = ('aten::clone', 'aten::contiguous', 'aten::copy_')
# ops that start from their bias broadcast into the output: a copy_, but no layout change
BIAS_FILLS = ('aten::addmm', 'aten::_slow_conv2d_forward')
LEFT_OUT = 'left out of the copy count'


class LeftOut(nn.Module):
    """Runs ``module`` under a profiler tag, so that ``copies`` ignores what it does."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args):
        with record_function(LEFT_OUT):
            return self.module(*args)


def left_out(event):
    while event is not None:
        if event.name == LEFT_OUT:
            return True
        event = event.cpu_parent
    return False


def copies(run):
    """(op, shape) of every copy of a tensor (not a scalar) that run() makes, bias fills and
    ``LeftOut`` modules excepted."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
    return [(e.name, e.input_shapes[0]) for e in prof.events()
            if e.name in COPIES and e.input_shapes[0] and not left_out(e)
            and not (e.name == 'aten::copy_' and e.cpu_parent is not None
                     and e.cpu_parent.name in BIAS_FILLS)]


def is_channels_last(t):
    return t.is_contiguous(memory_format=CL)


def channels_last_map(*shape):
    return torch.randn(shape).contiguous(memory_format=CL)


@pytest.mark.parametrize('heads,batch,size', [
    (1, 1, (32, 48)),
    (2, 2, (64, 64)),   # 4096 pixels: two 2048-pixel slices, batched over the samples
    (4, 1, (64, 72)),   # 4608 pixels: two slices and a remainder ...
    (2, 2, (64, 72)),   # ... one sample at a time
])
def test_ifa_does_not_copy(heads, batch, size):
    m = IFA(40, heads).to(memory_format=CL)
    x, illu = channels_last_map(batch, 40, *size), channels_last_map(batch, 40, *size)
    assert copies(lambda: m(x, illu)) == []
    assert is_channels_last(m(x, illu))


@pytest.mark.parametrize('layer', [ChannelLayerNorm, GDFN, FeedForward])
def test_norm_and_ffns_do_not_copy(layer):
    m = layer(40).to(memory_format=CL)
    x = torch.randn(1, 32, 48, 40)       # FeedForward takes (B, H, W, C) ...
    if layer is not FeedForward:
        x = x.permute(0, 3, 1, 2)        # ... the others its NCHW view, channels-last memory
    assert copies(lambda: m(x)) == []
    assert m(x).stride() == x.stride()


def test_ifssm_block_does_not_copy_outside_ss2d():
    m = IFSSMBlock(40, 1, d_state=4, scan_backend='torch').to(memory_format=CL)
    m.ss2d = LeftOut(m.ss2d)
    x, illu = channels_last_map(1, 40, 32, 48), channels_last_map(1, 40, 32, 48)
    assert copies(lambda: m(x, illu)) == []
    assert is_channels_last(m(x, illu))


def test_igab_block_does_not_copy():
    m = IGABBlock(40, 20, 2).to(memory_format=CL)
    x, illu = channels_last_map(2, 40, 32, 48), channels_last_map(2, 40, 32, 48)
    assert copies(lambda: m(x, illu)) == []
    assert is_channels_last(m(x, illu))


def test_estimator_does_not_copy():
    estimator = IlluminationEstimator(40).to(memory_format=CL)
    img = channels_last_map(1, 3, 32, 48)
    assert copies(lambda: estimator(img)) == []
    assert all(is_channels_last(t) for t in estimator(img))


def test_restorer_blocks_see_channels_last_maps_only():
    """From NCHW inputs the restorer converts the embedding and illu_fea once; from
    channels-last inputs (and weights) it copies nothing outside SS2D; same results."""
    torch.manual_seed(0)
    m = Restorer(n_feat=8, num_blocks=(1, 1, 1), d_state=4, scan_backend='torch').eval()
    layouts = []
    for block in m.modules():
        if isinstance(block, IFSSMBlock):
            block.ss2d = LeftOut(block.ss2d)
            block.register_forward_hook(lambda mod, args, out: layouts.append(
                [is_channels_last(t) for t in (*args, out)]))
    x, illu_fea = torch.randn(1, 3, 32, 48), torch.randn(1, 8, 32, 48)
    with torch.no_grad():
        out = m(x, illu_fea)
        assert layouts == [[True] * 3] * 5 and out.is_contiguous()
        m.to(memory_format=CL)
        x, illu_fea = x.contiguous(memory_format=CL), illu_fea.contiguous(memory_format=CL)
        assert copies(lambda: m(x, illu_fea)) == []
        torch.testing.assert_close(m(x, illu_fea), out, rtol=0, atol=1e-5)
