"""Command-line pieces that tools/train.py and tools/test.py share: the launcher options and the
work-dir rule of OpenMMLab's tools."""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import DictAction

from .cpu_memory import keep_freed_memory


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """--cfg-options, --launcher and the --local-rank that torch.distributed.launch passes."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. train_cfg.max_iters=1000 (key=value pairs)')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launcher_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse; torchrun sets LOCAL_RANK itself, torch.distributed.launch only passes the flag.
    Without CUDA the model runs on the CPU, which keeps freed memory for reuse
    (``cpu_memory.py``)."""
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if not torch.cuda.is_available():
        keep_freed_memory()
    return args


def set_launcher_and_work_dir(cfg, args) -> None:
    """The launcher, and the work dir: --work-dir, else the config's, else
    ./work_dirs/<config name>."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
