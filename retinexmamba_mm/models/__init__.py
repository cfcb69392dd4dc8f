"""The network (torch + einops only) and the authors' checkpoint layout.

``editors`` and ``data_preprocessors`` (MMagic-facing) are imported by ``retinexmamba_mm.registry``
when MMagic is installed; nothing is exported from them here.
"""
from .backbones import RetinexMamba
from .official import convert_official_state_dict, is_official_checkpoint, load_official_checkpoint

__all__ = ['RetinexMamba', 'convert_official_state_dict', 'is_official_checkpoint',
           'load_official_checkpoint']
