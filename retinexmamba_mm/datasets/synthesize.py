"""Synthetic low-light images from normal-light photos (numpy and PIL only, no MMagic).

The idea of LOL-v2-synthetic (Yang et al., TIP 2021): darken the illumination in a perceptual
luminance channel with a gamma/linear curve, keep the colour, and add the noise a sensor adds
to a dim exposure. Our version, per image:

1. ``Y = 0.299 R + 0.587 G + 0.114 B`` (BT.601 luma of the sRGB-encoded values, in [0, 1]).
2. ``Y' = gain * Y ** gamma`` with ``gamma >= 1`` and ``0 < gain <= 1``: the linear part sets the
   exposure, the gamma part darkens mid-tones more than highlights (LOL-like histograms).
3. Every channel is scaled by ``Y' / Y``, which keeps hue and saturation (chromaticity): since
   YCbCr is linear in R'G'B', this is the same as scaling Y and both chroma offsets together.
4. Noise in the linear domain (inverse sRGB curve), a Poisson-Gaussian sensor model: shot noise
   ``Poisson(x * photons_at_white) / photons_at_white`` (so its variance is
   ``x / photons_at_white``), then read noise ``Normal(0, read_noise)``; independent per pixel
   and channel.
5. Clip to [0, 1], back to sRGB, round to 8 bit.

Randomness comes only from the ``numpy.random.Generator`` the caller passes, so a seed
reproduces the output exactly. ``DEFAULT_RANGES`` give LOL-like darkness (a luma of 0.45
becomes about 4-49 of 255, LOL-v1's low images average 15).
"""
import json
import os
import zlib
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Tuple

import numpy as np
from PIL import Image

from .image_io import read_image_rgb
from .paired_folders import list_images, natural_sort_key

LUMA_WEIGHTS_RGB = np.array([0.299, 0.587, 0.114])

#: Ranges the parameters are drawn from: gamma and gain uniformly, photons log-uniformly,
#: read noise (a standard deviation, in linear [0, 1] units) uniformly.
DEFAULT_RANGES: Dict[str, Tuple[float, float]] = dict(
    gamma=(1.2, 2.2), gain=(0.1, 0.5), photons_at_white=(300.0, 3000.0),
    read_noise=(0.0005, 0.002))


@dataclass(frozen=True)
class LowLightParams:
    """Parameters of one synthetic low-light image (see the module docstring).

    Args:
        gamma (float): Exponent applied to the luma, >= 1.
        gain (float): Factor applied after the exponent, in (0, 1].
        photons_at_white (float, optional): Photo-electrons a white pixel collects; shot noise
            has variance ``x / photons_at_white`` in linear units. None: no shot noise.
        read_noise (float): Standard deviation of the Gaussian read noise, linear units.
    """
    gamma: float
    gain: float
    photons_at_white: Optional[float] = None
    read_noise: float = 0.0

    def __post_init__(self):
        if not self.gamma >= 1:
            raise ValueError(f'gamma must be >= 1 (darkening only), got {self.gamma}')
        if not 0 < self.gain <= 1:
            raise ValueError(f'gain must be in (0, 1] (darkening only), got {self.gain}')
        if self.photons_at_white is not None and not self.photons_at_white > 0:
            raise ValueError(f'photons_at_white must be > 0 or None, got {self.photons_at_white}')
        if not self.read_noise >= 0:
            raise ValueError(f'read_noise must be >= 0, got {self.read_noise}')

    def as_dict(self) -> dict:
        return asdict(self)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer curve (IEC 61966-2-1), values in [0, 1]."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB transfer curve (IEC 61966-2-1), values in [0, 1]."""
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of RGB values (any range): the Y of YCbCr."""
    return rgb @ LUMA_WEIGHTS_RGB


def sample_params(rng: np.random.Generator,
                  ranges: Optional[Dict[str, Tuple[float, float]]] = None) -> LowLightParams:
    """Draw parameters from ``ranges`` (``DEFAULT_RANGES`` for the keys not given)."""
    ranges = {**DEFAULT_RANGES, **(ranges or {})}
    unknown = set(ranges) - set(DEFAULT_RANGES)
    if unknown:
        raise ValueError(f'unknown parameter range(s) {sorted(unknown)}; '
                         f'expected {sorted(DEFAULT_RANGES)}')
    low_p, high_p = np.log(ranges['photons_at_white'])
    return LowLightParams(
        gamma=float(rng.uniform(*ranges['gamma'])),
        gain=float(rng.uniform(*ranges['gain'])),
        photons_at_white=float(np.exp(rng.uniform(low_p, high_p))),
        read_noise=float(rng.uniform(*ranges['read_noise'])))


def synthesize_low_light(image: np.ndarray, params: LowLightParams,
                         rng: np.random.Generator) -> np.ndarray:
    """Turn a normal-light ``uint8`` RGB image (H x W x 3) into a low-light one (same shape).

    Args:
        image (np.ndarray): ``uint8`` RGB, ``H x W x 3``.
        params (LowLightParams): Darkening curve and noise levels.
        rng (np.random.Generator): Source of the noise.

    Returns:
        np.ndarray: ``uint8`` RGB, ``H x W x 3``.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected a uint8 H x W x 3 RGB image, got {image.dtype} '
                         f'{image.shape}')
    rgb = image.astype(np.float64) / 255
    y = luma(rgb)
    y_dark = params.gain * y ** params.gamma
    ratio = np.divide(y_dark, y, out=np.zeros_like(y), where=y > 0)
    linear = srgb_to_linear(np.clip(rgb * ratio[..., None], 0, 1))
    if params.photons_at_white is not None:
        linear = rng.poisson(linear * params.photons_at_white) / params.photons_at_white
    if params.read_noise > 0:
        linear = linear + rng.normal(0.0, params.read_noise, linear.shape)
    srgb = linear_to_srgb(np.clip(linear, 0, 1))
    return np.round(srgb * 255).astype(np.uint8)


