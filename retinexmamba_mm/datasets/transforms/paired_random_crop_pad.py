"""Random crop at the same place in input and target, padding images smaller than the patch."""
from typing import Sequence, Tuple, Union

import numpy as np
from mmagic.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


@TRANSFORMS.register_module()
class PairedRandomCropPad(BaseTransform):
    """Crop one ``patch_size`` window at the same position from every key.

    An image smaller than the patch is first padded at the bottom/right by mirroring with the
    edge pixel repeated (OpenCV's ``BORDER_REFLECT``, numpy's ``'symmetric'``), as the authors'
    recipe does; MMagic's ``PairedRandomCrop`` raises on such images instead. The position is
    drawn from numpy's global RNG, which mmengine seeds per dataloader worker.

    Args:
        patch_size (int | tuple[int, int]): Patch height and width (an int means square).
        keys (Sequence[str]): Keys cropped together; all must have the same height and width.
            Defaults to ``('img', 'gt')``.
    """

    def __init__(self,
                 patch_size: Union[int, Tuple[int, int]],
                 keys: Sequence[str] = ('img', 'gt')):
        patch = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
        if len(patch) != 2 or min(patch) < 1:
            raise ValueError(f'patch_size must be a positive int or (height, width), '
                             f'got {patch_size!r}')
        self.patch_size = patch
        self.keys = tuple(keys)

    def transform(self, results: dict) -> dict:
        sizes = {key: results[key].shape[:2] for key in self.keys}
        if len(set(sizes.values())) != 1:
            paths = {key: results.get(f'{key}_path', key) for key in self.keys}
            raise ValueError('cannot crop a pair of different sizes: '
                             + ', '.join(f'{paths[k]} is {sizes[k][1]}x{sizes[k][0]}'
                                         for k in self.keys) + ' (width x height)')
        height, width = sizes[self.keys[0]]
        patch_h, patch_w = self.patch_size
        pad_h, pad_w = max(0, patch_h - height), max(0, patch_w - width)
        top = np.random.randint(0, height + pad_h - patch_h + 1)
        left = np.random.randint(0, width + pad_w - patch_w + 1)
        for key in self.keys:
            image = results[key]
            if pad_h or pad_w:
                widths = ((0, pad_h), (0, pad_w)) + ((0, 0),) * (image.ndim - 2)
                image = np.pad(image, widths, mode='symmetric')
            results[key] = np.ascontiguousarray(image[top:top + patch_h, left:left + patch_w])
        results['img_shape'] = (patch_h, patch_w)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(patch_size={self.patch_size}, keys={self.keys})'
