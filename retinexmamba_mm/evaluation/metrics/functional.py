"""The low-light test protocol as plain functions on numpy images.

Every function takes HWC **RGB** arrays. Float images are in [0, 1]; "u8" images are uint8 in
[0, 255]. The protocol is the one the Retinexformer/RetinexMamba authors report numbers with
(their ``Enhancement/test_from_dataset.py``): clamp the output to [0, 1]; PSNR on the float
images, whole image, no border crop; SSIM on the images rounded to uint8, per channel then
averaged, Gaussian window 11 / sigma 1.5, valid region only. The metric classes in this package
only fetch images from MMagic's data samples and call these functions.
"""
import math

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Gray weights as (R, G, B) multipliers for RGB arrays.
# 'bt601': ITU-R BT.601 luma, the correct weights for RGB input.
# 'authors': what the authors' GT-mean code computes: it calls cv2.COLOR_BGR2GRAY on RGB arrays,
#   so R gets the blue weight and B the red one. Kept only to reproduce their published numbers.
GRAY_WEIGHTS = {
    'bt601': (0.299, 0.587, 0.114),
    'authors': (0.114, 0.587, 0.299),
}

# PSNR of two identical images. The authors' script returns 100 dB instead of infinity, which keeps
# the average over a test set finite; we follow it.
PSNR_OF_IDENTICAL_IMAGES = 100.0

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def check_gray_weights(gray_weights):
    """Raise a clear error unless ``gray_weights`` names one of :data:`GRAY_WEIGHTS`."""
    if gray_weights not in GRAY_WEIGHTS:
        raise ValueError(f'gray_weights must be one of {sorted(GRAY_WEIGHTS)}, '
                         f'got {gray_weights!r}')


def mean_gray(img, gray_weights='bt601'):
    """Mean gray level of an RGB image (any range), with the named weights."""
    check_gray_weights(gray_weights)
    weights = np.asarray(GRAY_WEIGHTS[gray_weights], dtype=np.float64)
    return float((np.asarray(img, dtype=np.float64) @ weights).mean())


def gt_mean_align(pred, gt, gray_weights='bt601'):
    """Scale ``pred`` so its mean gray level matches ``gt``'s, then clamp to [0, 1].

    The "GT-mean" protocol (KinD, LLFlow, Retinexformer's ``--GT_mean``): it removes the overall
    brightness error, which the ground truth of a low-light pair does not determine. An all-black
    prediction has no brightness to rescale and is returned unchanged.
    """
    pred_level = mean_gray(pred, gray_weights)
    if pred_level == 0:
        return pred
    return np.clip(pred * (mean_gray(gt, gray_weights) / pred_level), 0.0, 1.0)


def to_uint8(img):
    """[0, 1] float -> uint8 by rounding half to even, as ``skimage.img_as_ubyte`` does."""
    return np.clip(np.rint(np.asarray(img, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def psnr(pred, gt):
    """PSNR in dB of float RGB images in [0, 1]: 10 log10(1 / MSE) over all pixels and channels."""
    mse = float(np.mean((np.asarray(pred, np.float64) - np.asarray(gt, np.float64))**2))
    if mse == 0:
        return PSNR_OF_IDENTICAL_IMAGES
    return 10.0 * math.log10(1.0 / mse)


def _gaussian_window(size=SSIM_WINDOW, sigma=SSIM_SIGMA):
    offsets = np.arange(size) - (size - 1) / 2
    weights = np.exp(-offsets**2 / (2 * sigma**2))
    return weights / weights.sum()


def _local_means(img, window):
    """Window-weighted means over every full window of a 2-D image (separable, no padding)."""
    rows = sliding_window_view(img, window.size, axis=0) @ window
    return sliding_window_view(rows, window.size, axis=1) @ window


def ssim(pred_u8, gt_u8):
    """SSIM of uint8 RGB images: Gaussian 11 / 1.5 window, valid region, mean over channels.

    "Valid region" means only positions whose whole 11x11 window lies inside the image, i.e. a
    5-pixel border is left out; no padding enters the statistics. This equals
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255)``, which filters the whole image and then crops
    the same 5 pixels.
    """
    if pred_u8.shape != gt_u8.shape:
        raise ValueError(f'SSIM needs images of one shape, got {pred_u8.shape} and {gt_u8.shape}')
    if min(pred_u8.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f'SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, '
                         f'got {pred_u8.shape[:2]}')
    c1 = (0.01 * 255)**2
    c2 = (0.03 * 255)**2
    window = _gaussian_window()
    per_channel = []
    for channel in range(pred_u8.shape[2]):
        x = pred_u8[..., channel].astype(np.float64)
        y = gt_u8[..., channel].astype(np.float64)
        mu_x, mu_y = _local_means(x, window), _local_means(y, window)
        var_x = _local_means(x * x, window) - mu_x**2
        var_y = _local_means(y * y, window) - mu_y**2
        cov = _local_means(x * y, window) - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
            (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
        per_channel.append(ssim_map.mean())
    return float(np.mean(per_channel))


def rmse_gray(pred_u8, gt_u8):
    """RMSE on the [0, 255] scale between the uint8 BT.601 gray images of two uint8 RGB images.

    This is the RMSE of the authors' separate script (``Enhancement/RMSE.py``), which reads the
    saved PNGs, converts both to gray with OpenCV (uint8 result) and takes sqrt(mean((a - b)^2)).
    """
    pred_gray = cv2.cvtColor(np.ascontiguousarray(pred_u8), cv2.COLOR_RGB2GRAY)
    gt_gray = cv2.cvtColor(np.ascontiguousarray(gt_u8), cv2.COLOR_RGB2GRAY)
    diff = pred_gray.astype(np.float64) - gt_gray.astype(np.float64)
    return float(np.sqrt(np.mean(diff**2)))
