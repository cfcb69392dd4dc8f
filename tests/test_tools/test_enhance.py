"""tools/enhance.py over a temp folder: outputs, skips, failures, exit codes, inputs untouched."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms
from tool_scripts import load_tool

from retinexmamba_mm.apis import enhance, init_model

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'enhance.py'
TINY_CONFIG = """
default_scope = 'mmagic'
model = dict(
    type='LowLightEnhancer',
    generator=dict(type='RetinexMamba', n_feat=8, num_blocks=[1, 1, 1], d_state=4),
    pixel_loss=dict(type='L1Loss', loss_weight=1.0),
    data_preprocessor=dict(type='LowLightDataPreprocessor'))
"""
# Tiled vs whole output of the tiny model (see tests/test_apis/test_inference.py).
TILED_MAX_ABS = 4


pytestmark = pytest.mark.usefixtures('single_thread_module')  # tiny models: one thread


tool = load_tool('enhance.py')


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp('weights')
    (root / 'tiny.py').write_text(TINY_CONFIG)
    torch.manual_seed(0)
    model = init_model(root / 'tiny.py')
    state = {'generator.' + k: v for k, v in model.generator.state_dict().items()}
    torch.save({'meta': {}, 'state_dict': state}, root / 'tiny.pth')
    return root / 'tiny.py', root / 'tiny.pth'


def dark(height, width, seed):
    return (np.random.default_rng(seed).random((height, width, 3)) * 80).astype(np.uint8)


@pytest.fixture
def photos(tmp_path):
    """A folder of small photos: ordinary, odd-sized, large (for tiling), a JPEG, a subfolder,
    a file that is not an image, and an unreadable 'image'."""
    folder = tmp_path / 'photos'
    (folder / 'sub').mkdir(parents=True)
    Image.fromarray(dark(24, 32, 0)).save(folder / 'a.png')
    Image.fromarray(dark(37, 53, 1)).save(folder / 'odd.png')
    Image.fromarray(dark(100, 120, 2)).save(folder / 'large.png')
    Image.fromarray(dark(20, 20, 3)).save(folder / 'c.jpg', quality=95)
    Image.fromarray(dark(16, 16, 4)).save(folder / 'sub' / 'deep.png')
    (folder / 'notes.txt').write_text('not an image')
    (folder / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'garbage' * 10)
    return folder


def digests(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob('*')
            if p.is_file()}


def run(weights, *args):
    return tool.main([*map(str, args), '--config', str(weights[0]), '--checkpoint',
                      str(weights[1]), '--device', 'cpu'])


def test_folder_run_enhances_skips_and_reports_failures(weights, photos, tmp_path, capsys):
    out = tmp_path / 'out'
    out.mkdir()
    Image.fromarray(np.full((24, 32, 3), 7, np.uint8)).save(out / 'a.png')  # an earlier output
    existing = (out / 'a.png').read_bytes()
    before = digests(photos)

    code = run(weights, photos, '--out', out, '--tile', '48', '--overlap', '16')

    assert code == 1  # broken.png failed
    report = capsys.readouterr().out
    assert 'FAILED' in report and 'broken.png' in report
    assert '3 enhanced, 1 skipped' in report and '1 failed' in report
    assert '1 file(s) in the input folders have no image extension' in report
    assert digests(photos) == before  # inputs untouched
    assert (out / 'a.png').read_bytes() == existing  # skipped, not overwritten
    assert not (out / 'sub').exists()  # no --recursive
    for name, size in (('odd.png', (53, 37)), ('large.png', (120, 100)), ('c.png', (20, 20))):
        with Image.open(out / name) as image:
            assert image.size == size and image.mode == 'RGB'
    # The large image went through 48-pixel tiles: the API's tiled result, near the whole one.
    model = init_model(weights[0], weights[1])
    large = np.asarray(Image.open(photos / 'large.png'))
    written = np.asarray(Image.open(out / 'large.png'))
    np.testing.assert_array_equal(written, enhance(model, large, tile=48, overlap=16))
    assert np.abs(written.astype(int) - enhance(model, large, tile=None)).max() <= TILED_MAX_ABS
    assert not list(out.glob('.*.tmp'))  # no temporary files left


def test_rerun_continues_and_overwrite_redoes(weights, photos, tmp_path, capsys):
    out = tmp_path / 'out'
    (photos / 'broken.png').unlink()
    assert run(weights, photos, '--out', out) == 0
    stamp = (out / 'a.png').stat().st_mtime_ns
    capsys.readouterr()
    assert run(weights, photos, '--out', out) == 0
    assert '0 enhanced, 4 skipped' in capsys.readouterr().out
    assert (out / 'a.png').stat().st_mtime_ns == stamp
    assert run(weights, photos / 'a.png', '--out', out, '--overwrite') == 0
    assert '1 enhanced, 0 skipped' in capsys.readouterr().out


def test_recursive_globs_extras_and_formats(weights, photos, tmp_path):
    out = tmp_path / 'out'
    assert run(weights, photos / 'sub', str(photos / '*.jpg'), '--out', out, '--recursive',
               '--ext', 'same', '--illumination', '--side-by-side') == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob('*') if p.is_file()) == [
        'c.jpg', 'c_illumination.png', 'c_side_by_side.jpg', 'deep.png',
        'deep_illumination.png', 'deep_side_by_side.png']
    with Image.open(out / 'c.jpg') as image:
        assert image.format == 'JPEG'
    with Image.open(out / 'deep_side_by_side.png') as image:
        assert image.size == (3 * 16 + 2 * tool.SEPARATOR_WIDTH, 16)
    side = np.asarray(Image.open(out / 'deep_side_by_side.png'))
    np.testing.assert_array_equal(side[:, :16], np.asarray(Image.open(photos / 'sub' /
                                                                      'deep.png')))
    np.testing.assert_array_equal(side[:, -16:], np.asarray(Image.open(out / 'deep.png')))


def test_16_bit_gray_rgba_and_colour_profiles(weights, tmp_path):
    """Inputs read as the data loader decides (16-bit: high byte; gray: repeated; alpha:
    dropped); an RGB input's ICC profile is copied, not applied."""
    folder, out = tmp_path / 'in', tmp_path / 'out'
    folder.mkdir()
    gray16 = (np.arange(12 * 16).reshape(12, 16) * 300).astype(np.uint16)
    Image.fromarray(gray16).save(folder / 'gray16.png')
    rgba = np.dstack([dark(12, 16, 5), np.full((12, 16), 128, np.uint8)])
    Image.fromarray(rgba).save(folder / 'rgba.png')
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    Image.fromarray(dark(12, 16, 6)).save(folder / 'tagged.png', icc_profile=profile)

    assert run(weights, folder, '--out', out, '--side-by-side') == 0

    gray_panel = np.asarray(Image.open(out / 'gray16_side_by_side.png'))[:, :16]
    np.testing.assert_array_equal(gray_panel, np.repeat((gray16 >> 8)[..., None], 3, axis=2))
    rgba_panel = np.asarray(Image.open(out / 'rgba_side_by_side.png'))[:, :16]
    np.testing.assert_array_equal(rgba_panel, rgba[..., :3])
    for name in ('gray16.png', 'rgba.png', 'tagged.png'):
        with Image.open(out / name) as image:
            assert image.mode == 'RGB' and image.size == (16, 12)
    with Image.open(out / 'tagged.png') as image:
        assert image.info.get('icc_profile') == profile
    with Image.open(out / 'gray16.png') as image:
        assert 'icc_profile' not in image.info


