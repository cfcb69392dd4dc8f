from .cosine_restart_cyclic_lr import CosineRestartCyclicLR

__all__ = ['CosineRestartCyclicLR']
