from .check_finite_loss_hook import CheckFiniteLossHook, NonFiniteLossError
from .metrics_json_hook import MetricsJSONHook
from .save_enhanced_images_hook import SaveEnhancedImagesHook

__all__ = ['CheckFiniteLossHook', 'NonFiniteLossError', 'MetricsJSONHook', 'SaveEnhancedImagesHook']
