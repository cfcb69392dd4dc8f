# LOL-v2-synthetic (Yang et al., TIP 2021): 900 training / 100 test pairs, 384x384 PNG.
# Default layout (the authors' copy), relative to the working directory:
#   data/LOLv2/Synthetic/{Train,Test}/{Low,Normal}/<name>.png
# The original release names pairs low00690.png / normal00690.png; it is read as is (pairs are
# keyed 00690). Own folders: add data_prefix=dict(img='<low>', gt='<normal>') to the dataset.
# Recipe (the authors' options file): batch 8 per GPU, 128x128 patches, one of 8 flips/rotations;
# mixup lives in the model's data preprocessor (LowLightDataPreprocessor(batch_augments=...)).
# Test images are whole frames at batch 1. Sizes that are not multiples of 4 need no transform
# here: RetinexMamba.forward reflect-pads to a multiple of 4 and crops back, so the preprocessor
# keeps pad_size_divisor=1.
# The pipelines and loaders are LOL-v1's (lol_v1.py); only the root differs.
# To move the data, override the dataloaders' dataset.data_root (data_root below is copied into
# them when this file is read), e.g.
#   --cfg-options train_dataloader.dataset.data_root=/data/LOL-v2/Synthetic
from mmengine.config import read_base

with read_base():
    from .lol_v1 import *  # noqa: F401,F403

data_root = 'data/LOLv2/Synthetic'
train_dataloader['dataset'].update(data_root=data_root)
val_dataloader['dataset'].update(data_root=data_root)
test_dataloader['dataset'].update(data_root=data_root)