def test_outputs_inside_the_input_folder_are_not_read_back(weights, photos, capsys):
    (photos / 'broken.png').unlink()
    out = photos / 'enhanced'
    assert run(weights, photos, '--out', out, '--recursive') == 0
    capsys.readouterr()
    assert run(weights, photos, '--out', out, '--recursive') == 0
    assert '0 enhanced, 5 skipped' in capsys.readouterr().out


def test_refuses_to_overwrite_an_input(weights, photos):
    before = digests(photos)
    with pytest.raises(SystemExit) as exit_info:
        run(weights, photos, '--out', photos, '--ext', 'same')
    assert exit_info.value.code == 2
    assert digests(photos) == before


def test_refuses_two_inputs_writing_one_output(weights, photos, tmp_path, capsys):
    Image.fromarray(dark(8, 8, 9)).save(photos / 'c.png')  # c.jpg -> c.png as well
    with pytest.raises(SystemExit) as exit_info:
        run(weights, photos, '--out', tmp_path / 'out')
    assert exit_info.value.code == 2
    assert 'would both write' in capsys.readouterr().err


def test_missing_inputs_fail_and_bad_tiles_are_usage_errors(weights, photos, tmp_path, capsys):
    assert run(weights, tmp_path / 'nowhere', photos / 'a.png', '--out', tmp_path / 'o') == 1
    assert 'nowhere: no such file or folder' in capsys.readouterr().out
    assert (tmp_path / 'o' / 'a.png').exists()
    with pytest.raises(SystemExit) as exit_info:
        run(weights, photos, '--out', tmp_path / 'o', '--tile', '30')
    assert exit_info.value.code == 2


def test_command_line_exit_code(weights, photos, tmp_path):
    """One real process (the others call main() in-process to stay fast)."""
    result = subprocess.run(
        [sys.executable, str(TOOL), str(photos / 'a.png'), str(photos / 'broken.png'),
         '--config', str(weights[0]), '--checkpoint', str(weights[1]), '--device', 'cpu',
         '--out', str(tmp_path / 'out')], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 1, result.stderr
    assert 'FAILED' in result.stdout and (tmp_path / 'out' / 'a.png').exists()
