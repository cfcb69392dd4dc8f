"""The embedded demo set: LOL-style pairs made from scikit-image's bundled sample photos.

Nothing is downloaded: the photos ship inside the scikit-image wheel (``skimage/data/*.png``,
``*.jpg``; the fetcher-based ones such as ``skimage.data.lily`` are not used). Each photo is
scaled to a height of 256 and split at 55% of its width: the left part gives the training
pairs (random square crops of random size, resized to 128x128), the right part gives one
test image (scaled to about 180 px high, widths not multiples of 4 on purpose). Train and
test pixels never overlap. Low-light inputs come from ``synthesize.synthesize_low_light`` with
the default parameter ranges and a fixed seed, so the set is identical on every machine.

Layout (read by ``LOLDataset(data_root=root, split='train'|'test')``)::

    <root>/{train,test}/{low,normal}/<photo>[_<crop>].png
    <root>/demo.json     # manifest: every file and its synthesis parameters (written last)
"""
import json
import os
import shutil
from typing import Callable, Dict

import cv2
import numpy as np

from .synthesize import image_rng, luma, sample_params, save_png, synthesize_low_light

DEMO_SEED = 2024
WORK_HEIGHT = 256
TRAIN_FRACTION = 0.55
TRAIN_CROPS_PER_PHOTO = 8
TRAIN_SIZE = 128
TEST_SCALE = 0.7
MANIFEST = 'demo.json'


def _bundled_photos() -> Dict[str, Callable[[], np.ndarray]]:
    """Colour photographs bundled with scikit-image whose docstrings state public domain, CC0
    or no known copyright restrictions (the Middlebury motorcycle, which states none, is left
    out)."""
    from skimage import data
    return {
        'astronaut': data.astronaut,
        'chelsea': data.chelsea,
        'coffee': data.coffee,
        'rocket': data.rocket,
        'immunohistochemistry': data.immunohistochemistry,
    }


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _normal_light_images(seed: int) -> Dict[str, Dict[str, np.ndarray]]:
    """``{'train': {name: image}, 'test': {name: image}}`` cut from the bundled photos."""
    images: Dict[str, Dict[str, np.ndarray]] = {'train': {}, 'test': {}}
    rng = np.random.default_rng(seed)
    for photo, load in _bundled_photos().items():
        rgb = np.ascontiguousarray(load()[..., :3])
        height, width = rgb.shape[:2]
        rgb = _resize(rgb, WORK_HEIGHT, round(width * WORK_HEIGHT / height))
        split = round(rgb.shape[1] * TRAIN_FRACTION)
        train_part, test_part = rgb[:, :split], rgb[:, split:]
        test_h, test_w = (round(s * TEST_SCALE) for s in test_part.shape[:2])
        images['test'][photo] = _resize(test_part, test_h, test_w)
        max_side = min(train_part.shape[:2])
        for index in range(TRAIN_CROPS_PER_PHOTO):
            side = int(rng.integers(TRAIN_SIZE, max_side + 1))
            top = int(rng.integers(0, train_part.shape[0] - side + 1))
            left = int(rng.integers(0, train_part.shape[1] - side + 1))
            crop = train_part[top:top + side, left:left + side]
            images['train'][f'{photo}_{index:02d}'] = _resize(crop, TRAIN_SIZE, TRAIN_SIZE)
    return images


def demo_is_complete(root: str) -> bool:
    """True when ``root`` holds the manifest and every file it lists."""
    manifest = os.path.join(root, MANIFEST)
    if not os.path.isfile(manifest):
        return False
    with open(manifest, encoding='utf-8') as file:
        files = json.load(file)['files']
    return all(os.path.isfile(os.path.join(root, name)) for name in files)


def make_demo_dataset(root: str = 'data/demo', force: bool = False) -> bool:
    """Create the demo set under ``root`` unless it is already complete.

    Only ``root/train``, ``root/test`` and ``root/demo.json`` are written (and, when rebuilding
    an incomplete or forced set, removed); anything else in ``root`` is left alone.

    Returns:
        bool: True if the set was (re)created, False if a complete one was already there.
    """
    if not force and demo_is_complete(root):
        return False
    for owned in ('train', 'test', MANIFEST):
        path = os.path.join(root, owned)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.isfile(path):
            os.remove(path)
    files, pairs = [], []
    for split, images in _normal_light_images(DEMO_SEED).items():
        for name, normal in images.items():
            rng = image_rng(DEMO_SEED, f'{split}/{name}')
            params = sample_params(rng)
            low = synthesize_low_light(normal, params, rng)
            for kind, image in (('low', low), ('normal', normal)):
                relative = f'{split}/{kind}/{name}.png'
                save_png(os.path.join(root, relative), image)
                files.append(relative)
            pairs.append(dict(split=split, name=f'{name}.png', **params.as_dict(),
                              mean_luma_normal=float(luma(normal / 255).mean()),
                              mean_luma_low=float(luma(low / 255).mean())))
    manifest = dict(generator='retinexmamba_mm.datasets.demo_data', seed=DEMO_SEED,
                    source='scikit-image bundled sample photos', files=files, pairs=pairs)
    with open(os.path.join(root, MANIFEST), 'w', encoding='utf-8') as file:
        json.dump(manifest, file, indent=2)
    return True
