"""The compatibility module: mmcv-lite placeholder and mmengine checkpoints on torch >= 2.6."""
import pytest
import torch
from torch import nn

import retinexmamba_mm  # noqa: F401  (applies compat)
from retinexmamba_mm import compat


def test_mmagic_models_import_with_mmcv_lite():
    import mmagic.models  # noqa: F401  (edvr/tdan/stylegan import mmcv.ops at module level)


@pytest.mark.skipif(compat.mmcv_full_installed(), reason='full mmcv installed: no placeholder')
def test_mmcv_placeholder_raises_clear_error_when_an_op_is_called():
    import mmcv.ops
    from mmengine.utils.dl_utils import mmcv_full_available
    assert not mmcv_full_available()  # mmengine sees mmcv-lite and does not crash on the spec
    with pytest.raises(compat.MMCVOpsUnavailable, match="'nms' needs full mmcv"):
        mmcv.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)


@pytest.mark.skipif(not compat.mmcv_full_installed(), reason='needs full mmcv (compiled ops)')
def test_full_mmcv_ops_run():
    import mmcv.ops
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
    _, keep = mmcv.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


class _ToyModel(nn.Module):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=((out.squeeze(1) - torch.stack(labels))**2).mean())
        return out


def _runner(work_dir, **kwargs):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.net = _ToyModel()

        def forward(self, inputs, labels=None, mode='tensor'):
            return self.net(inputs, labels, mode)

    data = [(torch.randn(2), torch.randn(())) for _ in range(8)]

    def collate(batch):
        return dict(inputs=[b[0] for b in batch], labels=[b[1] for b in batch])

    loader = dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                  collate_fn=collate)
    return Runner(
        model=Toy(), work_dir=str(work_dir), train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=4),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmengine', **kwargs)


def test_runner_checkpoint_loads_for_resume_and_test(tmp_path):
    """mmengine checkpoints hold HistoryBuffer and numpy types: torch>=2.6 refuses them unless
    compat allow-lists them. Resume restores iteration and optimizer state; load_from, weights."""
    runner = _runner(tmp_path / 'a')
    runner.train()
    ckpt = tmp_path / 'a' / 'iter_4.pth'
    assert ckpt.is_file()
    raw = torch.load(ckpt, map_location='cpu', weights_only=True)  # the safe path itself
    assert 'message_hub' in raw and 'optimizer' in raw

    resumed = _runner(tmp_path / 'b', resume=True, load_from=str(ckpt))
    resumed.load_or_resume()
    assert resumed.iter == 4
    assert torch.equal(resumed.model.net.linear.weight, runner.model.net.linear.weight)
    state = resumed.optim_wrapper.optimizer.state_dict()['state']
    assert state and all('exp_avg' in s for s in state.values())

    tested = _runner(tmp_path / 'c', load_from=str(ckpt))
    tested.load_or_resume()
    assert torch.equal(tested.model.net.linear.weight, runner.model.net.linear.weight)


def test_arbitrary_pickles_still_refused(tmp_path):
    import pickle
    path = tmp_path / 'evil.pth'
    torch.save({'x': _ToyModel}, path)  # a class object is not on the allow-list
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
