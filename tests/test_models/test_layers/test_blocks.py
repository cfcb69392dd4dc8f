"""IFSSM and IGAB blocks: residual placement, ablation switches, and IG-MSA against a
reference written from Retinexformer's description."""
import pytest
import torch
import torch.nn.functional as F

from retinexmamba_mm.models.layers import IFSSMBlock, IGABBlock

pytestmark = pytest.mark.usefixtures('single_thread')


def randomised(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return module.double()


def channels_last(t):
    return t.permute(0, 2, 3, 1)


def test_ifssm_block_residuals():
    """y = IFA(x); x = SS2D(y) + x (on the block input); x = FFN(LN(x)) + x."""
    torch.manual_seed(0)
    m = randomised(IFSSMBlock(8, num_heads=1, d_state=4, scan_backend='torch'))
    x, illu = torch.randn(1, 8, 4, 5, dtype=torch.float64), torch.randn(1, 8, 4, 5,
                                                                        dtype=torch.float64)
    y = channels_last(m.ifa(x, illu))
    h = m.ss2d(y) + channels_last(x)
    h = m.ffn(F.layer_norm(h, (8, ), m.ffn_norm.weight, m.ffn_norm.bias)) + h
    torch.testing.assert_close(m(x, illu), h.permute(0, 3, 1, 2))


@pytest.mark.parametrize('use_ifa,use_ss2d', [(False, True), (True, False)])
def test_ifssm_block_ablations(use_ifa, use_ss2d):
    torch.manual_seed(0)
    m = randomised(IFSSMBlock(8, 1, 4, use_ifa=use_ifa, use_ss2d=use_ss2d, scan_backend='torch'))
    assert (m.ifa is None) != use_ifa and (m.ss2d is None) != use_ss2d
    x, illu = torch.randn(1, 8, 4, 5, dtype=torch.float64), torch.randn(1, 8, 4, 5,
                                                                        dtype=torch.float64)
    if use_ss2d:   # no IFA: SS2D sees the block input
        h = m.ss2d(channels_last(x)) + channels_last(x)
    else:          # no SS2D: identity in its place
        h = channels_last(m.ifa(x, illu)) + channels_last(x)
    h = m.ffn(F.layer_norm(h, (8, ), m.ffn_norm.weight, m.ffn_norm.bias)) + h
    torch.testing.assert_close(m(x, illu), h.permute(0, 3, 1, 2))
    if not use_ifa:  # nothing guided by illumination is left in the block
        torch.testing.assert_close(m(x, illu), m(x, torch.zeros_like(illu)))


def test_ifssm_block_needs_a_mixer():
    with pytest.raises(ValueError, match='needs IFA or SS2D'):
        IFSSMBlock(8, 1, 4, use_ifa=False, use_ss2d=False)


def reference_ig_msa(m, x, illu, heads):
    """Retinexformer's IG-MSA on channels-last x, illu (b, h, w, c)."""
    b, h, w, c = x.shape
    tokens = x.reshape(b, h * w, c)
    q, k, v_in = (tokens @ layer.weight.t() for layer in (m.to_q, m.to_k, m.to_v))
    v = v_in * illu.reshape(b, h * w, c)
    d = c // heads
    outs = []
    for i in range(heads):
        part = slice(i * d, (i + 1) * d)
        qh = F.normalize(q[..., part].transpose(1, 2), dim=-1)   # (b, d, hw)
        kh = F.normalize(k[..., part].transpose(1, 2), dim=-1)
        attn = torch.softmax(kh @ qh.transpose(1, 2) * m.rescale[i], dim=-1)   # K^T Q
        outs.append((attn @ v[..., part].transpose(1, 2)).transpose(1, 2))
    out = torch.cat(outs, -1) @ m.proj.weight.t() + m.proj.bias
    pos = v_in.reshape(b, h, w, c).permute(0, 3, 1, 2)
    pos = F.conv2d(F.gelu(F.conv2d(pos, m.pos_emb[0].weight, padding=1, groups=c)),
                   m.pos_emb[2].weight, padding=1, groups=c)
    return out.view(b, h, w, c) + pos.permute(0, 2, 3, 1)


@pytest.mark.parametrize('heads,size', [
    (1, (3, 5)),
    (2, (3, 5)),
    (4, (64, 67)),   # 4288 pixels: two 2048-pixel slices and a remainder, per sample
])
def test_igab_block_matches_reference(heads, size):
    torch.manual_seed(0)
    m = randomised(IGABBlock(8, dim_head=8 // heads, num_heads=heads))
    x, illu = (torch.randn(2, 8, *size, dtype=torch.float64) for _ in range(2))
    h = channels_last(x) + reference_ig_msa(m.msa, channels_last(x), channels_last(illu), heads)
    h = m.ffn(F.layer_norm(h, (8, ), m.ffn_norm.weight, m.ffn_norm.bias)) + h
    torch.testing.assert_close(m(x, illu), h.permute(0, 3, 1, 2))
