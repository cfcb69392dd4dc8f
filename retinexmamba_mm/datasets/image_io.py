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
import contextlib
import os
import struct
import zlib
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
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_LEGACY_EXIF_KEY = b'Raw profile type exif\x00'


class ImageReadError(OSError):
    """An image file that cannot be read, or whose pixel format we refuse."""


def is_image_file(name: str) -> bool:
    """True for file names with an image extension we read (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMG_EXTENSIONS


@contextlib.contextmanager
def _errors_naming(path):
    """Re-raise what PIL and the OS raise as an ``ImageReadError`` that names the file."""
    try:
        yield
    except ImageReadError:
        raise
    except FileNotFoundError as error:
        raise ImageReadError(f'{path}: file not found') from error
    except UnidentifiedImageError as error:
        raise ImageReadError(f'{path}: not a readable image file') from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f'{path}: cannot read ({error}); the file may be truncated or '
                             'corrupt') from error


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
    with _errors_naming(path), Image.open(path) as image:
        image = ImageOps.exif_transpose(image)  # decodes the pixels (truncation raises)
        return _to_rgb_uint8(image, path)


def _walk_png_chunks(path) -> bool:
    """Check every PNG chunk's length and CRC up to IEND, without inflating the pixels.

    Returns whether the file may carry EXIF data (an ``eXIf`` chunk, or the legacy
    ``Raw profile type exif`` text chunk that PIL also reads).

    Raises:
        ImageReadError: the file ends before IEND (truncated) or a chunk's CRC is wrong.
    """
    with open(path, 'rb') as file:
        data = file.read()
    position, may_have_exif = len(_PNG_SIGNATURE), False
    while True:
        if position + 8 > len(data):
            raise ImageReadError(f'{path}: PNG ends before its IEND chunk; the file is truncated')
        length, kind = struct.unpack('>I4s', data[position:position + 8])
        end = position + 12 + length
        if end > len(data):
            raise ImageReadError(f'{path}: PNG chunk {kind!r} runs past the end of the file; '
                                 'the file is truncated')
        crc, = struct.unpack('>I', data[end - 4:end])
        if zlib.crc32(data[position + 4:end - 4]) != crc:
            raise ImageReadError(f'{path}: PNG chunk {kind!r} fails its CRC check; the file is '
                                 'corrupt')
        if kind == b'eXIf' or (kind in (b'tEXt', b'zTXt', b'iTXt') and data[
                position + 8:position + 8 + len(_LEGACY_EXIF_KEY)] == _LEGACY_EXIF_KEY):
            may_have_exif = True
        if kind == b'IEND':
            return may_have_exif
        position = end


def check_image_file(path) -> Tuple[int, int]:
    """Check that ``path`` is a readable, complete image; return its ``(height, width)``.

    The size is the one ``read_image_rgb`` will return (EXIF rotations swap it). Cost: the
    header is read by PIL; a PNG is then walked chunk by chunk, checking each chunk's CRC
    without inflating the pixels (about 0.3 ms for a 600x400 LOL image), so a truncated or
    corrupted PNG is caught. For other formats a header cannot show truncation, so the pixels
    are decoded (JPEG decoding of LOL-sized images takes a few ms).

    Raises:
        ImageReadError: naming the file and what is wrong with it.
    """
    with _errors_naming(path), Image.open(path) as image:
        _check_mode(image, path)
        width, height = image.size
        is_png = image.format == 'PNG'
        # PIL finds a PNG's EXIF only by decoding it, so ask only when a chunk holds EXIF.
        if not is_png or _walk_png_chunks(path):
            if image.getexif().get(_EXIF_ORIENTATION_TAG) in _TRANSPOSING_ORIENTATIONS:
                width, height = height, width
        if not is_png:
            image.load()
    return height, width
