# RetinexMamba on LOL-v2-synthetic: the LOL-v1 recipe with the v2-synthetic data (batch 8 x 128x128).
from mmengine.config import read_base

with read_base():
    from .retinexmamba_lol_v1 import *  # noqa: F401,F403
    from ._base_.datasets.lol_v2_synthetic import *  # noqa: F401,F403
