"""Inference on your own images: ``init_model``, ``enhance`` (tiled for large images)."""
from .checkpoint import generator_state_dict
from .inference import (
    DEFAULT_OVERLAP,
    default_config_path,
    enhance,
    illumination_to_image,
    init_model,
)
from .tiling import auto_tile_size, tile_spans, tiled_forward

__all__ = ['DEFAULT_OVERLAP', 'auto_tile_size', 'default_config_path',
           'enhance', 'generator_state_dict', 'illumination_to_image', 'init_model',
           'tile_spans', 'tiled_forward']
