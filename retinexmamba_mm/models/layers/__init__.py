"""Building blocks of RetinexMamba (and of the Retinexformer baseline), one per file.

Each file's docstring names the part of the paper it implements. Plain torch:
nothing here imports mmengine or mmagic.
"""
from .channel_layer_norm import ChannelLayerNorm
from .feed_forward import FeedForward
from .gdfn import GDFN
from .ifa import IFA, IlluminationCrossAttention
from .ifssm import IFSSMBlock
from .igab import IGMSA, IGABBlock
from .illumination_estimator import IlluminationEstimator
from .layer_norm import LayerNorm
from .restorer import BlockStack, Restorer
from .ss2d import SS2D

__all__ = ['ChannelLayerNorm', 'FeedForward', 'GDFN', 'IFA', 'IlluminationCrossAttention',
           'IFSSMBlock', 'IGABBlock', 'IGMSA', 'IlluminationEstimator', 'LayerNorm', 'BlockStack',
           'Restorer', 'SS2D']
