"""Stop training at the first NaN/inf loss, before a checkpoint of the broken model is written."""
import math
from typing import Optional

import torch
from mmagic.registry import HOOKS
from mmengine.hooks import Hook


class NonFiniteLossError(FloatingPointError):
    """Raised by :class:`CheckFiniteLossHook` when a training loss is NaN or infinite."""


@HOOKS.register_module()
class CheckFiniteLossHook(Hook):
    """Checks the losses of every ``interval``-th training iteration and stops at a NaN/inf.

    mmengine 0.10 has no such hook (MMDetection's ``CheckInvalidLossHook`` only asserts, every
    50 iterations by default). This one raises :class:`NonFiniteLossError` with the iteration,
    the loss values, the lr and the gradient norm, and what to try. Its priority (ABOVE_NORMAL)
    runs it before the ``CheckpointHook`` (VERY_LOW) of the same iteration, and the exception
    ends the loop before validation or the best-checkpoint save; checkpoints of earlier
    iterations are left as they are. The optimizer step of the bad iteration has already run, so
    the model in memory is not worth saving anyway.

    Checking every iteration costs nothing extra: mmengine's ``RuntimeInfoHook`` already moves
    every loss to the CPU each iteration.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval = interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        losses = {key: _to_float(value) for key, value in (outputs or {}).items()
                  if 'loss' in key}
        if not losses:
            raise KeyError('CheckFiniteLossHook found no loss in the train step outputs '
                           f'(keys: {sorted(outputs or {})}); remove the hook or return losses '
                           'named "loss*" from the model.')
        if all(math.isfinite(value) for value in losses.values()):
            return
        raise NonFiniteLossError(self._message(runner, losses))

    @staticmethod
    def _message(runner, losses: dict) -> str:
        iteration = runner.iter + 1  # 1-based, as in the training log and checkpoint names
        values = ', '.join(f'{key}={value}' for key, value in losses.items())
        lrs = runner.optim_wrapper.get_lr()['lr']
        details = [f"lr={lrs[0] if len(lrs) == 1 else lrs}"]
        if 'train/grad_norm' in runner.message_hub.log_scalars:
            details.append(f"grad_norm={runner.message_hub.get_scalar('train/grad_norm').current()}")
        return (
            f'Training stopped: non-finite loss at iteration {iteration} ({values}; '
            f'{", ".join(details)}). No checkpoint was written for this iteration; earlier '
            f'checkpoints in {runner.work_dir} are untouched (resume from the last one with '
            '--resume). What to try: a lower learning rate (optim_wrapper.optimizer.lr); check '
            'the training data for broken images or NaN/inf values; if training with --amp / '
            'AmpOptimWrapper, train in fp32 (fp16 overflow is a common cause); keep gradient '
            'clipping on (optim_wrapper.clip_grad).')


def _to_float(value) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean())
    return float(value)
