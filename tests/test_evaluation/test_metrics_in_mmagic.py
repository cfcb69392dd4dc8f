"""The metrics inside MMagic's MultiTestLoop + Evaluator on real LOL-v1 pairs.

The LOL input stands in for a prediction: an identity generator inside MMagic's BaseEditModel and
DataPreprocessor (mean 0, std 255, images loaded as RGB) makes the data samples exactly as in a
real test run. Expected values are computed here independently from the PNG files.
"""
import math

import cv2
import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from skimage.metrics import structural_similarity

import retinexmamba_mm.evaluation  # noqa: F401  (registers the metrics)

PAIRS = ['1.png', '22.png']


class _Identity(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x


class KeepMetricsHook(Hook):
    """Keeps the metrics of the test epoch (mmagic's runner.test() returns None)."""

    def __init__(self):
        self.metrics = None

    def after_test_epoch(self, runner, metrics=None):
        self.metrics = metrics


def run_test_loop(root, evaluator, work_dir):
    from mmagic.registry import MODELS

    MODELS.register_module(name='_IdentityGeneratorForMetricTests', module=_Identity, force=True)
    (work_dir / 'pairs.txt').write_text('\n'.join(PAIRS))
    keeper = KeepMetricsHook()
    pipeline = [
        dict(type='LoadImageFromFile', key='img', color_type='color', channel_order='rgb'),
        dict(type='LoadImageFromFile', key='gt', color_type='color', channel_order='rgb'),
        dict(type='PackInputs'),
    ]
    runner = Runner(
        model=dict(
            type='BaseEditModel',
            generator=dict(type='_IdentityGeneratorForMetricTests'),
            pixel_loss=dict(type='L1Loss'),
            data_preprocessor=dict(type='DataPreprocessor', mean=[0, 0, 0], std=[255, 255, 255])),
        work_dir=str(work_dir),
        test_dataloader=dict(
            batch_size=1,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='BasicImageDataset',
                data_root=str(root),
                data_prefix=dict(img='input', gt='target'),
                ann_file=str(work_dir / 'pairs.txt'),
                pipeline=pipeline)),
        test_cfg=dict(type='MultiTestLoop'),
        test_evaluator=evaluator,
        custom_hooks=[keeper],
        default_scope='mmagic')
    runner.test()
    return keeper.metrics


def expected_values(root):
    """Per-protocol values from the PNGs, without the package: cv2 loads BGR."""
    values = {k: [] for k in ('PSNR', 'SSIM', 'RMSE', 'PSNR_GTmean', 'PSNR_GTmean_authors')}
    for name in PAIRS:
        low_bgr = cv2.imread(str(root / 'input' / name))
        high_bgr = cv2.imread(str(root / 'target' / name))
        low, high = low_bgr[..., ::-1] / 255.0, high_bgr[..., ::-1] / 255.0  # float RGB
        values['PSNR'].append(10 * math.log10(1 / np.mean((low - high)**2)))
        values['SSIM'].append(structural_similarity(
            low_bgr, high_bgr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=255, channel_axis=2))
        gray = [cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float64)
                for img in (low_bgr, high_bgr)]
        values['RMSE'].append(np.sqrt(np.mean((gray[0] - gray[1])**2)))
        bt601 = np.array([0.299, 0.587, 0.114])
        aligned = np.clip(low * ((high @ bt601).mean() / (low @ bt601).mean()), 0, 1)
        values['PSNR_GTmean'].append(10 * math.log10(1 / np.mean((aligned - high)**2)))
        # the authors' script: OpenCV's BGR2GRAY applied to float32 RGB arrays
        low32, high32 = low.astype(np.float32), high.astype(np.float32)
        ratio = (cv2.cvtColor(high32, cv2.COLOR_BGR2GRAY).mean() /
                 cv2.cvtColor(low32, cv2.COLOR_BGR2GRAY).mean())
        aligned = np.clip(low32 * ratio, 0, 1)
        values['PSNR_GTmean_authors'].append(10 * math.log10(1 / np.mean((aligned - high)**2)))
    return {k: float(np.mean(v)) for k, v in values.items()}


def test_metrics_in_multi_test_loop_on_lol_pairs(lol_v1_test, tmp_path):
    evaluator = [
        dict(type='LowLightPSNR'),
        dict(type='LowLightSSIM'),
        dict(type='LowLightRMSE'),
        dict(type='LowLightPSNR', gt_mean=True),
        dict(type='LowLightPSNR', gt_mean=True, gray_weights='authors', prefix='authors'),
        dict(type='LPIPS', pretrained_backbone=False),
    ]
    metrics = run_test_loop(lol_v1_test, evaluator, tmp_path)
    expected = expected_values(lol_v1_test)

    assert metrics['PSNR'] == pytest.approx(expected['PSNR'], abs=1e-4)
    assert metrics['SSIM'] == pytest.approx(expected['SSIM'], abs=1e-8)
    assert metrics['RMSE'] == pytest.approx(expected['RMSE'], abs=1e-9)
    assert metrics['PSNR_GTmean'] == pytest.approx(expected['PSNR_GTmean'], abs=1e-4)
    assert metrics['authors/PSNR_GTmean'] == pytest.approx(expected['PSNR_GTmean_authors'],
                                                           abs=1e-3)
    # the swapped weights matter on real low-light images (their colour casts differ)
    assert abs(expected['PSNR_GTmean'] - expected['PSNR_GTmean_authors']) > 1e-3
    assert math.isfinite(metrics['LPIPS']) and metrics['LPIPS'] >= 0
    # orientation: the dark input is far from its target
    assert 5 < metrics['PSNR'] < 12 and metrics['PSNR_GTmean'] > metrics['PSNR']


def test_empty_test_set_is_an_error(tmp_path):
    from mmagic.evaluation import Evaluator
    evaluator = Evaluator([dict(type='LowLightPSNR'), dict(type='LowLightSSIM')])
    with pytest.raises(RuntimeError, match='no image was evaluated'):
        evaluator.evaluate()
