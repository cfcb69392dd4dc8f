# Ablation: RetinexMamba without the illumination estimator (L = 0; illu_fea from a plain conv of the input); everything else as configs/retinexmamba_lol_v1.py.
from mmengine.config import read_base

with read_base():
    from ..retinexmamba_lol_v1 import *  # noqa: F401,F403

model['generator'].update(use_illumination_estimator=False)
