# The embedded demo set: LOL-style pairs the project makes from scikit-image's bundled sample
# photos (`make demo`, or `python tools/make_demo_data.py`), under data/demo relative to the
# working directory:
#   data/demo/{train,test}/{low,normal}/<name>.png   (40 train pairs 128x128, 5 test pairs
#   about 180 px high with widths that are not multiples of 4)
# Small patches, small batches and no worker processes: it is meant to train on a 2-core CPU in
# minutes. Test sizes that are not multiples of 4 need no transform here: RetinexMamba.forward
# reflect-pads to a multiple of 4 and crops back, so the preprocessor keeps pad_size_divisor=1.
dataset_type = 'LOLDataset'
data_root = 'data/demo'
train_patch_size = 64

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
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True,
                 pipeline=test_pipeline))
