from .low_light_enhancer import LowLightEnhancer

__all__ = ['LowLightEnhancer']
