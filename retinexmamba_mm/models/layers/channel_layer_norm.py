"""Architecture: the "WithBias" LayerNorm of Restormer/IFA, normalising the channels of an NCHW map.

Mean and biased variance over the channel axis at every pixel, eps 1e-5 inside the square root,
then a per-channel scale and bias: exactly ``nn.LayerNorm`` applied to the channels-last view.
That view is contiguous for maps in channels-last memory (the layout the restorer keeps), so
nothing is copied; an NCHW-contiguous map is copied. Computed by ``ops.layer_norm`` (a fused
kernel on CUDA).
"""
import torch
from torch import nn

from ...ops.layer_norm import layer_norm


class ChannelLayerNorm(nn.Module):
    """LayerNorm over dim 1 of a (B, C, H, W) tensor; returns channels-last memory.

    Args:
        channels (int): Number of channels C.
        eps (float): Added to the variance inside the square root. Default: 1e-5.
    """

    def __init__(self, channels, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        return layer_norm(x.permute(0, 2, 3, 1), self.weight, self.bias, self.eps).permute(
            0, 3, 1, 2)
