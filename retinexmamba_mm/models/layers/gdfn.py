"""Architecture: the gated-dconv feed-forward network (GDFN, from Restormer) inside the paper's IFA.

1x1 conv to two hidden branches, a depthwise 3x3 conv, ``gelu(x1) * x2``, 1x1 conv back.
Keeps channels-last memory: the two branches are channel slices, and their product is
channels-last again.
"""
import torch.nn.functional as F
from torch import nn


class GDFN(nn.Module):
    """Gated-dconv feed-forward network on (B, C, H, W).

    Args:
        channels (int): Input and output channels C.
        expansion (float): Hidden width is ``int(C * expansion)``. Default: 2.66 (106, 212, 425
            hidden channels for C = 40, 80, 160).
    """

    def __init__(self, channels, expansion=2.66):
        super().__init__()
        hidden = int(channels * expansion)
        self.proj_in = nn.Conv2d(channels, 2 * hidden, kernel_size=1)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, kernel_size=3, padding=1,
                                groups=2 * hidden)
        self.proj_out = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x):
        x1, x2 = self.dwconv(self.proj_in(x)).chunk(2, dim=1)
        return self.proj_out(F.gelu(x1) * x2)
