"""The low-light metrics against hand-computed values and independent implementations."""
import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from retinexmamba_mm.evaluation import LowLightPSNR, LowLightRMSE, LowLightSSIM  # noqa: F401

C1 = (0.01 * 255)**2
C2 = (0.03 * 255)**2


def build(cfg):
    from mmagic.registry import METRICS
    return METRICS.build(cfg)


def evaluate(cfg, samples):
    metric = build(cfg)
    metric.process(None, samples)
    return metric.evaluate()


def naive_ssim_channel(a, b):
    """SSIM of one channel by explicit 11x11 Gaussian windows at every valid position."""
    offsets = np.arange(11) - 5
    g = np.exp(-offsets**2 / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i:i + 11, j:j + 11], b[i:i + 11, j:j + 11]
            mu_a, mu_b = (window * pa).sum(), (window * pb).sum()
            var_a = (window * (pa - mu_a)**2).sum()
            var_b = (window * (pb - mu_b)**2).sum()
            cov = (window * (pa - mu_a) * (pb - mu_b)).sum()
            values.append((2 * mu_a * mu_b + C1) * (2 * cov + C2) /
                          ((mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2)))
    return np.mean(values)


def test_psnr_of_a_known_mse(make_sample):
    gt = np.full((8, 9, 3), 100, np.uint8)
    result = evaluate(dict(type='LowLightPSNR'), [make_sample(np.full(gt.shape, 110.0), gt)])
    assert result['PSNR'] == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)


def test_psnr_averages_per_image_values_and_caps_identical_images(make_sample):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
    pred = np.clip(gt + rng.normal(0, 8, gt.shape), 0, 255)
    mse = np.mean((pred / 255 - gt / 255)**2)
    result = evaluate(dict(type='LowLightPSNR'),
                      [make_sample(pred, gt), make_sample(gt.astype(np.float64), gt)])
    assert result['PSNR'] == pytest.approx((10 * math.log10(1 / mse) + 100) / 2, abs=1e-6)


def test_psnr_uses_the_clamped_float_output(make_sample):
    gt = np.zeros((4, 4, 3), np.uint8)
    pred = np.full(gt.shape, 0.4)  # 0.4/255: would round to 0 if quantised to uint8
    result = evaluate(dict(type='LowLightPSNR'), [make_sample(pred, gt)])
    assert result['PSNR'] == pytest.approx(10 * math.log10(1 / (0.4 / 255)**2), abs=1e-6)


def test_ssim_of_constant_images_by_hand(make_sample):
    gt = np.full((15, 15, 3), 80, np.uint8)
    pred = np.full(gt.shape, 120.0)
    expected = (2 * 80 * 120 + C1) / (80**2 + 120**2 + C1)  # zero variances: structure term 1
    result = evaluate(dict(type='LowLightSSIM'), [make_sample(pred, gt)])
    assert result['SSIM'] == pytest.approx(expected, abs=1e-12)


def test_ssim_matches_a_naive_windowed_implementation(make_sample):
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 256, (14, 17, 3), dtype=np.uint8)
    pred = np.clip(gt * 0.7 + rng.normal(20, 15, gt.shape), 0, 255)
    pred_u8 = np.rint(pred).astype(np.float64)  # the protocol rounds the output to uint8
    expected = np.mean([naive_ssim_channel(pred_u8[..., c], gt[..., c].astype(np.float64))
                        for c in range(3)])
    result = evaluate(dict(type='LowLightSSIM'), [make_sample(pred, gt)])
    assert result['SSIM'] == pytest.approx(expected, abs=1e-10)


def test_ssim_matches_skimage_gaussian_ssim(make_sample):
    # skimage filters the whole image, then crops (win_size - 1) // 2 = 5 pixels per side: the
    # same valid region as the protocol, with the same normalised 11-tap sigma-1.5 window.
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)
    pred_u8 = np.clip(gt.astype(int) + rng.integers(-30, 31, gt.shape), 0, 255).astype(np.uint8)
    expected = structural_similarity(pred_u8, gt, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255, channel_axis=2)
    result = evaluate(dict(type='LowLightSSIM'), [make_sample(pred_u8.astype(np.float64), gt)])
    assert result['SSIM'] == pytest.approx(expected, abs=1e-10)


