"""Architecture: Retinexformer's IGAB block (Illumination-Guided Attention Block), the baseline.

    x = IG-MSA(x, illu_fea) + x
    x = FFN(LayerNorm(x)) + x

IG-MSA is multi-head channel self-attention whose values are multiplied by the illumination
feature, plus a depthwise-conv positional branch on the (unguided) values. Heads: width // n_feat,
each of n_feat channels. Used by ``RetinexMamba(block_type='igab')`` so the baseline trains from
the same code, estimator and U-shape. The attention is IFA's ``channel_attention`` (all heads in
shared GEMMs on the (B, H*W, C) tokens), so channels-last maps are read without copies.
"""
import torch
from torch import nn

from .feed_forward import FeedForward
from .ifa import channel_attention
from .layer_norm import LayerNorm


class IGMSA(nn.Module):
    """Illumination-guided multi-head self-attention on channels-last (B, H, W, C) tensors.

    Args:
        channels (int): Width C.
        dim_head (int): Channels per head.
        num_heads (int): Heads; ``dim_head * num_heads`` must equal C (the illumination
            feature is split across heads like the values).
    """

    def __init__(self, channels, dim_head, num_heads):
        super().__init__()
        if dim_head * num_heads != channels:
            raise ValueError(f'IG-MSA needs dim_head * num_heads == channels, got {dim_head} * '
                             f'{num_heads} != {channels}')
        self.num_heads = num_heads
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.to_k = nn.Linear(channels, channels, bias=False)
        self.to_v = nn.Linear(channels, channels, bias=False)
        self.rescale = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.proj = nn.Linear(channels, channels)
        self.pos_emb = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False))

    def forward(self, x, illu):
        b, h, w, c = x.shape
        x = x.reshape(b, h * w, c)
        v_in = self.to_v(x)
        # Retinexformer's attention map is K^T Q: the keys take the queries' place
        out = channel_attention(self.to_k(x), self.to_q(x), v_in * illu.reshape(b, h * w, c),
                                self.rescale, self.num_heads)
        out = self.proj(out).view(b, h, w, c)
        pos = self.pos_emb(v_in.view(b, h, w, c).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return out + pos


class IGABBlock(nn.Module):
    """One IGAB block on (B, C, H, W) features, guided by ``illu_fea`` of the same shape.

    Args:
        channels (int): Width C.
        dim_head (int): Channels per attention head (n_feat).
        num_heads (int): Heads (C // n_feat).
    """

    def __init__(self, channels, dim_head, num_heads):
        super().__init__()
        self.msa = IGMSA(channels, dim_head, num_heads)
        self.ffn_norm = LayerNorm(channels)
        self.ffn = FeedForward(channels)

    def forward(self, x, illu_fea):
        x = x.permute(0, 2, 3, 1)
        x = x + self.msa(x, illu_fea.permute(0, 2, 3, 1))
        x = x + self.ffn(self.ffn_norm(x))
        return x.permute(0, 3, 1, 2)
