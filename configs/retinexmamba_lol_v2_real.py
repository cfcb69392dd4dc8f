# RetinexMamba on LOL-v2-real: the LOL-v1 recipe with the v2-real data (batch 4 x 256x256).
from mmengine.config import read_base

with read_base():
    from .retinexmamba_lol_v1 import *  # noqa: F401,F403
    from ._base_.datasets.lol_v2_real import *  # noqa: F401,F403

auto_scale_lr.update(base_batch_size=4)
