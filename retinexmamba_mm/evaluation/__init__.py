"""Evaluation: the low-light test protocol as MMagic metrics."""
from .metrics import LPIPS, LowLightMetric, LowLightPSNR, LowLightRMSE, LowLightSSIM

__all__ = ['LowLightMetric', 'LowLightPSNR', 'LowLightSSIM', 'LowLightRMSE', 'LPIPS']
