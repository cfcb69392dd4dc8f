"""The network (torch + einops only) and the authors' checkpoint layout."""
from .backbones import RetinexMamba
from .official import convert_official_state_dict, is_official_checkpoint, load_official_checkpoint

# editors/ and data_preprocessors/ are MMagic-facing: retinexmamba_mm.registry imports them when
# MMagic is installed; nothing is exported from them here.

__all__ = ['RetinexMamba', 'convert_official_state_dict', 'is_official_checkpoint',
           'load_official_checkpoint']
