"""RMSE the way the authors' separate evaluation script reports it."""
from mmagic.registry import METRICS

from .base import LowLightMetric
from .functional import rmse_gray, to_uint8


@METRICS.register_module()
class LowLightRMSE(LowLightMetric):
    """RMSE on the [0, 255] scale of the gray images, reported as ``RMSE`` (lower is better).

    The convention of the authors' ``Enhancement/RMSE.py``, which runs on the saved PNGs: output
    and target as uint8 RGB (the clamped output rounded, as when saved), converted to uint8
    BT.601 gray by OpenCV, then sqrt(mean((a - b)^2)) per image; then the mean over images.
    Two deliberate differences: the difference is taken in float64, never in uint8 (their script
    hands uint8 arrays to scikit-learn, whose older versions subtract them with wrap-around), and
    the image is not cropped to a multiple of 4 (their ``align_to_four``; a no-op on the LOL sizes
    600x400 and 384x384).

    Args: see :class:`~.base.LowLightMetric` (``gt_mean``, ``gray_weights``, keys, prefix).
    """

    metric = 'RMSE'

    def score(self, pred, gt):
        return rmse_gray(to_uint8(pred), to_uint8(gt))
