"""LOLDataset: every layout we promise to read, and every error we promise to raise."""
from pathlib import Path

import numpy as np
import pytest

from retinexmamba_mm.datasets import LOLDataset

from .image_helpers import make_pair_folders, random_rgb, write_png

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_LOLV1 = REPO_ROOT / '..' / 'shared' / 'data' / 'LOLv1'
LOLV1_TEST_NAMES = ['1', '22', '23', '55', '79', '111', '146', '179', '493', '547', '665', '669',
                    '748', '778', '780']  # natural order


def pairs(dataset):
    return [(Path(info['img_path']).name, Path(info['gt_path']).name, info['key'])
            for info in (dataset.get_data_info(i) for i in range(len(dataset)))]


@pytest.mark.parametrize('split_name, split, low, normal', [
    ('Train', 'train', 'input', 'target'),    # LOL-v1, authors' copy
    ('Test', 'test', 'input', 'target'),
    ('our485', 'train', 'low', 'high'),       # LOL-v1, original release
    ('eval15', 'test', 'low', 'high'),
    ('Train', 'train', 'Low', 'Normal'),      # LOL-v2 real / synthetic
    ('test', 'test', 'low', 'normal'),        # lower-case variants, synthesize tool output
])
def test_layouts_are_detected(tmp_path, split_name, split, low, normal):
    names = ['10.png', '2.png', '1.png']
    make_pair_folders(tmp_path / split_name / low, tmp_path / split_name / normal, names)
    dataset = LOLDataset(data_root=str(tmp_path), split=split)
    assert pairs(dataset) == [('1.png', '1.png', '1'), ('2.png', '2.png', '2'),
                              ('10.png', '10.png', '10')]
    info = dataset.get_data_info(0)
    assert Path(info['img_path']) == tmp_path / split_name / low / '1.png'
    assert Path(info['gt_path']) == tmp_path / split_name / normal / '1.png'


def test_original_lol_v2_names_pair_without_renaming(tmp_path):
    make_pair_folders(tmp_path / 'Test' / 'Low', tmp_path / 'Test' / 'Normal',
                      ['low00690.png', 'low00010.png', 'low00002.png'],
                      ['normal00002.png', 'normal00690.png', 'normal00010.png'])
    dataset = LOLDataset(data_root=str(tmp_path), split='test')
    assert pairs(dataset) == [('low00002.png', 'normal00002.png', '00002'),
                              ('low00010.png', 'normal00010.png', '00010'),
                              ('low00690.png', 'normal00690.png', '00690')]


def test_split_none_and_user_named_folders(tmp_path):
    make_pair_folders(tmp_path / 'a' / 'dark', tmp_path / 'a' / 'bright', ['x.png', 'y.png'])
    dataset = LOLDataset(data_root=str(tmp_path / 'a'), data_prefix=dict(img='dark', gt='bright'))
    assert [key for *_, key in pairs(dataset)] == ['x', 'y']
    make_pair_folders(tmp_path / 'b' / 'Low', tmp_path / 'b' / 'Normal', ['z.png'])
    assert len(LOLDataset(data_root=str(tmp_path / 'b'))) == 1


def test_natural_order(tmp_path):
    names = ['img10.png', 'img9.png', 'img100.png', 'IMG1.png', 'b2.png', 'a10.png', 'a2.png']
    make_pair_folders(tmp_path / 'input', tmp_path / 'target', names)
    keys = [key for *_, key in pairs(LOLDataset(data_root=str(tmp_path)))]
    assert keys == ['a2', 'a10', 'b2', 'IMG1', 'img9', 'img10', 'img100']


def test_missing_root_names_the_path_and_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'(?s)nowhere.*does not exist.*expected one of'):
        LOLDataset(data_root=str(tmp_path / 'nowhere'), split='train')


def test_missing_split_and_pair_folders(tmp_path):
    make_pair_folders(tmp_path / 'input', tmp_path / 'target', ['1.png'])
    with pytest.raises(FileNotFoundError, match=r'(?s)no train folder.*input, target.*split=None'):
        LOLDataset(data_root=str(tmp_path), split='train')
    (tmp_path / 'Test' / 'photos').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r'(?s)no pair of .*Test.*photos.*data_prefix'):
        LOLDataset(data_root=str(tmp_path), split='test')
    with pytest.raises(FileNotFoundError, match=r'(?s)image folder .*missing.* does not exist'):
        LOLDataset(data_root=str(tmp_path), data_prefix=dict(img='input', gt='missing'))


def test_empty_folder(tmp_path):
    make_pair_folders(tmp_path / 'input', tmp_path / 'target', [], ['1.png'])
    (tmp_path / 'input').mkdir(exist_ok=True)
    (tmp_path / 'input' / 'notes.txt').write_text('not an image')
    with pytest.raises(ValueError, match=r"image folder '.*input' is empty"):
        LOLDataset(data_root=str(tmp_path))


