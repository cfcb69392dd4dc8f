from .selective_scan import available_backends, cross_selective_scan, selective_scan

__all__ = ['selective_scan', 'cross_selective_scan', 'available_backends']
