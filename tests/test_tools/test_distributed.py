"""Multi-process training without GPUs: the batch/lr rule of the configs, how tools/train.py turns
it on, and a 2-process run of tools/train.py under torchrun with gloo (what tools/dist_train.sh
does on GPUs with nccl)."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
from mmengine.config import Config
from tool_scripts import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN_TOOL = osp.join(ROOT, 'tools', 'train.py')
CONFIGS = osp.join(ROOT, 'configs')
DEMO_CONFIG = osp.join(CONFIGS, 'demo', 'retinexmamba_demo.py')


def train_tool_cfg(monkeypatch, *argv):
    """The config tools/train.py would hand to the Runner for this command line."""
    tool = load_tool('train.py')
    monkeypatch.setenv('LOCAL_RANK', '0')  # parse_args sets it; restored afterwards
    monkeypatch.setattr(sys, 'argv', ['train.py', *argv])
    args = tool.parse_args()
    return tool.merge_args(Config.fromfile(args.config), args)


@pytest.mark.parametrize('config, batch', [('retinexmamba_lol_v1.py', 8),
                                           ('retinexmamba_lol_v2_synthetic.py', 8),
                                           ('retinexmamba_lol_v2_real.py', 4)])
def test_lr_is_based_on_the_recipes_one_gpu_batch(config, batch):
    """The authors trained on one GPU; their lr belongs to that batch. Scaling is off by default:
    keep world_size x batch_size = base_batch_size to reproduce the recipe (e.g. 2 GPUs x 4)."""
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=batch)
    assert cfg.optim_wrapper.optimizer.lr == 2e-4


def test_train_tool_turns_auto_scale_lr_on_only_when_asked(monkeypatch, tmp_path):
    config = osp.join(CONFIGS, 'retinexmamba_lol_v1.py')
    cfg = train_tool_cfg(monkeypatch, config, '--work-dir', str(tmp_path))
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=8)
    cfg = train_tool_cfg(monkeypatch, config, '--work-dir', str(tmp_path), '--auto-scale-lr',
                         '--launcher', 'pytorch')
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=8)
    assert cfg.launcher == 'pytorch'


@pytest.mark.parametrize('world_size, batch, ratio', [(1, 8, 1.0), (2, 4, 1.0), (2, 8, 2.0),
                                                      (4, 8, 4.0), (2, 2, 0.5)])
def test_runner_scales_lr_by_world_size_times_batch_over_base(monkeypatch, tmp_path, world_size,
                                                               batch, ratio):
    """What mmengine's Runner does with --auto-scale-lr: lr x world_size * batch_size / base
    (base_batch_size 8 from the LOL-v1 config). The schedule is built afterwards from the
    scaled lr."""
    from mmengine.runner import Runner
    cfg = train_tool_cfg(monkeypatch, DEMO_CONFIG, '--work-dir', str(tmp_path), '--auto-scale-lr',
                         '--cfg-options', f'train_dataloader.batch_size={batch}')
    base_lr = cfg.optim_wrapper.optimizer.lr
    runner = Runner.from_cfg(cfg)
    runner._world_size = world_size  # what init_dist gives each process of a torchrun job
    wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(wrapper, runner.auto_scale_lr)
    assert wrapper.optimizer.param_groups[0]['lr'] == pytest.approx(base_lr * ratio)


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    from retinexmamba_mm.datasets.demo_data import make_demo_dataset
    root = str(tmp_path_factory.mktemp('demo'))
    make_demo_dataset(root)
    return root


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_with_gloo_train_validate_and_only_rank0_writes(demo_root, tmp_path):
    """torchrun, 2 CPU processes, gloo: 4 iterations (2 x 2 = global batch 4, so --auto-scale-lr
    halves the lr), validation at the end split over both ranks, one checkpoint. ~25 s."""
    work, logs = tmp_path / 'work', tmp_path / 'torchrun'
    overrides = {
        'env_cfg.dist_cfg.backend': 'gloo',
        'train_dataloader.dataset.data_root': demo_root,
        'val_dataloader.dataset.data_root': demo_root,
        'test_dataloader.dataset.data_root': demo_root,
        'model.generator.n_feat': 8,
        'model.generator.d_state': 4,
        'train_dataloader.batch_size': 2,
        'train_dataloader.dataset.pipeline.2.patch_size': 32,
        'train_cfg.max_iters': 4,
        'train_cfg.val_interval': 4,
        'param_scheduler.0.T_max': 4,
        'default_hooks.checkpoint.interval': 4,
        'default_hooks.logger.interval': 1,
        'log_processor.window_size': 1,
    }
    # No GPU even where there is one: this is the CPU path (compat.py, section 5).
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_addr', '127.0.0.1', '--master_port', str(free_port()),
           '--log-dir', str(logs), '--redirects', '3',  # each rank's stdout/stderr in a file
           TRAIN_TOOL, DEMO_CONFIG, '--launcher', 'pytorch', '--auto-scale-lr',
           '--work-dir', str(work), '--cfg-options', *[f'{k}={v}' for k, v in overrides.items()]]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    rank_logs = {int(osp.basename(d)): d for d in logs.glob('*/attempt_0/*')}
    rank_errs = {r: (d / 'stderr.log').read_text() for r, d in rank_logs.items()}
    assert result.returncode == 0, (result.stdout[-2000:] + result.stderr[-2000:] +
                                    ''.join(e[-2000:] for e in rank_errs.values()))

    # Both ranks ran to the end (torchrun returns 0 only when every worker does).
    assert sorted(rank_logs) == [0, 1]
    assert not any('Traceback' in err for err in rank_errs.values())

    # Only rank 0 wrote checkpoints, logs and the config dump: one run folder, one log, no
    # per-rank files, nothing else in the working directory (rank 1 has the same cwd) but the
    # folder mmengine's CPU result collection (collect_results_cpu) makes there, `.dist_test`:
    # each rank pickles its validation results into a subfolder, rank 0 merges and deletes them.
    assert {p.name for p in tmp_path.iterdir()} == {'work', 'torchrun', '.dist_test'}
    assert not list((tmp_path / '.dist_test').iterdir())
    runs = [p for p in work.iterdir() if p.is_dir()]
    assert len(runs) == 1
    run = runs[0]
    assert {p.name for p in work.iterdir() if p.is_file()} == {
        'iter_4.pth', 'best_PSNR_iter_4.pth', 'last_checkpoint', 'retinexmamba_demo.py'}
    assert {p.name for p in run.iterdir()} == {f'{run.name}.log', 'vis_data'}
    assert {p.name for p in (run / 'vis_data').iterdir()} == {
        f'{run.name}.json', 'config.py', 'scalars.json', 'vis_image'}
    assert not [p for p in work.rglob('*') if 'rank' in p.name]

    log = (run / f'{run.name}.log').read_text()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # the world size
    # --auto-scale-lr with the real world size: 2 processes x 2 = 4 against the base 8.
    assert 'based on batch size of 8 and the current batch size is 4' in log
    assert 'Scaling the original LR by 0.5' in log
    assert 'Iter(train) [1/4]  lr: 5.0000e-04' in log  # the demo's 1e-3, halved
    assert 'Iter(train) [4/4]' in log and 'Saving checkpoint at 4 iterations' in log
    # The 5 validation images are split over the ranks (3 + 3 with DefaultSampler's padding);
    # the metrics are gathered on rank 0.
    assert 'Iter(val) [3/3]' in log and 'PSNR:' in log and 'SSIM:' in log
    # The visualisation hook (MMagic's BasicVisualizationHook) draws on every rank, each its own
    # share: all 5 images exist although rank 0 validated 3 of them. This is the one thing rank 1
    # writes, and it is evidence that rank 1 ran the validation loop.
    images = sorted(p.name for p in (run / 'vis_data' / 'vis_image').iterdir())
    assert len(images) == 5 and all(name.endswith('_4.png') for name in images)
