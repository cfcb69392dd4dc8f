"""Tiny generated images for the dataset tests, written into tmp_path."""
from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path, array):
    """Write an array with PIL (uint8 RGB/gray) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)
    return path


def random_rgb(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def make_pair_folders(low_dir, normal_dir, low_names, normal_names=None, size=(6, 8)):
    """Write small random PNGs; ``normal_names`` defaults to ``low_names``."""
    normal_names = low_names if normal_names is None else normal_names
    for index, name in enumerate(low_names):
        write_png(Path(low_dir) / name, random_rgb(*size, seed=index))
    for index, name in enumerate(normal_names):
        write_png(Path(normal_dir) / name, random_rgb(*size, seed=100 + index))
