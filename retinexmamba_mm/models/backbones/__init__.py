from .retinexmamba import RetinexMamba

__all__ = ['RetinexMamba']
