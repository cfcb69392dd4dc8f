"""Writes the metrics of every validation and test run to a JSON file in the work dir.

MMagic's ``MultiValLoop``/``MultiTestLoop`` return nothing (``runner.test()`` is None) and
mmengine's LoggerHook only writes a timestamped scalar log; users want one file to read.
"""
import json
import os
import os.path as osp

from mmagic.registry import HOOKS
from mmengine.dist import master_only
from mmengine.hooks import Hook


@HOOKS.register_module()
class MetricsJSONHook(Hook):
    """Dump ``{"mode", "iteration", "metrics"}`` after each val/test epoch.

    Args:
        out_file (str, optional): Path of the JSON file; default ``<work_dir>/metrics.json``.
            Test results overwrite it; validation results are appended to ``history``.
    """

    priority = 'LOW'

    def __init__(self, out_file=None):
        self.out_file = out_file
        self.last = {}

    def _write(self, runner, mode, metrics):
        record = dict(mode=mode, iteration=runner.iter,
                      metrics={k: float(v) for k, v in (metrics or {}).items()})
        self.last[mode] = record
        path = self.out_file or osp.join(runner.work_dir, 'metrics.json')
        content = {}
        if osp.isfile(path):
            with open(path) as f:
                content = json.load(f)
        content[mode] = record
        if mode == 'val':
            content.setdefault('val_history', []).append(record)
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(content, f, indent=2)
        runner.logger.info(f'{mode} metrics written to {path}')

    @master_only
    def after_val_epoch(self, runner, metrics=None):
        self._write(runner, 'val', metrics)

    @master_only
    def after_test_epoch(self, runner, metrics=None):
        self._write(runner, 'test', metrics)
