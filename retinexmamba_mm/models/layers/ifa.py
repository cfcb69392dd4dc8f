"""Architecture: the paper's IFA (Illumination-Fused Attention, "Fused-Attention" in the figure).

Restormer-style channel attention in which the keys and values come from the features and the
queries from the illumination feature ``illu_fea``, followed by a GDFN. Quirks of the authors'
model, kept on purpose (the released weights depend on them):

* ONE LayerNorm (``norm``) normalises both the features and the projected illumination feature;
* the attention residual is added to the *normalised* features;
* the query's 3x3 conv is a full conv (the authors name it ``q_dwconv``; it has no groups).

Every layer here keeps channels-last memory: given channels-last inputs, nothing is copied
into another layout (the attention reads its tokens as (B, H*W, C) views).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .channel_layer_norm import ChannelLayerNorm
from .gdfn import GDFN


class IlluminationCrossAttention(nn.Module):
    """Multi-head channel attention: queries from the illumination feature, keys/values from x.

    A head is a block of C/heads consecutive channels. Per head, q and k are L2-normalised
    along the spatial axis and ``softmax(q k^T * temperature)`` is a (C/heads x C/heads) map
    applied to v (``channel_attention``).

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
        out = channel_attention(*(tokens(t) for t in (q, k, v)), self.temperature,
                                self.num_heads)
        return self.proj_out(out.view(b, h, w, c).permute(0, 3, 1, 2))


def tokens(t):
    """(B, C, H, W) -> (B, H*W, C): a view when t is channels-last memory, or a channel slice
    of such a tensor (its pixel stride is then wider than C, which GEMMs take as it is)."""
    return t.permute(0, 2, 3, 1).flatten(1, 2)


def channel_attention(q, k, v, temperature, num_heads):
    """Per head: ``softmax(normalize(q) normalize(k)^T * temperature) @ v`` on (B, L, C) tokens.

    Heads are blocks of C/heads channels, normalised along L; ``temperature`` is (heads, 1, 1).
    All heads share two GEMMs instead of a per-head reshape of the tokens (a copy, as the
    heads' channels are not a separate axis of channels-last memory): the full (C x C) cosine
    Gram, of which only the diagonal blocks are kept, and one (L x C) @ (C x C) product with
    the block-diagonal attention. The extra FLOPs (a factor of heads, on small GEMMs) are
    negligible. Returns (B, L, C), contiguous.
    """
    b, _, c = q.shape
    width = c // num_heads
    cos = cosine_gram(q, k).reshape(b, num_heads, width, num_heads, width)
    blocks = cos.diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2)          # (B, heads, w, w)
    attn = (blocks * temperature).softmax(dim=-1)
    eye = torch.eye(num_heads, dtype=attn.dtype, device=attn.device)
    block_diagonal = (attn[:, :, :, None, :] * eye[:, None, :, None]).reshape(b, c, c)
    return v @ block_diagonal.transpose(1, 2)


def cosine_gram(q, k, piece=2048):
    """``normalize(q)^T @ normalize(k)`` of (B, L, C) tokens over L, F.normalize's eps included.

    The product is (C x L) @ (L x C) with C = 40..160 and L up to H*W: a GEMM with a tiny
    output and a huge reduction, which cuBLAS runs on a handful of thread blocks (1.4 ms per
    call at 400x600 on an H100). Summing the products of ``piece``-long slices (batched)
    spreads it over the GPU; the norms divide the small (C x C) result instead of two full
    normalised copies.
    """
    q_norm, k_norm = (t.norm(dim=1).clamp_min(1e-12) for t in (q, k))
    return _gram(q, k, piece) / (q_norm[:, :, None] * k_norm[:, None, :])


def _gram(q, k, piece):
    """``q^T @ k`` summed over ``piece``-long slices of L; the slices are views of the tokens."""
    length = q.shape[1]
    pieces = length // piece
    if pieces < 2:
        return q.transpose(1, 2) @ k
    whole = pieces * piece
    if whole < length and q.shape[0] > 1:
        # the (sample, slice) pairs then have no common stride, and folding them into one
        # GEMM batch axis would copy the tokens: one sample at a time instead
        return torch.cat([_gram(q1, k1, piece) for q1, k1 in zip(q.split(1), k.split(1))])
    q_pieces, k_pieces = (t[:, :whole].unflatten(1, (pieces, piece)) for t in (q, k))
    gram = (q_pieces.transpose(-2, -1) @ k_pieces).sum(1)
    if whole < length:
        gram = gram + q[:, whole:].transpose(1, 2) @ k[:, whole:]
    return gram


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
