"""PSNR the way the low-light papers report it."""
from mmagic.registry import METRICS

from .base import LowLightMetric
from .functional import psnr


@METRICS.register_module()
class LowLightPSNR(LowLightMetric):
    """PSNR of the authors' test protocol, reported as ``PSNR`` (``PSNR_GTmean`` with GT-mean).

    Per image: the output clamped to [0, 1], float RGB, whole image (no border crop, not on Y),
    10 log10(1 / MSE); then the mean over images. Not quantised to uint8 first: the authors'
    script feeds the float output to PSNR (only SSIM sees uint8). Identical images score 100 dB,
    as in their script. MMagic's own ``PSNR`` differs: [0, 255] scale, ``crop_border`` and ``Y``
    options, infinity for identical images.

    Args: see :class:`~.base.LowLightMetric` (``gt_mean``, ``gray_weights``, keys, prefix).
    """

    metric = 'PSNR'

    def score(self, pred, gt):
        return psnr(pred, gt)
