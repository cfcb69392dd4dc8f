"""Load an image as uint8 RGB with the project's one reading rule (``image_io``)."""
from mmagic.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from ..image_io import read_image_rgb


@TRANSFORMS.register_module()
class LoadRGBImageFromFile(BaseTransform):
    """Read ``results[f'{key}_path']`` into ``results[key]`` as ``uint8`` RGB ``H x W x 3``.

    Replaces MMagic's ``LoadImageFromFile(channel_order='rgb')`` so that training, testing and
    the enhance tool decode files identically (EXIF orientation, grayscale, alpha and 16-bit
    handled by ``read_image_rgb``; truncated files raise naming the file). It sets the same
    metadata as MMagic's loader (``ori_{key}_shape``, ``{key}_channel_order='rgb'``,
    ``{key}_color_type='color'``), which MMagic's ``DataPreprocessor`` reads to know the
    channel order.

    Args:
        key (str): ``'img'`` (low-light input) or ``'gt'`` (normal-light target).
    """

    def __init__(self, key: str):
        self.key = key

    def transform(self, results: dict) -> dict:
        image = read_image_rgb(results[f'{self.key}_path'])
        results[self.key] = image
        results[f'ori_{self.key}_shape'] = image.shape
        results[f'{self.key}_channel_order'] = 'rgb'
        results[f'{self.key}_color_type'] = 'color'
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(key={self.key!r})'
