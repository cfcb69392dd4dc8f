# Baseline: Retinexformer (IGAB blocks: illumination-guided multi-head self-attention + FFN
# instead of IFA + SS2D), same estimator, U-shape and recipe as configs/retinexmamba_lol_v1.py.
from mmengine.config import read_base

with read_base():
    from ..retinexmamba_lol_v1 import *  # noqa: F401,F403

model['generator'].update(block_type='igab')
