"""Architecture: Retinexformer's IGAB block (Illumination-Guided Attention Block), the baseline.

    x = IG-MSA(x, illu_fea) + x
    x = FFN(LayerNorm(x)) + x

IG-MSA is multi-head channel self-attention whose values are multiplied by the illumination
feature, plus a depthwise-conv positional branch on the (unguided) values. Heads: width // n_feat,
each of n_feat channels. Used by ``RetinexMamba(block_type='igab')`` so the baseline trains from
the same code, estimator and U-shape.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .feed_forward import FeedForward


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

        def heads(t):  # (b, hw, c) -> (b, heads, c / heads, hw)
            return t.reshape(b, h * w, self.num_heads, -1).permute(0, 2, 3, 1)

        q = F.normalize(heads(self.to_q(x)), dim=-1)
        k = F.normalize(heads(self.to_k(x)), dim=-1)
        v = heads(v_in * illu.reshape(b, h * w, c))
        attn = (k @ q.transpose(-2, -1) * self.rescale).softmax(dim=-1)
        out = self.proj((attn @ v).permute(0, 3, 1, 2).reshape(b, h * w, c)).view(b, h, w, c)
        pos = self.pos_emb(v_in.reshape(b, h, w, c).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
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
        self.ffn_norm = nn.LayerNorm(channels)
        self.ffn = FeedForward(channels)

    def forward(self, x, illu_fea):
        x = x.permute(0, 2, 3, 1)
        x = x + self.msa(x, illu_fea.permute(0, 2, 3, 1))
        x = x + self.ffn(self.ffn_norm(x))
        return x.permute(0, 3, 1, 2)
