"""Synthetic low-light pairs: determinism, brightness and noise against the parameters asked."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from retinexmamba_mm.datasets import (
    LowLightParams,
    read_image_rgb,
    sample_params,
    synthesize_folder,
    synthesize_low_light,
)

from .image_helpers import random_rgb, write_png

REPO_ROOT = Path(__file__).resolve().parents[2]


def srgb_decode(v):
    """IEC 61966-2-1 sRGB to linear, written out independently of the library."""
    v = np.asarray(v, np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def bt601_luma(rgb):
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def smooth_photo(height=96, width=128):
    """A smooth colourful image with luma spread over [0.1, 0.9] (no flat black)."""
    rows, cols = np.mgrid[:height, :width] / max(height, width)
    rgb = np.stack([0.5 + 0.4 * np.sin(6 * rows + 1), 0.5 + 0.4 * np.cos(5 * cols),
                    0.5 + 0.4 * np.sin(4 * (rows + cols))], axis=-1)
    return np.round(rgb * 255).astype(np.uint8)


def test_same_seed_same_output_other_seed_other_output():
    image = smooth_photo()

    def run(seed):
        rng = np.random.default_rng(seed)
        return synthesize_low_light(image, sample_params(rng), rng)

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


@pytest.mark.parametrize('gain', [0.1, 0.3, 0.6])
def test_linear_curve_scales_mean_luma_by_gain(gain):
    image = smooth_photo()
    low = synthesize_low_light(image, LowLightParams(gamma=1.0, gain=gain),
                               np.random.default_rng(0))
    ratio = bt601_luma(low / 255).mean() / bt601_luma(image / 255).mean()
    assert ratio == pytest.approx(gain, abs=2e-3)  # only 8-bit rounding differs


def test_gamma_curve_on_flat_luma_and_colour_is_kept():
    flat = np.empty((32, 32, 3), np.uint8)
    flat[...] = (200, 150, 90)
    y = bt601_luma(flat[0, 0] / 255)
    low = synthesize_low_light(flat, LowLightParams(gamma=2.0, gain=0.5),
                               np.random.default_rng(0))
    assert bt601_luma(low[0, 0] / 255) == pytest.approx(0.5 * y ** 2, abs=0.6 / 255)
    expected_rgb = flat[0, 0] * (0.5 * y ** 2 / y)  # every channel scaled alike: chroma kept
    np.testing.assert_allclose(low[0, 0], expected_rgb, atol=0.51)


def test_noise_level_matches_poisson_gaussian_model():
    level, gain, photons, read = 160, 0.5, 400.0, 0.003
    flat = np.full((256, 256, 3), level, np.uint8)
    params = LowLightParams(gamma=1.0, gain=gain, photons_at_white=photons, read_noise=read)
    low = synthesize_low_light(flat, params, np.random.default_rng(1))
    mean_linear = srgb_decode(gain * level / 255)
    expected_variance = mean_linear / photons + read ** 2
    # 8-bit rounding in sRGB adds uniform noise of one level, seen through the curve's slope
    step = srgb_decode(gain * level / 255 + 0.5 / 255) - srgb_decode(gain * level / 255 - 0.5 / 255)
    expected_std = np.sqrt(expected_variance + step ** 2 / 12)
    measured = srgb_decode(low / 255)
    assert measured.std() == pytest.approx(expected_std, rel=0.05)
    assert measured.mean() == pytest.approx(mean_linear, rel=0.02)


def test_without_noise_the_output_is_deterministic_without_rng_use():
    image = smooth_photo()
    a = synthesize_low_light(image, LowLightParams(1.5, 0.3), np.random.default_rng(0))
    b = synthesize_low_light(image, LowLightParams(1.5, 0.3), np.random.default_rng(99))
    np.testing.assert_array_equal(a, b)


def test_parameters_are_drawn_inside_the_ranges_and_validated():
    rng = np.random.default_rng(0)
    ranges = dict(gamma=(1.5, 1.6), gain=(0.2, 0.25), photons_at_white=(100, 200),
                  read_noise=(0.001, 0.002))
    for _ in range(50):
        params = sample_params(rng, ranges)
        for name, (low, high) in ranges.items():
            assert low <= getattr(params, name) <= high
    with pytest.raises(ValueError, match='gamma must be >= 1'):
        LowLightParams(gamma=0.8, gain=0.5)
    with pytest.raises(ValueError, match='gain must be in'):
        LowLightParams(gamma=1.0, gain=1.5)
    with pytest.raises(ValueError, match='unknown parameter range'):
        sample_params(rng, dict(exposure=(0, 1)))
    with pytest.raises(ValueError, match='uint8 H x W x 3'):
        synthesize_low_light(np.zeros((4, 4)), LowLightParams(1, 1), rng)


def test_folder_tool_writes_pairs_and_parameters(tmp_path):
    for index, name in enumerate(['b.jpg', 'a.png', 'c.png']):
        write_png(tmp_path / 'src' / name, random_rgb(12, 16, seed=index))
    record = synthesize_folder(str(tmp_path / 'src'), str(tmp_path / 'out'), seed=3)
    assert [item['name'] for item in record['images']] == ['a.png', 'b.png', 'c.png']
    saved = json.loads((tmp_path / 'out' / 'synthesis.json').read_text())
    assert saved == json.loads(json.dumps(record))
    for item in saved['images']:
        low = read_image_rgb(tmp_path / 'out' / 'low' / item['name'])
        normal = read_image_rgb(tmp_path / 'out' / 'normal' / item['name'])
        np.testing.assert_array_equal(normal, read_image_rgb(tmp_path / 'src' / item['source']))
        assert low.shape == normal.shape
        assert item['mean_luma_low'] < item['mean_luma_normal']
        assert {'gamma', 'gain', 'photons_at_white', 'read_noise'} <= item.keys()
    # same seed, another folder: identical files
    synthesize_folder(str(tmp_path / 'src'), str(tmp_path / 'again'), seed=3)
    for item in saved['images']:
        assert ((tmp_path / 'out' / 'low' / item['name']).read_bytes()
                == (tmp_path / 'again' / 'low' / item['name']).read_bytes())
    with pytest.raises(FileExistsError, match='not empty'):
        synthesize_folder(str(tmp_path / 'src'), str(tmp_path / 'out'), seed=3)


def test_command_line_tool_output_is_a_dataset(tmp_path, monkeypatch):
    for index in range(2):
        write_png(tmp_path / 'src' / f'{index}.png', random_rgb(8, 8, seed=index))
    monkeypatch.syspath_prepend(str(REPO_ROOT / 'tools'))
    sys.modules.pop('synthesize_lowlight', None)
    import synthesize_lowlight
    assert synthesize_lowlight.main([str(tmp_path / 'src'), str(tmp_path / 'out'), '--seed', '1',
                                     '--gain', '0.2', '0.2']) == 0
    record = json.loads((tmp_path / 'out' / 'synthesis.json').read_text())
    assert record['ranges']['gain'] == [0.2, 0.2]
    assert all(item['gain'] == 0.2 for item in record['images'])
    from retinexmamba_mm.datasets import LOLDataset
    assert len(LOLDataset(data_root=str(tmp_path / 'out'))) == 2
