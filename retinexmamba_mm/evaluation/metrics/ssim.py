"""SSIM the way the low-light papers report it."""
from mmagic.registry import METRICS

from .base import LowLightMetric
from .functional import ssim, to_uint8


@METRICS.register_module()
class LowLightSSIM(LowLightMetric):
    """SSIM of the authors' test protocol, reported as ``SSIM`` (``SSIM_GTmean`` with GT-mean).

    Per image: output and target rounded to uint8 RGB (``skimage.img_as_ubyte`` rounding of the
    clamped output), SSIM per channel with a Gaussian window (11 taps, sigma 1.5),
    C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, averaged over the valid region (positions whose
    window lies inside the image) and then over the three channels; then the mean over images.

    Args: see :class:`~.base.LowLightMetric` (``gt_mean``, ``gray_weights``, keys, prefix).
    """

    metric = 'SSIM'

    def score(self, pred, gt):
        return ssim(to_uint8(pred), to_uint8(gt))
