"""Test a checkpoint (ours or the authors' .pth) and save the metrics as JSON in the work dir.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--save-images DIR]
        [--self-ensemble] [--gt-mean] [--cfg-options ...] [--launcher ...]
"""
import argparse
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

import retinexmamba_mm  # noqa: F401  (compat + registration before the config is parsed)
from retinexmamba_mm.apis.checkpoint import as_mmengine_checkpoint
from retinexmamba_mm.utils.runner_cli import (
    add_launcher_args,
    parse_launcher_args,
    set_launcher_and_work_dir,
)


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
    add_launcher_args(parser)
    return parse_launcher_args(parser)


def merge_args(cfg, args):
    set_launcher_and_work_dir(cfg, args)
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
