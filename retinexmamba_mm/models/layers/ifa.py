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
    ``softmax(q k^T * temperature)`` is a (C/heads x C/heads) map applied to v.

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
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.proj_out((attn @ v).reshape(b, c, h, w))


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
