"""The recipe's learning rate, stepped the way mmengine's ParamSchedulerHook steps it, against the
closed formula of the spec (with the cycle boundaries of the authors' BasicSR scheduler)."""
import io
import math
import types
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook, ParamSchedulerHook
from mmengine.model import BaseModel
from mmengine.runner import Runner

import retinexmamba_mm.engine  # noqa: F401  (registers the scheduler)

SCHEDULES = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'schedules'
CHECKED = [0, 1, 23000, 45999, 46000, 46001, 100000, 149999]


def recipe_lr(t, base=2e-4):
    """Spec section 3, per cycle: eta_min + 0.5 (base - eta_min)(1 + cos(pi * step / period)).
    Cycle 0 holds t = 0..46000, cycle 1 holds t = 46001..150000 (step = t - 46000): BasicSR
    assigns t to the first cycle whose cumulative end is >= t."""
    if t <= 46000:
        eta_min, step, period = 3e-4, t, 46000
    else:
        eta_min, step, period = 1e-6, t - 46000, 104000
    return eta_min + 0.5 * (base - eta_min) * (1 + math.cos(math.pi * step / period))


def build_from_config(name='schedule_150k'):
    from mmagic.registry import PARAM_SCHEDULERS
    cfg = Config.fromfile(str(SCHEDULES / f'{name}.py'))
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [PARAM_SCHEDULERS.build(dict(c, optimizer=optimizer))
                  for c in cfg.param_scheduler]
    return cfg, param, optimizer, schedulers


def sgd_step_size(param, optimizer):
    """Run one real optimizer step with gradient 1 and return how far the parameter moved."""
    param.grad = torch.ones_like(param)
    before = param.item()
    optimizer.step()
    return before - param.item()


def test_lr_matches_the_closed_formula_over_the_whole_recipe():
    cfg, param, optimizer, schedulers = build_from_config()
    assert cfg.train_cfg.max_iters == 150000
    hook = ParamSchedulerHook()
    runner = types.SimpleNamespace(param_schedulers=schedulers)
    used = {}
    for t in range(cfg.train_cfg.max_iters):  # iteration t trains with the lr set after t steps
        if t in CHECKED:
            used[t] = (optimizer.param_groups[0]['lr'], sgd_step_size(param, optimizer))
        hook.after_train_iter(runner, batch_idx=t)
    for t in CHECKED:
        lr, step = used[t]
        assert lr == pytest.approx(recipe_lr(t), rel=1e-12, abs=0), t
        assert step == pytest.approx(recipe_lr(t), rel=1e-9), t
    assert used[0][0] == 2e-4
    assert used[23000][0] == pytest.approx(2.5e-4, rel=1e-12)  # halfway up the rising cycle
    assert used[46000][0] == pytest.approx(3e-4, rel=1e-12)  # cycle 0 ends at its eta_min
    assert used[46001][0] == pytest.approx(2e-4, rel=1e-9)  # restart to the base lr
    assert used[149999][0] == pytest.approx(1e-6, rel=1e-6)


def test_resume_from_state_dicts_continues_exactly():
    def run(start_t, stop_t, optimizer, schedulers):
        hook = ParamSchedulerHook()
        runner = types.SimpleNamespace(param_schedulers=schedulers)
        lrs = []
        optimizer.step()  # the lr does not depend on the steps; one keeps the call order
        for t in range(start_t, stop_t):
            lrs.append(optimizer.param_groups[0]['lr'])
            hook.after_train_iter(runner, batch_idx=t)
        return lrs

    _, _, optimizer, schedulers = build_from_config()
    uninterrupted = run(0, 46010, optimizer, schedulers)

    _, _, optimizer, schedulers = build_from_config()
    first = run(0, 45995, optimizer, schedulers)
    buffer = io.BytesIO()  # as in a checkpoint: saved, then loaded with torch's safe loader
    torch.save(dict(optimizer=optimizer.state_dict(),
                    param_schedulers=[s.state_dict() for s in schedulers]), buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)

    _, _, optimizer, schedulers = build_from_config()  # fresh, as a resumed Runner builds them
    optimizer.load_state_dict(checkpoint['optimizer'])
    for scheduler, state in zip(schedulers, checkpoint['param_schedulers']):
        scheduler.load_state_dict(state)
    assert first + run(45995, 46010, optimizer, schedulers) == uninterrupted


