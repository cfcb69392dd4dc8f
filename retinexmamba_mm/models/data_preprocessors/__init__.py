from .low_light_data_preprocessor import LowLightDataPreprocessor
from .paired_mixup import PairedMixup

__all__ = ['LowLightDataPreprocessor', 'PairedMixup']
