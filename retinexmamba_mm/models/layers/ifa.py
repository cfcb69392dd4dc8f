"""Architecture: the paper's IFA (Illumination-Fused Attention, "Fused-Attention" in the figure).

Restormer-style channel attention in which the keys and values come from the features and the
queries from the illumination feature ``illu_fea``, followed by a GDFN. Quirks of the authors'
model, kept on purpose (the released weights depend on them):

* ONE LayerNorm (``norm``) normalises both the features and the projected illumination feature;
* the attention residual is added to the *normalised* features;
* the query's 3x3 conv is a full conv (the authors name it ``q_dwconv``; it has no groups).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .channel_layer_norm import ChannelLayerNorm
from .gdfn import GDFN


class IlluminationCrossAttention(nn.Module):
    """Multi-head channel attention: queries from the illumination feature, keys/values from x.

    Per head, q and k are L2-normalised along the spatial axis and
    ``softmax(q k^T * temperature)`` is a (C/heads x C/heads) map applied to v
    (``cosine_gram``).

    Args:
        channels (int): Channels C (split evenly into the heads).
        num_heads (int): Number of heads.
    """

    def __init__(self, channels, num_heads):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f'{channels} channels do not split into {num_heads} heads')
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.to_kv = nn.Conv2d(channels, 2 * channels, kernel_size=1)
        self.kv_dwconv = nn.Conv2d(2 * channels, 2 * channels, kernel_size=3, padding=1,
                                   groups=2 * channels)
        self.to_q = nn.Conv2d(channels, channels, kernel_size=1)
        self.q_conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x, illu):
        b, c, h, w = x.shape
        k, v = self.kv_dwconv(self.to_kv(x)).chunk(2, dim=1)
        q = self.q_conv(self.to_q(illu))
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w) for t in (q, k, v))
        attn = (cosine_gram(q, k) * self.temperature).softmax(dim=-1)
        return self.proj_out((attn @ v).reshape(b, c, h, w))


def cosine_gram(q, k, piece=2048):
    """``normalize(q) @ normalize(k)^T`` over the last (spatial) axis, F.normalize's eps included.

    The product is (c x L) @ (L x c) with c = 40 and L up to H*W: a GEMM with a tiny output and
    a huge reduction, which cuBLAS runs on a handful of thread blocks (1.4 ms per call at
    400x600 on an H100). Summing the products of ``piece``-long slices (batched) spreads it over
    the GPU; the norms divide the small (c x c) result instead of two full normalised copies.
    """
    q_norm, k_norm = (t.norm(dim=-1).clamp_min(1e-12) for t in (q, k))
    scale = q_norm[..., :, None] * k_norm[..., None, :]
    length = q.shape[-1]
    pieces = length // piece
    if pieces < 2:
        return q @ k.transpose(-2, -1) / scale
    whole = pieces * piece

    def sliced(t):  # (..., c, whole) -> (..., pieces, c, piece)
        return t[..., :whole].unflatten(-1, (pieces, piece)).transpose(-3, -2)

    gram = (sliced(q) @ sliced(k).transpose(-2, -1)).sum(-3)
    if whole < length:
        gram = gram + q[..., whole:] @ k[..., whole:].transpose(-2, -1)
    return gram / scale


class IFA(nn.Module):
    """Illumination-fused attention block on (B, C, H, W) features.

    ``S = norm(illu_proj(illu_fea)); R = norm(x); R = R + attn(R, S); R = R + ffn(ffn_norm(R))``.

    Args:
        channels (int): Channels C of the features and of ``illu_fea``.
        num_heads (int): Attention heads.
        ffn_expansion (float): GDFN hidden width factor. Default: 2.66.
    """

    def __init__(self, channels, num_heads, ffn_expansion=2.66):
        super().__init__()
        self.illu_proj = nn.Conv2d(channels, channels, kernel_size=1)
        self.norm = ChannelLayerNorm(channels)
        self.attn = IlluminationCrossAttention(channels, num_heads)
        self.ffn_norm = ChannelLayerNorm(channels)
        self.ffn = GDFN(channels, ffn_expansion)

    def forward(self, x, illu_fea):
        if illu_fea.shape[-2:] != x.shape[-2:]:  # the authors' nearest resize (a no-op here)
            illu_fea = F.interpolate(illu_fea, size=x.shape[-2:], mode='nearest')
        illu = self.norm(self.illu_proj(illu_fea))
        x = self.norm(x)
        x = x + self.attn(x, illu)
        return x + self.ffn(self.ffn_norm(x))