def test_ssim_rounds_half_to_even_like_img_as_ubyte(make_sample):
    gt = np.full((11, 11, 3), 2, np.uint8)
    # 2.5 rounds to 2 (half to even): identical to gt; 3.5 rounds to 4
    assert evaluate(dict(type='LowLightSSIM'), [make_sample(np.full(gt.shape, 2.5), gt)]
                    )['SSIM'] == pytest.approx(1.0, abs=1e-12)
    expected = (2 * 2 * 4 + C1) / (2**2 + 4**2 + C1)
    assert evaluate(dict(type='LowLightSSIM'), [make_sample(np.full(gt.shape, 3.5), gt)]
                    )['SSIM'] == pytest.approx(expected, abs=1e-12)


def test_gt_mean_recovers_a_uniformly_darkened_output(make_sample):
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    dark = gt * 0.5  # exactly half as bright: GT-mean scales it back by exactly 2
    samples = [make_sample(dark, gt)]
    assert evaluate(dict(type='LowLightPSNR'), samples)['PSNR'] < 20
    assert evaluate(dict(type='LowLightPSNR', gt_mean=True), samples) == {'PSNR_GTmean': 100.0}
    assert evaluate(dict(type='LowLightSSIM', gt_mean=True), samples)['SSIM_GTmean'] == (
        pytest.approx(1.0, abs=1e-12))


@pytest.mark.parametrize('gray_weights,red_weight', [('bt601', 0.299), ('authors', 0.114)])
def test_gt_mean_gray_weights(make_sample, gray_weights, red_weight):
    # target: uniform gray g; output: pure red of level a. GT-mean scales the output by
    # g / (w_R * a), so its red becomes g / w_R (no clamping here: g / 0.114 < 1).
    g = 26 / 255
    gt = np.full((12, 12, 3), 26, np.uint8)
    pred = np.zeros(gt.shape)
    pred[..., 0] = 127.5  # red channel of the RGB output
    mse = ((g / red_weight - g)**2 + g**2 + g**2) / 3
    result = evaluate(dict(type='LowLightPSNR', gt_mean=True, gray_weights=gray_weights),
                      [make_sample(pred, gt)])
    assert result['PSNR_GTmean'] == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)


def test_gt_mean_clamps_after_scaling(make_sample):
    gt = np.full((4, 4, 3), 200, np.uint8)
    pred = np.zeros(gt.shape)
    pred[0, 0] = 255.0  # one white pixel: mean gray 1/16, scaled by 16 * 200/255 -> clamped to 1
    pred[0, 1] = 10.0   # 10/255 * 16 * 200/255 = 0.492...
    scale = (200 / 255) / ((255 + 10) / 255 / 16)
    out = np.zeros((4, 4, 3))
    out[0, 0] = 1.0
    out[0, 1] = 10 / 255 * scale
    mse = np.mean((out - 200 / 255)**2)
    result = evaluate(dict(type='LowLightPSNR', gt_mean=True), [make_sample(pred, gt)])
    assert result['PSNR_GTmean'] == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)


def test_rmse_is_on_the_255_scale_of_bt601_gray(make_sample):
    gt = np.full((5, 6, 3), 100, np.uint8)
    assert evaluate(dict(type='LowLightRMSE'), [make_sample(np.full(gt.shape, 110.0), gt)]
                    )['RMSE'] == pytest.approx(10.0)
    black = np.zeros((5, 6, 3), np.uint8)
    red = np.zeros((5, 6, 3))
    red[..., 0] = 255.0
    # gray of pure red = round(0.299 * 255) = 76; with R and B swapped it would be 29
    assert evaluate(dict(type='LowLightRMSE'), [make_sample(red, black)]
                    )['RMSE'] == pytest.approx(76.0)


def test_names_prefix_and_registration():
    assert build(dict(type='LowLightSSIM', gt_mean=True)).metric == 'SSIM_GTmean'
    metric = build(dict(type='LowLightPSNR', prefix='val'))
    assert metric.metric == 'PSNR' and metric.prefix == 'val'
    with pytest.raises(ValueError, match='gray_weights'):
        build(dict(type='LowLightPSNR', gt_mean=True, gray_weights='bgr'))


@pytest.mark.parametrize('metric_type', ['LowLightPSNR', 'LowLightSSIM', 'LowLightRMSE'])
def test_no_samples_is_an_error_not_nan(metric_type):
    with pytest.raises(RuntimeError, match='no image was evaluated'):
        build(dict(type=metric_type)).evaluate()


def test_bad_samples_are_named(make_sample):
    metric = build(dict(type='LowLightPSNR'))
    sample = make_sample(np.zeros((4, 4, 3)), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(KeyError, match='pred_img'):
        metric.process(None, [dict(sample, output={})])
    gray = dict(sample, gt_img=sample['gt_img'][:1])
    with pytest.raises(ValueError, match='3-channel'):
        metric.process(None, [gray])
