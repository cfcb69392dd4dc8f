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
# To move the data, override the dataloaders' dataset.data_root (data_root below is copied into
# them when this file is read), e.g.
#   --cfg-options train_dataloader.dataset.data_root=/data/LOL-v2/Synthetic
dataset_type = 'LOLDataset'
data_root = 'data/LOLv2/Synthetic'
train_patch_size = 128

train_pipeline = [
    dict(type='LoadRGBImageFromFile', key='img'),
    dict(type='LoadRGBImageFromFile', key='gt'),
    dict(type='PairedRandomCropPad', patch_size=train_patch_size),
    dict(type='PairedGeometricAugment'),
    dict(type='PackInputs', meta_keys=['key']),
]
test_pipeline = [
    dict(type='LoadRGBImageFromFile', key='img'),
    dict(type='LoadRGBImageFromFile', key='gt'),
    dict(type='PackInputs', meta_keys=['key']),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True,
                 pipeline=test_pipeline))
