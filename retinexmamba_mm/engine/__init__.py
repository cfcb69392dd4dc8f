"""Training machinery registered in MMagic's registries: the lr schedule and the NaN guard."""
from .hooks import CheckFiniteLossHook, NonFiniteLossError
from .schedulers import CosineRestartCyclicLR

__all__ = ['CosineRestartCyclicLR', 'CheckFiniteLossHook', 'NonFiniteLossError']
