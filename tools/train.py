"""Train a model from a config with mmengine's Runner.

    python tools/train.py configs/retinexmamba_lol_v1.py [--work-dir DIR] [--resume [PATH]] [--amp]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]

Multi-GPU: tools/dist_train.sh CONFIG NUM_GPUS (torchrun, --launcher pytorch).
"""
import argparse
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

import retinexmamba_mm  # noqa: F401  (compat + registration before the config is parsed)
from retinexmamba_mm.utils.runner_cli import (
    add_launcher_args,
    parse_launcher_args,
    set_launcher_and_work_dir,
)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a low-light enhancement model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from PATH, or from the latest checkpoint in the work dir without PATH')
    parser.add_argument('--amp', action='store_true', help='mixed-precision training (CUDA)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr linearly with the global batch (see the config)')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip validation during training')
    add_launcher_args(parser)
    return parse_launcher_args(parser)


def merge_args(cfg, args):
    """Apply the command line on top of the config (the command line wins)."""
    set_launcher_and_work_dir(cfg, args)

    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'OptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        elif wrapper != 'AmpOptimWrapper':
            raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, got {wrapper!r}')

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise KeyError(f'--auto-scale-lr: {args.config} has no auto_scale_lr setting '
                           '(dict(enable=False, base_batch_size=...))')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume: no checkpoint at {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume

    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main():
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