def image_rng(seed: int, name: str) -> np.random.Generator:
    """Generator for one image, from the run's seed and the image's name.

    Keyed by name rather than position, so adding or removing files leaves the other images'
    outputs unchanged.
    """
    return np.random.default_rng([seed, zlib.crc32(name.encode('utf-8'))])


def save_png(path: str, image: np.ndarray) -> None:
    """Write a ``uint8`` RGB array as PNG, creating the folder."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    Image.fromarray(image).save(path)


def synthesize_folder(src_dir: str, out_dir: str, seed: int = 0,
                      ranges: Optional[Dict[str, Tuple[float, float]]] = None) -> dict:
    """Make LOL-style pairs from every image in ``src_dir``.

    Writes ``out_dir/low/<name>.png`` (synthetic low-light) and ``out_dir/normal/<name>.png``
    (the source as 8-bit RGB PNG), which ``LOLDataset(data_root=out_dir)`` reads as is, and
    ``out_dir/synthesis.json`` recording the seed, the ranges and every image's parameters and
    mean luma before/after.

    Returns:
        dict: The record written to ``synthesis.json``.
    """
    names = sorted(list_images(src_dir), key=natural_sort_key)
    stems = [os.path.splitext(name)[0] for name in names]
    duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicates:
        raise ValueError(f'{src_dir!r}: files differing only by extension would overwrite each '
                         f'other: {", ".join(duplicates)}')
    for sub in ('low', 'normal'):
        existing = os.path.join(out_dir, sub)
        if os.path.isdir(existing) and os.listdir(existing):
            raise FileExistsError(f'{existing!r} is not empty; choose a new output folder')
    record = dict(generator='retinexmamba_mm.datasets.synthesize', seed=seed,
                  ranges={**DEFAULT_RANGES, **(ranges or {})}, images=[])
    for name, stem in zip(names, stems):
        normal = read_image_rgb(os.path.join(src_dir, name))
        rng = image_rng(seed, stem)
        params = sample_params(rng, ranges)
        low = synthesize_low_light(normal, params, rng)
        save_png(os.path.join(out_dir, 'low', f'{stem}.png'), low)
        save_png(os.path.join(out_dir, 'normal', f'{stem}.png'), normal)
        record['images'].append(dict(
            name=f'{stem}.png', source=name, **params.as_dict(),
            mean_luma_normal=float(luma(normal / 255).mean()),
            mean_luma_low=float(luma(low / 255).mean())))
    with open(os.path.join(out_dir, 'synthesis.json'), 'w', encoding='utf-8') as file:
        json.dump(record, file, indent=2)
    return record
