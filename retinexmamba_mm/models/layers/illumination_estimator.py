"""Architecture: the paper's Illumination Estimator (identical to Retinexformer's).

From the image I and its channel mean (the illumination prior) it predicts an illumination
feature map ``illu_fea`` (which guides every IFA of the restorer) and a 3-channel illumination
map L (unconstrained: no clamp, no sigmoid), used as ``I_lu = I * L + I``.
"""
import torch
from torch import nn


class IlluminationEstimator(nn.Module):
    """1x1 conv -> 5x5 conv in 4 groups -> 1x1 conv.

    The 5x5 conv is grouped (groups=4), not depthwise, as in the authors' code. The outputs
    keep the image's memory layout (NCHW or channels-last).

    Args:
        channels (int): Width of the illumination feature (n_feat).
        in_channels (int): Image channels. The channel mean is appended. Default: 3.
        out_channels (int): Channels of the illumination map. Default: 3.
    """

    def __init__(self, channels, in_channels=3, out_channels=3):
        super().__init__()
        self.proj_in = nn.Conv2d(in_channels + 1, channels, kernel_size=1)
        self.grouped_conv = nn.Conv2d(channels, channels, kernel_size=5, padding=2,
                                      groups=in_channels + 1)
        self.proj_out = nn.Conv2d(channels, out_channels, kernel_size=1)

    def forward(self, img):
        """Returns ``(illu_fea, illumination_map)``."""
        # the mean over the (B, H, W, C) view is channels-last-strided, so torch.cat keeps a
        # channels-last img channels-last (a keepdim mean over dim 1 is NCHW-strided whatever
        # img's layout, and cat falls back to NCHW on mixed layouts)
        prior = img.permute(0, 2, 3, 1).mean(dim=-1, keepdim=True).permute(0, 3, 1, 2)
        illu_fea = self.grouped_conv(self.proj_in(torch.cat([img, prior], dim=1)))
        return illu_fea, self.proj_out(illu_fea)
