"""The user workflow end to end on the CPU: tools/train.py -> tools/test.py, resume, mim."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(ROOT, 'configs', 'demo', 'retinexmamba_demo.py')


def tiny_settings(data_root, max_iters, val_interval):
    """A few iterations of a very small RetinexMamba on the demo set (seconds on a CPU)."""
    return {
        'train_dataloader.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        'model.generator.n_feat': 8,
        'model.generator.d_state': 4,
        'train_dataloader.batch_size': 2,
        'train_dataloader.dataset.pipeline.2.patch_size': 32,
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': val_interval,
        'param_scheduler.0.T_max': max_iters,
        'default_hooks.checkpoint.interval': val_interval,
        'default_hooks.logger.interval': 1,
        'log_processor.window_size': 1,  # MMagic's IterTimerHook updates the ETA per window
    }


def tiny_overrides(data_root, max_iters, val_interval):
    """The same settings as ``--cfg-options key=value`` arguments."""
    return [f'{k}={v}' for k, v in tiny_settings(data_root, max_iters, val_interval).items()]


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    from retinexmamba_mm.datasets.demo_data import make_demo_dataset
    root = str(tmp_path_factory.mktemp('demo'))
    make_demo_dataset(root)
    return root


def run_tool(*args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_train_with_validation_then_test_writes_metrics_json(demo_root, tmp_path):
    work = tmp_path / 'work'
    log = run_tool(osp.join(ROOT, 'tools', 'train.py'), DEMO_CONFIG, '--work-dir', str(work),
                   '--cfg-options', *tiny_overrides(demo_root, 4, 2), cwd=tmp_path)
    assert 'Iter(train) [4/4]' in log and 'lr:' in log and 'loss:' in log and 'eta:' in log
    assert (work / 'iter_4.pth').is_file()  # checkpoints in the asked-for work dir
    assert list(work.glob('best_PSNR_iter_*.pth'))
    vis = list(work.glob('*/vis_data/vis_image/*.png'))
    assert vis, 'validation writes side-by-side images'

    test_dir = tmp_path / 'test'
    images = tmp_path / 'enhanced'
    log = run_tool(osp.join(ROOT, 'tools', 'test.py'), DEMO_CONFIG, str(work / 'iter_4.pth'),
                   '--work-dir', str(test_dir), '--save-images', str(images), '--gt-mean',
                   '--cfg-options', *tiny_overrides(demo_root, 4, 2), cwd=tmp_path)
    metrics = json.loads((test_dir / 'metrics.json').read_text())['test']['metrics']
    assert {'PSNR', 'SSIM', 'PSNR_GTmean', 'SSIM_GTmean'} <= set(metrics)
    assert 5 < metrics['PSNR'] < 60 and 0 < metrics['SSIM'] <= 1
    assert len(list(images.glob('*.png'))) == 5  # one per demo test image


class _Interrupt(Exception):
    pass


def _train(cfg, work_dir, resume=False, stop_at=None):
    """Train ``cfg``; with ``stop_at``, die right after that iteration's checkpoint is written,
    as a killed job would (same config, so nothing but the interruption differs)."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    class InterruptHook(Hook):

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == stop_at:
                raise _Interrupt

    cfg = cfg.copy()
    cfg.work_dir = str(work_dir)
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.register_hook(InterruptHook(), priority='LOWEST')  # after the CheckpointHook
    try:
        runner.train()
    except _Interrupt:
        assert stop_at is not None
    return runner


def test_resume_continues_exactly_like_an_uninterrupted_run(demo_root, tmp_path):
    """Same iteration, lr, optimizer state, data order and mixup draws as a straight run."""
    from mmengine.config import Config

    import retinexmamba_mm  # noqa: F401
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.merge_from_dict(tiny_settings(demo_root, 6, 3))
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.model.data_preprocessor.batch_augments.prob = 1.0  # mix every batch: resume must replay it

    straight = _train(cfg, tmp_path / 'straight')
    _train(cfg, tmp_path / 'cut', stop_at=3)
    assert (tmp_path / 'cut' / 'iter_3.pth').is_file()
    assert not (tmp_path / 'cut' / 'iter_6.pth').exists()
    resumed = _train(cfg, tmp_path / 'cut', resume=True)

    assert resumed.iter == straight.iter == 6
    for (name, a), (_, b) in zip(straight.model.state_dict().items(),
                                 resumed.model.state_dict().items()):
        assert torch.equal(a, b), f'{name} differs after resume'
    assert straight.optim_wrapper.get_lr() == resumed.optim_wrapper.get_lr()
    state_a = straight.optim_wrapper.optimizer.state_dict()['state']
    state_b = resumed.optim_wrapper.optimizer.state_dict()['state']
    for key in state_a:
        assert torch.equal(state_a[key]['exp_avg'], state_b[key]['exp_avg'])
        assert torch.equal(state_a[key]['exp_avg_sq'], state_b[key]['exp_avg_sq'])


@pytest.mark.skipif(shutil.which('mim', path=osp.dirname(sys.executable)) is None,
                    reason='openmim is not installed in this environment')
def test_mim_train_and_test_find_the_packaged_tools(demo_root, tmp_path):
    """A built (non-editable) install ships configs/ and tools/ under retinexmamba_mm/.mim, where
    `mim train/test retinexmamba_mm CONFIG` look for them. (pip's PEP 660 editable installs
    report site-packages as the package location, so mim cannot see an editable source tree.)"""
    site = tmp_path / 'site'
    build = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation',
         '--target', str(site), ROOT], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    assert (site / 'retinexmamba_mm' / '.mim' / 'tools' / 'train.py').is_file()
    assert (site / 'retinexmamba_mm' / '.mim' / 'configs' / 'retinexmamba_lol_v1.py').is_file()

    mim = osp.join(osp.dirname(sys.executable), 'mim')
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONPATH=str(site))
    config = osp.join('configs', 'demo', 'retinexmamba_demo.py')  # found inside the package
    work = tmp_path / 'mim_work'
    train = subprocess.run(
        [mim, 'train', 'retinexmamba_mm', config, '--work-dir', str(work),
         '--cfg-options', *tiny_overrides(demo_root, 2, 2)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    assert (work / 'iter_2.pth').is_file()
    test = subprocess.run(
        [mim, 'test', 'retinexmamba_mm', config, '--checkpoint', str(work / 'iter_2.pth'),
         '--work-dir', str(tmp_path / 'mim_test'), '--cfg-options',
         *tiny_overrides(demo_root, 2, 2)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
    assert (tmp_path / 'mim_test' / 'metrics.json').is_file()
