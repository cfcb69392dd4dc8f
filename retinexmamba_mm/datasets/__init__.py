"""Paired low/normal-light data: reading, pairing, the LOL dataset, transforms, synthesis.

``image_io``, ``paired_folders``, ``synthesize`` and ``demo_data`` need only numpy, PIL and
OpenCV; the dataset and the transforms register themselves into MMagic's registries and are
imported only when MMagic is installed.
"""
from ..compat import MMAGIC_AVAILABLE
from .demo_data import make_demo_dataset
from .image_io import ImageReadError, check_image_file, read_image_rgb
from .paired_folders import natural_sort_key, pair_images
from .synthesize import LowLightParams, sample_params, synthesize_folder, synthesize_low_light

__all__ = ['ImageReadError', 'LowLightParams', 'check_image_file', 'make_demo_dataset',
           'natural_sort_key', 'pair_images', 'read_image_rgb', 'sample_params',
           'synthesize_folder', 'synthesize_low_light']

_MMAGIC_NAMES = ('LOLDataset', 'LoadRGBImageFromFile', 'PairedGeometricAugment',
                 'PairedRandomCropPad')

if MMAGIC_AVAILABLE:
    from .lol_dataset import LOLDataset
    from .transforms import LoadRGBImageFromFile, PairedGeometricAugment, PairedRandomCropPad
    __all__ += list(_MMAGIC_NAMES)
else:
    def __getattr__(name):
        if name in _MMAGIC_NAMES:
            raise ImportError(f'retinexmamba_mm.datasets.{name} needs MMagic, which is not '
                              'installed (see the README for the OpenMMLab install).')
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
