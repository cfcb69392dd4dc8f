# The main job of `make demo`: a reduced RetinexMamba (n_feat 8, one block per level, d_state 4)
# trained for 60 iterations on 32x32 patches of the embedded demo set (data/demo, made by
# tools/make_demo_data.py) with the LOL-v1 recipe otherwise (L1, Adam, clipping, mixup, 8-way
# augmentation). Minutes on a 2-core CPU; the same file runs on a GPU unchanged.
from mmengine.config import read_base

with read_base():
    from ..retinexmamba_lol_v1 import *  # noqa: F401,F403
    from .._base_.datasets.demo import *  # noqa: F401,F403

model['generator'].update(n_feat=8, num_blocks=[1, 1, 1], d_state=4)
train_dataloader['dataset']['pipeline'][2].update(patch_size=32)
optim_wrapper['optimizer'].update(lr=1e-3)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=60, eta_min=1e-5, by_epoch=False)]
train_cfg.update(max_iters=60, val_interval=30)
default_hooks['logger'].update(interval=10)
log_processor.update(window_size=10)  # MMagic's timer updates the ETA once per window
default_hooks['checkpoint'].update(interval=30, max_keep_ckpts=1)
