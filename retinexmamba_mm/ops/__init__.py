from .layer_norm import layer_norm
from .selective_scan import available_backends, cross_selective_scan, selective_scan

__all__ = ['selective_scan', 'cross_selective_scan', 'available_backends', 'layer_norm']
