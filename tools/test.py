"""Test a checkpoint (ours or the authors' .pth) and save the metrics as JSON in the work dir.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--save-images DIR]
        [--self-ensemble] [--gt-mean] [--cfg-options ...] [--launcher ...]
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import retinexmamba_mm  # noqa: F401  (compat + registration before the config is parsed)
from retinexmamba_mm.apis.checkpoint import as_mmengine_checkpoint


def parse_args():
    parser = argparse.ArgumentParser(description='Test a low-light enhancement model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='our checkpoint or the authors\' .pth')
    parser.add_argument('--work-dir', help='where the log and metrics JSON go')
    parser.add_argument('--save-images', metavar='DIR', help='write the enhanced images to DIR')
    parser.add_argument('--self-ensemble', action='store_true',
                        help='average the 8 flip/rotation variants (the authors\' x8 ensemble)')
    parser.add_argument('--gt-mean', action='store_true',
                        help='also report the GT-mean PSNR/SSIM (output scaled to the GT mean)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (key=value pairs)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg, args):
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = as_mmengine_checkpoint(args.checkpoint, cfg.work_dir)
    cfg.resume = False
    if args.self_ensemble:
        cfg.model.setdefault('test_cfg', {})
        cfg.model.test_cfg = dict(cfg.model.test_cfg or {}, self_ensemble=True)
    if args.gt_mean:
        cfg.test_evaluator.metrics = list(cfg.test_evaluator.metrics) + [
            dict(m, gt_mean=True) for m in cfg.test_evaluator.metrics
            if m['type'] in ('LowLightPSNR', 'LowLightSSIM')
        ]
    if args.save_images:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='SaveEnhancedImagesHook', out_dir=args.save_images)
        ]
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main():
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='MetricsJSONHook', out_file=osp.join(cfg.work_dir, 'metrics.json'))
    ]
    runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
