# The embedded demo set: LOL-style pairs the project makes from scikit-image's bundled sample
# photos (`make demo`, or `python tools/make_demo_data.py`), under data/demo relative to the
# working directory:
#   data/demo/{train,test}/{low,normal}/<name>.png   (40 train pairs 128x128, 5 test pairs
#   about 180 px high with widths that are not multiples of 4)
# Small patches, small batches and no worker processes: it is meant to train on a 2-core CPU in
# minutes. Test sizes that are not multiples of 4 need no transform here: RetinexMamba.forward
# reflect-pads to a multiple of 4 and crops back, so the preprocessor keeps pad_size_divisor=1.
# The pipelines and loaders are LOL-v1's (lol_v1.py) with these values changed.
from mmengine.config import read_base

with read_base():
    from .lol_v1 import *  # noqa: F401,F403

data_root = 'data/demo'
train_patch_size = 64
train_dataloader['dataset']['pipeline'][2].update(patch_size=train_patch_size)
train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False)
val_dataloader.update(num_workers=0, persistent_workers=False)
test_dataloader.update(num_workers=0, persistent_workers=False)
train_dataloader['dataset'].update(data_root=data_root)
val_dataloader['dataset'].update(data_root=data_root)
test_dataloader['dataset'].update(data_root=data_root)
