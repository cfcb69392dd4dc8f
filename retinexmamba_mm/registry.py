"""Registers every retinexmamba_mm module into MMagic's registries.

Imported by ``retinexmamba_mm/__init__.py`` when MMagic is installed, so a config with
``default_scope='mmagic'`` names our types next to MMagic's (``type='RetinexMamba'`` beside
``type='PSNR'``). The network itself stays free of MMagic; here it is registered by reference.
"""
from mmagic.registry import MODELS

from . import datasets, engine, evaluation  # noqa: F401  (modules register themselves)
from .models import data_preprocessors, editors  # noqa: F401
from .models.backbones import RetinexMamba

MODELS.register_module(module=RetinexMamba)