def test_short_schedule_has_the_same_shape():
    cfg, param, optimizer, schedulers = build_from_config('schedule_short')
    (scheduler, ) = schedulers
    assert sum(scheduler.periods) == cfg.train_cfg.max_iters == 15000
    hook = ParamSchedulerHook()
    runner = types.SimpleNamespace(param_schedulers=schedulers)
    lrs = []
    for t in range(cfg.train_cfg.max_iters):
        lrs.append(optimizer.param_groups[0]['lr'])
        hook.after_train_iter(runner, batch_idx=t)
    assert max(lrs) == pytest.approx(3e-4) and lrs.index(max(lrs)) == 4600
    assert lrs[4601] == pytest.approx(2e-4, rel=1e-7)
    assert lrs[-1] == pytest.approx(1e-6, rel=1e-5)


def test_lr_holds_after_the_last_cycle_and_bad_arguments_are_refused():
    from mmagic.registry import PARAM_SCHEDULERS
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = PARAM_SCHEDULERS.build(dict(type='CosineRestartCyclicLR', optimizer=optimizer,
                                            periods=[3, 5], eta_mins=[0.5, 0.1],
                                            restart_weights=[1, 0.5]))
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    # restart weight 0.5: the second cycle starts at 0.1 + 0.5 * (1 - 0.1) (one step in)
    assert lrs[4] == pytest.approx(0.1 + 0.5 * 0.9 * 0.5 * (1 + math.cos(math.pi / 5)))
    assert lrs[8:] == [pytest.approx(0.1)] * 4
    for bad in (dict(periods=[3, 5], eta_mins=[0.1]), dict(periods=[0], eta_mins=[0.1]),
                dict(periods=[3], eta_mins=[0.1], restart_weights=[1, 1])):
        with pytest.raises(ValueError):
            PARAM_SCHEDULERS.build(dict(type='CosineRestartCyclicLR', optimizer=optimizer, **bad))


class _RecordLR(Hook):
    """Keeps the lr each training iteration runs with."""

    def __init__(self):
        self.lrs = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs[runner.iter] = runner.optim_wrapper.get_lr()['lr'][0]


class _Tiny(BaseModel):

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=(self.weight * inputs).abs().mean())


class _Interrupted(Exception):
    pass


class _InterruptAfter(Hook):
    priority = 'LOWEST'  # after the CheckpointHook of the same iteration

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            raise _Interrupted


def _runner(work_dir, max_iters, hooks, **kwargs):
    return Runner(
        model=_Tiny(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=[dict(inputs=torch.ones(1))] * 4,
            sampler=dict(type='InfiniteSampler', shuffle=False),
            batch_size=1,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1.0)),
        param_scheduler=[dict(type='CosineRestartCyclicLR', periods=[4, 6],
                              restart_weights=[1, 1], eta_mins=[1.5, 0.1], by_epoch=False)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=5, by_epoch=False)),
        custom_hooks=hooks,
        default_scope='mmagic',
        **kwargs)


def test_in_an_mmengine_runner_and_across_a_resume(tmp_path):
    def expected(t):
        eta_min, step, period = (1.5, t, 4) if t <= 4 else (0.1, t - 4, 6)
        return eta_min + 0.5 * (1.0 - eta_min) * (1 + math.cos(math.pi * step / period))

    whole = _RecordLR()
    _runner(tmp_path / 'whole', 10, [whole]).train()
    assert whole.lrs == {t: pytest.approx(expected(t), rel=1e-12) for t in range(10)}

    first, second = _RecordLR(), _RecordLR()
    with pytest.raises(_Interrupted):  # the same 10-iteration run, killed after iteration 5
        _runner(tmp_path / 'cut', 10, [first, _InterruptAfter(5)]).train()
    _runner(tmp_path / 'cut', 10, [second], resume=True,
            load_from=str(tmp_path / 'cut' / 'iter_5.pth')).train()
    assert sorted(first.lrs) == list(range(5)) and sorted(second.lrs) == list(range(5, 10))
    assert {**first.lrs, **second.lrs} == whole.lrs
