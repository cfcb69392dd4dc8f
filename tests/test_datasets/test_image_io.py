"""read_image_rgb / check_image_file: one reading rule for every pixel format."""
import cv2
import numpy as np
import pytest
from PIL import Image

from retinexmamba_mm.datasets import ImageReadError, check_image_file, read_image_rgb

from .image_helpers import random_rgb, write_png


def test_rgb_png_round_trip(tmp_path):
    image = random_rgb(5, 7)
    path = write_png(tmp_path / 'a.png', image)
    out = read_image_rgb(path)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, image)
    assert check_image_file(path) == (5, 7)


def test_grayscale_is_repeated_into_three_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = read_image_rgb(write_png(tmp_path / 'g.png', gray))
    assert out.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_alpha_is_dropped_and_colours_kept(tmp_path):
    rgba = np.dstack([random_rgb(4, 4), np.full((4, 4), 7, np.uint8)])
    out = read_image_rgb(write_png(tmp_path / 'rgba.png', rgba))
    np.testing.assert_array_equal(out, rgba[..., :3])


def test_palette_is_expanded(tmp_path):
    palette_image = Image.new('P', (3, 2))
    palette_image.putpalette([10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 6))
    palette_image.putdata([0, 1, 0, 1, 1, 0])
    palette_image.save(tmp_path / 'p.png')
    out = read_image_rgb(tmp_path / 'p.png')
    expected = np.array([[10, 20, 30], [200, 100, 50]], np.uint8)[[[0, 1, 0], [1, 1, 0]]]
    np.testing.assert_array_equal(out, expected)


def test_16_bit_keeps_the_high_byte(tmp_path):
    values = np.array([[0, 255, 256, 511], [32896, 40000, 65280, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / 'g16.png'), values)
    rgb16 = np.stack([values, values[::-1], values[:, ::-1]], axis=-1)
    cv2.imwrite(str(tmp_path / 'rgb16.png'), rgb16[..., ::-1])  # OpenCV writes BGR
    high_byte = np.array([[0, 0, 1, 1], [128, 156, 255, 255]], np.uint8)  # v // 256
    gray = read_image_rgb(tmp_path / 'g16.png')
    np.testing.assert_array_equal(gray, np.repeat(high_byte[..., None], 3, axis=2))
    colour = read_image_rgb(tmp_path / 'rgb16.png')
    np.testing.assert_array_equal(
        colour, np.stack([high_byte, high_byte[::-1], high_byte[:, ::-1]], axis=-1))


def test_exif_orientation_is_applied_and_sizes_swap(tmp_path):
    image = random_rgb(2, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a quarter turn clockwise
    Image.fromarray(image).save(tmp_path / 'rot.png', exif=exif)
    out = read_image_rgb(tmp_path / 'rot.png')
    clockwise = np.array([[image[2 - 1 - c, r] for c in range(2)] for r in range(3)])
    np.testing.assert_array_equal(out, clockwise)
    assert check_image_file(tmp_path / 'rot.png') == (3, 2)


def test_float_images_are_refused_naming_the_file(tmp_path):
    Image.fromarray(np.ones((3, 3), np.float32)).save(tmp_path / 'f.tif')
    for check in (read_image_rgb, check_image_file):
        with pytest.raises(ImageReadError, match=r'f\.tif.*not supported'):
            check(tmp_path / 'f.tif')


@pytest.mark.parametrize('suffix', ['png', 'jpg'])
def test_truncated_files_are_caught(tmp_path, suffix):
    path = tmp_path / f'full.{suffix}'
    Image.fromarray(random_rgb(64, 64)).save(path)
    data = path.read_bytes()
    cut = tmp_path / f'cut.{suffix}'
    cut.write_bytes(data[:len(data) // 2])
    for check in (read_image_rgb, check_image_file):
        with pytest.raises(ImageReadError, match=rf'cut\.{suffix}: .*truncated'):
            check(cut)


def test_not_an_image_and_missing_file(tmp_path):
    (tmp_path / 'text.png').write_text('hello')
    with pytest.raises(ImageReadError, match=r'text\.png: not a readable image'):
        check_image_file(tmp_path / 'text.png')
    with pytest.raises(ImageReadError, match=r'nope\.png: file not found'):
        read_image_rgb(tmp_path / 'nope.png')


def test_png_with_a_corrupted_chunk_is_caught_without_decoding(tmp_path):
    path = write_png(tmp_path / 'bad.png', random_rgb(32, 32))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the pixel data
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"bad\.png: PNG chunk b'IDAT' fails its CRC"):
        check_image_file(path)
