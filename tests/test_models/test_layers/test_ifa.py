"""IFA, its GDFN and the illumination estimator against references written from the spec,
including the authors' quirks (shared LayerNorm, full 3x3 query conv, grouped 5x5 conv)."""
import pytest
import torch
import torch.nn.functional as F

from retinexmamba_mm.models.layers import IFA, ChannelLayerNorm, IlluminationEstimator
from retinexmamba_mm.models.layers.ifa import cosine_gram

pytestmark = pytest.mark.usefixtures('single_thread')


def channel_norm(x, weight, bias):
    """LayerNorm over channels at every pixel, biased variance, eps inside the square root."""
    mu = x.mean(1, keepdim=True)
    var = ((x - mu)**2).mean(1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


def conv(x, layer, groups=1):
    pad = layer.weight.shape[-1] // 2
    return F.conv2d(x, layer.weight, layer.bias, padding=pad, groups=groups)


def reference_ifa(m, x, illu, heads):
    c = x.shape[1]
    s = channel_norm(conv(illu, m.illu_proj), m.norm.weight, m.norm.bias)   # same norm ...
    r = channel_norm(x, m.norm.weight, m.norm.bias)                          # ... for both
    a = m.attn
    k, v = conv(conv(r, a.to_kv), a.kv_dwconv, groups=2 * c).chunk(2, 1)
    q = conv(conv(s, a.to_q), a.q_conv)                                      # full 3x3 conv
    b, _, h, w = x.shape
    outs = []
    for i in range(heads):
        part = slice(i * c // heads, (i + 1) * c // heads)
        qh, kh, vh = (t[:, part].reshape(b, -1, h * w) for t in (q, k, v))
        qh, kh = F.normalize(qh, dim=-1), F.normalize(kh, dim=-1)
        attn = torch.softmax(qh @ kh.transpose(1, 2) * a.temperature[i], dim=-1)
        outs.append((attn @ vh).reshape(b, -1, h, w))
    r = r + conv(torch.cat(outs, 1), a.proj_out)                             # residual on norm(x)
    f = m.ffn
    g1, g2 = conv(conv(channel_norm(r, m.ffn_norm.weight, m.ffn_norm.bias), f.proj_in),
                  f.dwconv, groups=f.dwconv.weight.shape[0]).chunk(2, 1)
    return r + conv(F.gelu(g1) * g2, f.proj_out)


def randomised(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return module


@pytest.mark.parametrize('heads,size', [
    (1, (5, 6)),
    (2, (64, 67)),   # 4288 pixels: two 2048-pixel slices and a remainder, per sample
    (4, (3, 7)),
])
def test_ifa_matches_reference(heads, size):
    torch.manual_seed(0)
    m = randomised(IFA(16, num_heads=heads)).double()
    x, illu = (torch.randn(2, 16, *size, dtype=torch.float64) for _ in range(2))
    expected = reference_ifa(m, x, illu, heads)
    torch.testing.assert_close(m(x, illu), expected)
    channels_last = (t.contiguous(memory_format=torch.channels_last) for t in (x, illu))
    torch.testing.assert_close(m(*channels_last), expected)


@pytest.mark.parametrize('batch,length', [(2, 30), (1, 2048 * 3), (2, 2048 * 3),
                                          (1, 2048 * 3 + 77), (2, 2048 * 3 + 77)])
def test_cosine_gram_matches_normalize_then_matmul(batch, length):
    """(B, L, C) tokens, k a channel slice as in IFA (pixel stride 2C); sliced sums over L
    (whole pieces, a remainder, one sample at a time) and an all-zero channel (F.normalize's
    eps keeps it at zero instead of NaN)."""
    torch.manual_seed(0)
    q, k = torch.randn(batch, length, 5), torch.randn(batch, length, 10)[..., 5:]
    q[0, :, 0] = 0
    ref = (F.normalize(q.double(), dim=1).transpose(1, 2) @ F.normalize(k.double(), dim=1))
    out = cosine_gram(q, k, piece=2048)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-6)


def test_ifa_quirks_are_kept():
    m = IFA(40, num_heads=1)
    norms = [n for n, mod in m.named_modules() if isinstance(mod, ChannelLayerNorm)]
    assert norms == ['norm', 'ffn_norm']                   # one norm shared by x and illu_fea
    assert m.attn.q_conv.groups == 1 and m.attn.q_conv.weight.shape == (40, 40, 3, 3)
    assert m.attn.kv_dwconv.groups == 80
    assert m.ffn.proj_out.in_channels == 106               # int(2.66 * 40)
    assert m.attn.temperature.shape == (1, 1, 1) and torch.equal(m.attn.temperature,
                                                                 torch.ones(1, 1, 1))


def test_channel_layer_norm_formula():
    m = randomised(ChannelLayerNorm(6)).double()
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64) * 5 + 3
    torch.testing.assert_close(m(x), channel_norm(x, m.weight, m.bias))


def test_estimator_matches_reference():
    torch.manual_seed(0)
    m = randomised(IlluminationEstimator(40)).double()
    img = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    assert m.grouped_conv.groups == 4 and m.grouped_conv.weight.shape == (40, 10, 5, 5)
    prior = img.mean(1, keepdim=True)
    fea = conv(conv(torch.cat([img, prior], 1), m.proj_in), m.grouped_conv, groups=4)
    illu_fea, illumination = m(img)
    torch.testing.assert_close(illu_fea, fea)
    torch.testing.assert_close(illumination, conv(fea, m.proj_out))
