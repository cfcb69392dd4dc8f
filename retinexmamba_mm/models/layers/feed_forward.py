"""Architecture: the FFN after SS2D in the paper's IFSSM block (and in Retinexformer's IGAB).

1x1 conv C -> 4C, GELU, depthwise 3x3, GELU, 1x1 conv 4C -> C, all without bias. Takes and
returns channels-last tensors, the layout the block keeps between SS2D and the FFN; their NCHW
permutes are channels-last memory, which the convs take (NHWC) without copies.
"""
import torch.nn.functional as F
from torch import nn


class FeedForward(nn.Module):
    """Pointwise-depthwise-pointwise FFN on channels-last (B, H, W, C) tensors.

    Args:
        channels (int): Input and output channels C.
        mult (int): Hidden width is ``mult * C``. Default: 4.
    """

    def __init__(self, channels, mult=4):
        super().__init__()
        hidden = channels * mult
        self.proj_in = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
        self.dwconv = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, groups=hidden,
                                bias=False)
        self.proj_out = nn.Conv2d(hidden, channels, kernel_size=1, bias=False)

    def forward(self, x):
        x = F.gelu(self.proj_in(x.permute(0, 3, 1, 2)))
        x = self.proj_out(F.gelu(self.dwconv(x)))
        return x.permute(0, 2, 3, 1)
