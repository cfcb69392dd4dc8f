"""Paired crop with padding, the 8 flip/rotation variants, and the RGB loader."""
import numpy as np
import pytest

from retinexmamba_mm.datasets import (
    LoadRGBImageFromFile,
    PairedGeometricAugment,
    PairedRandomCropPad,
)

from .image_helpers import random_rgb, write_png


def coordinate_image(height, width):
    """uint16 image whose pixel (r, c) holds (r, c, r * width + c): positions are readable."""
    rows, cols = np.mgrid[:height, :width]
    return np.stack([rows, cols, rows * width + cols], axis=-1).astype(np.uint16)


def target_of(image):
    """A target that is a fixed function of the input, so alignment can be checked."""
    return image * 3 + 1


def symmetric_index(i, n):
    """Index into a length-n axis mirrored with the edge repeated: ... 1 0 | 0 1 .. n-1 | n-1 ..."""
    i %= 2 * n
    return i if i < n else 2 * n - 1 - i


def test_crop_is_aligned_and_inside_the_image():
    np.random.seed(0)
    image = coordinate_image(20, 30)
    crop = PairedRandomCropPad(patch_size=8)
    corners = set()
    for _ in range(50):
        out = crop(dict(img=image.copy(), gt=target_of(image)))
        assert out['img'].shape == (8, 8, 3) and out['gt'].shape == (8, 8, 3)
        np.testing.assert_array_equal(out['gt'], target_of(out['img']))
        top, left = out['img'][0, 0, :2]
        np.testing.assert_array_equal(out['img'], image[top:top + 8, left:left + 8])
        corners.add((top, left))
    assert len(corners) > 30  # positions vary


def test_crop_pads_small_images_bottom_right_with_edge_repeating_reflection():
    image = coordinate_image(3, 5)
    out = PairedRandomCropPad(patch_size=(8, 13))(dict(img=image, gt=target_of(image)))
    expected = np.array([[image[symmetric_index(r, 3), symmetric_index(c, 5)]
                          for c in range(13)] for r in range(8)])
    np.testing.assert_array_equal(out['img'], expected)
    np.testing.assert_array_equal(out['gt'], target_of(expected))
    assert out['img_shape'] == (8, 13)


def test_crop_pads_only_the_short_side():
    np.random.seed(1)
    image = coordinate_image(4, 40)
    out = PairedRandomCropPad(patch_size=6)(dict(img=image, gt=target_of(image)))
    left = out['img'][0, 0, 1]
    expected = np.array([[image[symmetric_index(r, 4), left + c] for c in range(6)]
                         for r in range(6)])
    np.testing.assert_array_equal(out['img'], expected)


def test_crop_refuses_pairs_of_different_sizes():
    results = dict(img=np.zeros((5, 6, 3)), gt=np.zeros((5, 7, 3)), img_path='low/a.png',
                   gt_path='normal/a.png')
    with pytest.raises(ValueError, match=r'low/a\.png is 6x5, normal/a\.png is 7x5'):
        PairedRandomCropPad(patch_size=4)(results)


def naive_dihedral_variants(image):
    """The 8 symmetries of a square image by explicit index maps (no numpy rot90/flip)."""
    n = image.shape[0]
    maps = [lambda r, c: (r, c), lambda r, c: (c, n - 1 - r), lambda r, c: (n - 1 - r, n - 1 - c),
            lambda r, c: (n - 1 - c, r), lambda r, c: (r, n - 1 - c), lambda r, c: (c, r),
            lambda r, c: (n - 1 - r, c), lambda r, c: (n - 1 - c, n - 1 - r)]
    return [np.array([[image[m(r, c)] for c in range(n)] for r in range(n)]) for m in maps]


def test_all_8_variants_are_reached_uniformly_and_identically_for_input_and_target():
    np.random.seed(0)
    image = coordinate_image(4, 4)
    expected = {variant.tobytes(): index
                for index, variant in enumerate(naive_dihedral_variants(image))}
    assert len(expected) == 8
    augment = PairedGeometricAugment()
    counts = np.zeros(8, int)
    draws = 1600
    for _ in range(draws):
        out = augment(dict(img=image.copy(), gt=target_of(image)))
        np.testing.assert_array_equal(out['gt'], target_of(out['img']))
        assert out['img'].flags['C_CONTIGUOUS'] and out['gt'].flags['C_CONTIGUOUS']
        counts[expected[out['img'].tobytes()]] += 1
    assert counts.min() > 0
    # uniform: 200 expected per variant, binomial std about 13
    assert np.all(np.abs(counts - draws / 8) < 60), counts


def test_geometric_augment_transposes_non_square_shapes_consistently():
    np.random.seed(3)
    image = coordinate_image(2, 5)
    shapes = set()
    for _ in range(40):
        out = PairedGeometricAugment()(dict(img=image.copy(), gt=target_of(image)))
        np.testing.assert_array_equal(out['gt'], target_of(out['img']))
        shapes.add(out['img'].shape)
        assert out['img_shape'] == out['img'].shape[:2]
    assert shapes == {(2, 5, 3), (5, 2, 3)}


def test_loader_sets_rgb_metadata(tmp_path):
    image = random_rgb(4, 6)
    path = write_png(tmp_path / 'a.png', image)
    out = LoadRGBImageFromFile(key='gt')(dict(gt_path=str(path)))
    np.testing.assert_array_equal(out['gt'], image)
    assert out['ori_gt_shape'] == (4, 6, 3)
    assert out['gt_channel_order'] == 'rgb' and out['gt_color_type'] == 'color'
