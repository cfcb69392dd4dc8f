"""The NaN guard in a real mmengine Runner: training stops at the bad iteration, with a message,
and no checkpoint of that iteration is written."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from retinexmamba_mm.engine import CheckFiniteLossHook, NonFiniteLossError

BAD_ITERATION = 3  # 1-based, as in the log and the checkpoint names


class ScaledInput(BaseModel):

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=(self.weight * inputs).abs().mean())


class Values(Dataset):
    """One scalar per iteration; NaN at BAD_ITERATION."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        value = float('nan') if index == BAD_ITERATION - 1 else 1.0
        return dict(inputs=torch.tensor([value]))


def build_runner(work_dir, **hook_cfg):
    return Runner(
        model=ScaledInput(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=Values(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=1,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=6),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01), clip_grad=dict(max_norm=1.0)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False)),
        custom_hooks=[dict(type='CheckFiniteLossHook', **hook_cfg)],
        default_scope='mmagic')


def test_training_stops_before_the_checkpoint_of_the_bad_iteration(tmp_path):
    runner = build_runner(tmp_path)
    with pytest.raises(NonFiniteLossError) as error:
        runner.train()
    message = str(error.value)
    assert f'iteration {BAD_ITERATION}' in message and 'loss=nan' in message
    for hint in ('grad_norm=nan', 'lr=', 'learning rate', 'data', '--amp', str(tmp_path)):
        assert hint in message
    saved = sorted(p.name for p in tmp_path.glob('*.pth'))
    assert saved == [f'iter_{i}.pth' for i in range(1, BAD_ITERATION)]
    assert (tmp_path / 'last_checkpoint').read_text().endswith(f'iter_{BAD_ITERATION - 1}.pth')


def test_runs_before_the_checkpoint_hook_and_refuses_outputs_without_loss():
    assert CheckFiniteLossHook.priority == 'ABOVE_NORMAL'  # CheckpointHook is VERY_LOW
    with pytest.raises(KeyError, match='no loss'):
        CheckFiniteLossHook().after_train_iter(SimpleNamespace(iter=0), 0, outputs={'acc': 1.0})
    with pytest.raises(ValueError):
        CheckFiniteLossHook(interval=0)
