"""Cosine annealing with restarts and one eta_min per cycle (the RetinexMamba/Retinexformer lr)."""
import math
from typing import Sequence

from mmagic.registry import PARAM_SCHEDULERS
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler


@PARAM_SCHEDULERS.register_module()
class CosineRestartCyclicLR(LRSchedulerMixin, _ParamScheduler):
    """Cosine cycles, each with its own length, restart weight and minimum, in closed form.

    At step t (0-based, counted from ``begin``) inside cycle i, which covers
    ``(end_{i-1}, end_i]`` with ``end_i = periods[0] + ... + periods[i]`` (cycle 0 also holds
    t = 0)::

        lr(t) = eta_mins[i] + restart_weights[i] * (base_lr - eta_mins[i])
                              * 0.5 * (1 + cos(pi * (t - end_{i-1}) / periods[i]))

    This is BasicSR's ``CosineAnnealingRestartCyclicLR`` as the authors train with it, stepped
    the way BasicSR steps it (iteration k >= 1 of their loop uses lr(k - 1), which is mmengine's
    iteration k - 1). An eta_min above the base lr makes the cycle rise: the recipe's first cycle
    goes from 2e-4 up to 3e-4. Two consequences of the authors' boundary convention are kept on
    purpose: the last step of a cycle belongs to it (t = 46000 of the recipe is still 3e-4), and
    the next cycle starts one step in (t = 46001 is 2e-4 minus 5e-14, not 2e-4 exactly).

    Why not mmengine's ``CosineRestartLR``: it takes one eta_min, restarts one step earlier
    (t = 46000 is the restart there) and updates recursively from the previous lr. Chaining two
    of them with begin/end gives per-cycle minima but keeps the earlier restart.

    After the last cycle (t > sum(periods)) the lr stays where the schedule ended, the last
    eta_min, unless ``end`` stops the scheduler earlier.

    Args:
        optimizer (Optimizer or OptimWrapper): The wrapped optimizer.
        periods (Sequence[int]): Length of each cycle in steps.
        restart_weights (Sequence[float]): Weight of (base_lr - eta_min) in each cycle.
            Defaults to all ones.
        eta_mins (Sequence[float]): The lr each cycle anneals to.
        begin (int): Step at which the schedule starts. Defaults to 0.
        end (int): Step at which it stops updating. Defaults to the end of the last cycle.
        last_step (int): Used when resuming without a state dict. Defaults to -1.
        by_epoch (bool): Step per epoch. Defaults to True like every mmengine scheduler (the
            Runner picks the default ``end`` from it); the recipe's periods are iterations, so
            its configs set ``by_epoch=False``.
        verbose (bool): Log every update. Defaults to False.
    """

    def __init__(self,
                 optimizer,
                 periods: Sequence[int],
                 eta_mins: Sequence[float],
                 restart_weights: Sequence[float] = None,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = True,
                 verbose: bool = False):
        if not periods or any(int(p) != p or p <= 0 for p in periods):
            raise ValueError(f'periods must be positive integers, got {periods}')
        if restart_weights is None:
            restart_weights = [1.0] * len(periods)
        if not len(periods) == len(restart_weights) == len(eta_mins):
            raise ValueError('periods, restart_weights and eta_mins need one entry per cycle, got '
                             f'{len(periods)}, {len(restart_weights)} and {len(eta_mins)}')
        self.periods = [int(p) for p in periods]
        self.restart_weights = list(restart_weights)
        self.eta_mins = list(eta_mins)
        self.cycle_ends = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        if end == INF:
            end = begin + self.cycle_ends[-1] + 1  # t = sum(periods) is the last defined step
        super().__init__(optimizer, begin=begin, end=end, last_step=last_step,
                         by_epoch=by_epoch, verbose=verbose)

    def _get_value(self):
        t = min(self.last_step, self.cycle_ends[-1])
        cycle = next(i for i, cycle_end in enumerate(self.cycle_ends) if t <= cycle_end)
        cycle_start = self.cycle_ends[cycle - 1] if cycle else 0
        eta_min = self.eta_mins[cycle]
        cosine = 0.5 * (1 + math.cos(math.pi * (t - cycle_start) / self.periods[cycle]))
        weight = self.restart_weights[cycle]
        return [eta_min + weight * (base - eta_min) * cosine for base in self.base_values]
