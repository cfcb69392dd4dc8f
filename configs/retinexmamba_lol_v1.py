# RetinexMamba on LOL-v1 with the authors' recipe: batch 8 x 128x128 patches, 150k iterations,
# batch mixup (p 0.5, Beta(1.2, 1.2)), validation and a checkpoint every 1k iterations.
from mmengine.config import read_base

with read_base():
    from ._base_.datasets.lol_v1 import *  # noqa: F401,F403
    from ._base_.default_runtime import *  # noqa: F401,F403
    from ._base_.models.retinexmamba import *  # noqa: F401,F403
    from ._base_.schedules.schedule_150k import *  # noqa: F401,F403

model['data_preprocessor'].update(batch_augments=dict(type='PairedMixup', prob=0.5, alpha=1.2))
default_hooks['checkpoint'].update(interval=1000)
# Multi-GPU: batch_size is per GPU. The recipe's global batch is 8 (one GPU); keep it (e.g. 2 GPUs
# x 4) to reproduce it exactly, or pass --auto-scale-lr to scale the base lr linearly with the
# global batch (lr x world_size * batch_size / base_batch_size; the schedule's eta_mins stay).
auto_scale_lr = dict(enable=False, base_batch_size=8)
