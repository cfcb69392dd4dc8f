# RetinexMamba as in the paper (LOL settings): n_feat 40, one stage, blocks [1, 2, 2], d_state 16
# (4,589,001 parameters), trained with L1. The scan backend is chosen at run time
# ('auto': mamba_ssm > triton > torch on CUDA, torch on the CPU; logged once).
model = dict(
    type='LowLightEnhancer',
    generator=dict(
        type='RetinexMamba',
        in_channels=3,
        out_channels=3,
        n_feat=40,
        stage=1,
        num_blocks=[1, 2, 2],
        d_state=16,
        scan_backend='auto'),
    pixel_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    train_cfg=dict(),
    test_cfg=dict(self_ensemble=False),
    data_preprocessor=dict(
        type='LowLightDataPreprocessor',
        mean=[0., 0., 0.],
        std=[255., 255., 255.],
        batch_augments=None))

# The authors' test metrics (PSNR on float RGB in [0, 1], SSIM on rounded uint8 RGB).
val_evaluator = dict(
    type='Evaluator', metrics=[dict(type='LowLightPSNR'), dict(type='LowLightSSIM')])
test_evaluator = val_evaluator
