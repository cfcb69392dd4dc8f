"""Reading images the same way everywhere: training, testing, the enhance tool.

One rule for every file, so that a pair is never decoded two different ways:

- the result is ``uint8`` RGB, ``H x W x 3``, with the EXIF orientation applied;
- grayscale (``L``, ``1``, ``I;16``) is repeated into three channels;
- palette images are expanded; an alpha channel (``RGBA``, ``LA``, ``PA``) is dropped, the
  stored colours are kept (no compositing onto a background);
- 16-bit images keep their high byte (``v >> 8``), which is what PIL and OpenCV do for 16-bit RGB
  (at most one 8-bit level below rounding);
- CMYK / YCbCr JPEGs are converted by PIL;
- floating-point (``F``) and 32-bit integer images beyond the 16-bit range are refused.

``check_image_file`` is the cheap build-time check used by the dataset: it reads headers, not
pixels, except where a header cannot reveal truncation (see its docstring).
"""
import os
from typing import Tuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.tif', '.tiff', '.webp')

# PIL modes that ``Image.convert('RGB')`` maps to 8-bit RGB faithfully.
_CONVERTIBLE_MODES = {'1', 'L', 'P', 'RGB', 'RGBA', 'RGBX', 'RGBa', 'LA', 'La', 'PA', 'CMYK',
                      'YCbCr'}
_SIXTEEN_BIT_MODES = {'I;16', 'I;16L', 'I;16B', 'I;16N', 'I'}
_EXIF_ORIENTATION_TAG = 0x0112
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}  # rotate by 90/270 degrees: width and height swap


class ImageReadError(OSError):
    """An image file that cannot be read, or whose pixel format we refuse."""


def is_image_file(name: str) -> bool:
    """True for file names with an image extension we read (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMG_EXTENSIONS


def _check_mode(image: Image.Image, path) -> None:
    if image.mode not in _CONVERTIBLE_MODES | _SIXTEEN_BIT_MODES:
        raise ImageReadError(
            f'{path}: pixel format {image.mode!r} is not supported; expected 8-bit or 16-bit '
            'grayscale, RGB or RGBA (floating-point images are refused, convert them first)')


def _to_rgb_uint8(image: Image.Image, path) -> np.ndarray:
    _check_mode(image, path)
    if image.mode in _CONVERTIBLE_MODES:
        return np.asarray(image.convert('RGB'), dtype=np.uint8)
    values = np.asarray(image)
    if values.min() < 0 or values.max() > 65535:
        raise ImageReadError(
            f'{path}: integer image with values in [{values.min()}, {values.max()}] is outside '
            'the 16-bit range; expected 8-bit or 16-bit grayscale/RGB')
    gray = (values.astype(np.uint32) >> 8).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def read_image_rgb(path) -> np.ndarray:
    """Read an image file as ``uint8`` RGB ``H x W x 3`` (EXIF orientation applied).

    See the module docstring for how grayscale, alpha and 16-bit files are converted.

    Raises:
        ImageReadError: the file is missing, not an image, truncated, or has a refused format;
            the message names the file.
    """
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)  # decodes the pixels (truncation raises)
            return _to_rgb_uint8(image, path)
    except FileNotFoundError as error:
        raise ImageReadError(f'{path}: file not found') from error
    except UnidentifiedImageError as error:
        raise ImageReadError(f'{path}: not a readable image file') from error
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, ImageReadError):
            raise
        raise ImageReadError(f'{path}: cannot decode ({error}); the file may be truncated '
                             'or corrupt') from error


def check_image_file(path) -> Tuple[int, int]:
    """Check that ``path`` is a readable, complete image; return its ``(height, width)``.

    The size is the one ``read_image_rgb`` will return (EXIF rotations swap it). Cost: PNG files
    are checked with PIL's ``verify()``, which walks every chunk and checks its CRC without
    inflating the pixels (about 1 ms for a 600x400 LOL image), so a truncated or corrupted PNG
    is caught. For other formats a header cannot show truncation, so the pixels are decoded
    (JPEG decoding of LOL-sized images is a few ms).

    Raises:
        ImageReadError: naming the file and what is wrong with it.
    """
    try:
        with Image.open(path) as image:
            _check_mode(image, path)
            width, height = image.size
            if image.getexif().get(_EXIF_ORIENTATION_TAG) in _TRANSPOSING_ORIENTATIONS:
                width, height = height, width
            is_png = image.format == 'PNG'
            if not is_png:
                image.load()
        if is_png:
            with Image.open(path) as image:  # verify() must come first on a freshly opened file
                image.verify()
    except FileNotFoundError as error:
        raise ImageReadError(f'{path}: file not found') from error
    except UnidentifiedImageError as error:
        raise ImageReadError(f'{path}: not a readable image file') from error
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, ImageReadError):
            raise
        raise ImageReadError(f'{path}: cannot read ({error}); the file may be truncated '
                             'or corrupt') from error
    return height, width
