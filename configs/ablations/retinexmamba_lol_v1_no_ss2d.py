# Ablation: RetinexMamba without SS2D (IFA + FFN only); everything else as configs/retinexmamba_lol_v1.py.
from mmengine.config import read_base

with read_base():
    from ..retinexmamba_lol_v1 import *  # noqa: F401,F403

model['generator'].update(use_ss2d=False)
