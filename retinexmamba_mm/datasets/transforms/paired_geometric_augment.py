"""One of the 8 flip/rotation variants, the same for input and target."""
from typing import Sequence

import numpy as np
from mmagic.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


def dihedral_variant(image: np.ndarray, variant: int) -> np.ndarray:
    """Variant ``0..7`` of the square's symmetry group: ``variant % 4`` quarter turns
    (counter-clockwise), then a left-right flip when ``variant >= 4``."""
    image = np.rot90(image, k=variant % 4, axes=(0, 1))
    if variant >= 4:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


@TRANSFORMS.register_module()
class PairedGeometricAugment(BaseTransform):
    """Apply one of the 8 flip/rotation variants, drawn uniformly, identically to every key.

    This is the authors' recipe (each training patch gets one of 8 variants), done as one
    uniform draw rather than MMagic's independent ``Flip``/``RandomTransposeHW`` coins, which
    would need three transforms to reach the same distribution. Rotations by 90 degrees swap
    height and width, so crop square patches first or expect transposed shapes. The variant
    is drawn from numpy's global RNG (seeded per dataloader worker by mmengine).

    Args:
        keys (Sequence[str]): Keys transformed together. Defaults to ``('img', 'gt')``.
    """

    def __init__(self, keys: Sequence[str] = ('img', 'gt')):
        self.keys = tuple(keys)

    def transform(self, results: dict) -> dict:
        variant = int(np.random.randint(8))
        for key in self.keys:
            results[key] = dihedral_variant(results[key], variant)
        results['img_shape'] = results[self.keys[0]].shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keys={self.keys})'
