"""Training machinery registered in MMagic's registries: the lr schedule, the NaN guard and the
hooks that write test metrics and enhanced images."""
from .hooks import CheckFiniteLossHook, MetricsJSONHook, NonFiniteLossError, SaveEnhancedImagesHook
from .schedulers import CosineRestartCyclicLR

__all__ = ['CosineRestartCyclicLR', 'CheckFiniteLossHook', 'NonFiniteLossError', 'MetricsJSONHook',
           'SaveEnhancedImagesHook']
