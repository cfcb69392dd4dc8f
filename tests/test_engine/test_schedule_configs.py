"""The schedule configs: they load as python-style configs and their optimizer step is the authors'
(Adam 2e-4, betas (0.9, 0.999), no weight decay, global gradient-norm clipping at 0.01)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

SCHEDULES = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'schedules'


@pytest.mark.parametrize('name', ['schedule_150k', 'schedule_short'])
def test_schedule_config_fields(name):
    cfg = Config.fromfile(str(SCHEDULES / f'{name}.py'))
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.val_interval == 1000
    assert cfg.val_cfg.type == 'MultiValLoop' and cfg.test_cfg.type == 'MultiTestLoop'
    (scheduler, ) = cfg.param_scheduler
    assert scheduler.type == 'CosineRestartCyclicLR' and scheduler.by_epoch is False
    assert sum(scheduler.periods) == cfg.train_cfg.max_iters


def authors_step(model, inputs):
    """BasicSR's optimize_parameters without AMP: backward, clip_grad_norm_(params, 0.01), Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.999))
    optimizer.zero_grad()
    model(inputs).abs().mean().backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01)
    optimizer.step()


def test_optimizer_step_equals_the_authors_step():
    cfg = Config.fromfile(str(SCHEDULES / 'schedule_150k.py'))
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
                                 torch.nn.Conv2d(8, 3, 1))
    theirs.load_state_dict(ours.state_dict())
    inputs = torch.randn(2, 3, 9, 9) * 50  # large gradients: the clip is active

    optim_wrapper = build_optim_wrapper(ours, cfg.optim_wrapper)
    optim_wrapper.update_params(ours(inputs).abs().mean())
    authors_step(theirs, inputs)

    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    assert optim_wrapper.message_hub.get_scalar('train/grad_norm').current() > 0.01
