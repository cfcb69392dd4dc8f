"""Low-light metrics registered in MMagic's METRICS (use them under MultiValLoop/MultiTestLoop)."""
from .base import LowLightMetric
from .lpips_metric import LPIPS
from .psnr import LowLightPSNR
from .rmse import LowLightRMSE
from .ssim import LowLightSSIM

__all__ = ['LowLightMetric', 'LowLightPSNR', 'LowLightSSIM', 'LowLightRMSE', 'LPIPS']
