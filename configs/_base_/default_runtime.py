# Runtime defaults, mirroring MMagic's default_runtime with two deliberate changes:
# checkpoints go to the work dir the user asked for (no `out_dir`, which in MMagic's runtime writes
# under ./work_dirs/<basename>), and the visualiser draws input | illumination | output | target.
default_scope = 'mmagic'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        interval=5000,
        by_epoch=False,
        max_keep_ckpts=3,
        save_best='PSNR',
        rule='greater',
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

log_level = 'INFO'
log_processor = dict(type='LogProcessor', window_size=100, by_epoch=False)

load_from = None
resume = False

# The authors' seed; mmengine adds the rank to it on each GPU (diff_rank_seed).
randomness = dict(seed=100, diff_rank_seed=True)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='ConcatImageVisualizer',
    vis_backends=vis_backends,
    fn_key='img_path',
    img_keys=['input', 'pred_illumination', 'pred_img', 'gt_img'],
    bgr2rgb=True)
custom_hooks = [
    dict(type='BasicVisualizationHook', interval=1),
    # A NaN/inf loss stops training with a clear message before a checkpoint is written.
    dict(type='CheckFiniteLossHook', interval=1),
]
