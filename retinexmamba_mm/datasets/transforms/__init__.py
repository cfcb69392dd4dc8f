from .loading import LoadRGBImageFromFile
from .paired_geometric_augment import PairedGeometricAugment, dihedral_variant
from .paired_random_crop_pad import PairedRandomCropPad

__all__ = ['LoadRGBImageFromFile', 'PairedRandomCropPad', 'PairedGeometricAugment',
           'dihedral_variant']