def test_unpaired_files_are_listed_both_ways(tmp_path):
    make_pair_folders(tmp_path / 'input', tmp_path / 'target', ['1.png', '2.png', '7.png'],
                      ['1.png', '2.png', '8.png', '9.png'])
    with pytest.raises(ValueError) as error:
        LOLDataset(data_root=str(tmp_path))
    message = str(error.value)
    assert '2 pairs found' in message
    assert "1 low-light file(s) in" in message and ': 7.png' in message
    assert "2 normal-light file(s) in" in message and ': 8.png, 9.png' in message


def test_unreadable_and_truncated_images_are_named(tmp_path):
    make_pair_folders(tmp_path / 'input', tmp_path / 'target', ['1.png', '2.png', '3.png'])
    (tmp_path / 'input' / '2.png').write_text('garbage')
    whole = (tmp_path / 'target' / '3.png').read_bytes()
    (tmp_path / 'target' / '3.png').write_bytes(whole[:len(whole) - 20])
    with pytest.raises(ValueError) as error:
        LOLDataset(data_root=str(tmp_path))
    message = str(error.value)
    assert '2 unreadable image(s)' in message
    assert 'input/2.png: not a readable image' in message
    assert 'target/3.png: PNG chunk' in message and 'truncated' in message


def test_pairs_of_different_sizes_are_named(tmp_path):
    make_pair_folders(tmp_path / 'input', tmp_path / 'target', ['1.png', '2.png'])
    write_png(tmp_path / 'target' / '2.png', random_rgb(6, 9))
    with pytest.raises(ValueError, match=r'(?s)1 pair\(s\) whose sizes differ.*input/2\.png is '
                                         r'8x6 but .*target/2\.png is 9x6'):
        LOLDataset(data_root=str(tmp_path))


def test_check_images_can_be_turned_off(tmp_path):
    make_pair_folders(tmp_path / 'input', tmp_path / 'target', ['1.png'])
    (tmp_path / 'input' / '1.png').write_text('garbage')
    assert len(LOLDataset(data_root=str(tmp_path), check_images=False)) == 1


def test_same_name_different_extension_is_refused(tmp_path):
    make_pair_folders(tmp_path / 'input', tmp_path / 'target', ['1.png', '1.jpg'], ['1.png'])
    with pytest.raises(ValueError, match='same name but different extensions'):
        LOLDataset(data_root=str(tmp_path), check_images=False)


def test_pipeline_item_carries_rgb_images_and_names(tmp_path, mmagic_scope):
    low, normal = random_rgb(6, 8, seed=1), random_rgb(6, 8, seed=2)
    write_png(tmp_path / 'input' / 'a.png', low)
    write_png(tmp_path / 'target' / 'a.png', normal)
    dataset = LOLDataset(data_root=str(tmp_path), test_mode=True, pipeline=[
        dict(type='LoadRGBImageFromFile', key='img'),
        dict(type='LoadRGBImageFromFile', key='gt'),
        dict(type='PackInputs', meta_keys=['key'])])
    item = dataset[0]
    np.testing.assert_array_equal(item['inputs'].permute(1, 2, 0).numpy(), low)
    sample = item['data_samples']
    np.testing.assert_array_equal(sample.gt_img.permute(1, 2, 0).numpy(), normal)
    assert sample.metainfo['key'] == 'a'
    assert sample.metainfo['img_channel_order'] == 'rgb'
    assert Path(sample.metainfo['gt_path']) == tmp_path / 'target' / 'a.png'


@pytest.mark.skipif(not SHARED_LOLV1.is_dir(),
                    reason=f'the real LOL-v1 test set is not at {SHARED_LOLV1} (it lives in the '
                           "checkout's sibling shared/data folder)")
def test_real_lol_v1_test_set(mmagic_scope):
    dataset = LOLDataset(data_root=str(SHARED_LOLV1), split='test', test_mode=True, pipeline=[
        dict(type='LoadRGBImageFromFile', key='img'),
        dict(type='LoadRGBImageFromFile', key='gt'),
        dict(type='PackInputs', meta_keys=['key'])])
    assert len(dataset) == 15
    assert [key for *_, key in pairs(dataset)] == LOLV1_TEST_NAMES
    for low_name, normal_name, key in pairs(dataset):
        assert low_name == normal_name == f'{key}.png'
    for index in range(len(dataset)):
        item = dataset[index]
        assert tuple(item['inputs'].shape) == (3, 400, 600)
        assert tuple(item['data_samples'].gt_img.shape) == (3, 400, 600)
        # low-light input is darker than its target (LOL-v1 test means: 15 vs 115)
        assert item['inputs'].float().mean() * 2 < item['data_samples'].gt_img.float().mean()
