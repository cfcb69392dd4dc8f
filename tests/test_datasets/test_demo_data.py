"""The embedded demo set: made offline from scikit-image's photos, deterministic, idempotent."""
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from retinexmamba_mm.datasets import LOLDataset, make_demo_dataset, read_image_rgb

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    started = time.perf_counter()
    assert make_demo_dataset(str(root)) is True
    assert time.perf_counter() - started < 30  # "seconds to create" (about 2 s here)
    return root


def test_layout_sizes_and_darkness(demo_root):
    train = LOLDataset(data_root=str(demo_root), split='train')
    test = LOLDataset(data_root=str(demo_root), split='test')
    assert len(train) == 40 and len(test) == 5
    for dataset, in_train in ((train, True), (test, False)):
        for index in range(len(dataset)):
            info = dataset.get_data_info(index)
            low, normal = read_image_rgb(info['img_path']), read_image_rgb(info['gt_path'])
            assert low.shape == normal.shape
            if in_train:
                assert low.shape == (128, 128, 3)
            else:
                assert 100 <= max(low.shape[:2]) <= 200
            assert low.mean() < 0.6 * normal.mean()
    widths = {read_image_rgb(test.get_data_info(i)['img_path']).shape[1] for i in range(5)}
    assert any(width % 4 for width in widths)  # exercises the backbone's pad-to-4


def test_manifest_lists_files_and_parameters(demo_root):
    manifest = json.loads((demo_root / 'demo.json').read_text())
    assert len(manifest['files']) == 2 * 45
    assert all((demo_root / name).is_file() for name in manifest['files'])
    assert {pair['split'] for pair in manifest['pairs']} == {'train', 'test'}
    assert all(pair['gamma'] >= 1 and 0 < pair['gain'] <= 1 for pair in manifest['pairs'])


def test_idempotent_and_rebuilt_when_incomplete_or_forced(demo_root):
    before = (demo_root / 'test' / 'low' / 'coffee.png').read_bytes()
    started = time.perf_counter()
    assert make_demo_dataset(str(demo_root)) is False
    assert time.perf_counter() - started < 1
    (demo_root / 'train' / 'low' / 'coffee_03.png').unlink()
    (demo_root / 'keep.txt').write_text('not ours')
    assert make_demo_dataset(str(demo_root)) is True
    assert (demo_root / 'train' / 'low' / 'coffee_03.png').is_file()
    assert (demo_root / 'keep.txt').read_text() == 'not ours'
    assert (demo_root / 'test' / 'low' / 'coffee.png').read_bytes() == before  # deterministic


def test_train_and_test_pixels_come_from_different_parts_of_each_photo(demo_root):
    test_normal = read_image_rgb(demo_root / 'test' / 'normal' / 'chelsea.png')
    for index in range(8):
        crop = read_image_rgb(demo_root / 'train' / 'normal' / f'chelsea_{index:02d}.png')
        # a 16x16 block of the test image never appears in a train crop (no shared pixels)
        block = test_normal[:16, :16].astype(int)
        diffs = [np.abs(crop[r:r + 16, c:c + 16].astype(int) - block).mean()
                 for r in range(0, 113, 8) for c in range(0, 113, 8)]
        assert min(diffs) > 2


def test_command_line_tool(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO_ROOT / 'tools'))
    sys.modules.pop('make_demo_data', None)
    import make_demo_data
    assert make_demo_data.main(['--root', str(tmp_path / 'demo')]) == 0
    assert make_demo_data.main(['--root', str(tmp_path / 'demo')]) == 0
    assert 'already complete' in capsys.readouterr().out
