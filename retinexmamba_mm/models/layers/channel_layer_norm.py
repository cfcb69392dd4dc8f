"""Architecture: the "WithBias" LayerNorm of Restormer/IFA, normalising the channels of an NCHW map.

Mean and biased variance over the channel axis at every pixel, eps 1e-5 inside the square root,
then a per-channel scale and bias: exactly ``nn.LayerNorm`` applied to the channels-last view.
"""
import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over dim 1 of a (B, C, H, W) tensor.

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
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)
