"""The dataset base configs: they parse, name the recipe's batch/patch, and build a loader that
feeds LowLightDataPreprocessor (with mixup on and off)."""
import shutil
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from retinexmamba_mm.datasets import make_demo_dataset
from retinexmamba_mm.models.data_preprocessors import LowLightDataPreprocessor

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASET_CONFIGS = REPO_ROOT / 'configs' / '_base_' / 'datasets'


@pytest.mark.parametrize('name, root, batch, patch', [
    ('lol_v1', 'data/LOLv1', 8, 128),
    ('lol_v2_real', 'data/LOLv2/Real_captured', 4, 256),
    ('lol_v2_synthetic', 'data/LOLv2/Synthetic', 8, 128),
    ('demo', 'data/demo', 4, 64),
])
def test_recipe_values(name, root, batch, patch):
    cfg = Config.fromfile(str(DATASET_CONFIGS / f'{name}.py'))
    train = cfg.train_dataloader
    assert train.batch_size == batch
    assert train.sampler.type == 'InfiniteSampler'
    assert train.dataset.type == 'LOLDataset' and train.dataset.data_root == root
    assert train.dataset.split == 'train'
    crop = [t for t in train.dataset.pipeline if t.type == 'PairedRandomCropPad']
    assert [t.patch_size for t in crop] == [patch]
    assert any(t.type == 'PairedGeometricAugment' for t in train.dataset.pipeline)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.batch_size == 1 and loader.sampler.type == 'DefaultSampler'
        assert loader.dataset.split == 'test' and loader.dataset.test_mode
        assert loader.persistent_workers == (loader.num_workers > 0)
        assert [t.type for t in loader.dataset.pipeline] == [
            'LoadRGBImageFromFile', 'LoadRGBImageFromFile', 'PackInputs']


def test_child_config_reads_a_dataset_base_with_read_base(tmp_path):
    shutil.copytree(REPO_ROOT / 'configs' / '_base_', tmp_path / '_base_')
    (tmp_path / 'child.py').write_text(
        'from mmengine.config import read_base\n\n'
        'with read_base():\n'
        '    from ._base_.datasets.lol_v2_real import *\n\n'
        "train_dataloader.update(batch_size=2)\n")
    cfg = Config.fromfile(str(tmp_path / 'child.py'))
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.test_dataloader.dataset.data_root == 'data/LOLv2/Real_captured'


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    make_demo_dataset(str(root))
    return root


@pytest.mark.parametrize('mixup', [False, True])
def test_demo_config_loader_feeds_the_preprocessor(demo_root, mmagic_scope, mixup):
    cfg = Config.fromfile(str(DATASET_CONFIGS / 'demo.py'))
    loader_cfg = cfg.train_dataloader
    loader_cfg.batch_size = 3
    loader_cfg.dataset.data_root = str(demo_root)
    loader = Runner.build_dataloader(loader_cfg.to_dict(), seed=0)
    batch = next(iter(loader))
    assert len(batch['inputs']) == 3
    augments = dict(type='PairedMixup', prob=1.0) if mixup else None
    preprocessor = LowLightDataPreprocessor(batch_augments=augments)
    torch.manual_seed(0)
    data = preprocessor(batch, training=True)
    inputs, gt = data['inputs'], data['data_samples'].gt_img
    assert inputs.shape == gt.shape == (3, 3, 64, 64)
    assert inputs.dtype == gt.dtype == torch.float32
    assert 0 <= inputs.min() and inputs.max() <= 1 and 0 <= gt.min() and gt.max() <= 1
    raw = torch.stack(batch['inputs']).float() / 255
    assert torch.allclose(inputs, raw) != mixup
    assert inputs.mean() < gt.mean()  # low-light inputs, normal-light targets

    val = Runner.build_dataloader(dict(cfg.val_dataloader.to_dict(), dataset=dict(
        cfg.val_dataloader.dataset.to_dict(), data_root=str(demo_root))), seed=0)
    data = preprocessor(next(iter(val)), training=False)
    assert data['inputs'].shape[0] == 1 and data['data_samples'].gt_img.dtype == torch.uint8
