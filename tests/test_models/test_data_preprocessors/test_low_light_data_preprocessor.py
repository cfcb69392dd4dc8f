"""LowLightDataPreprocessor: [0, 1] RGB for the model, mmagic's test-time BGR for the metrics,
and mixup only in training."""
import numpy as np
import pytest
import torch
from mmagic.datasets.transforms import PackInputs

from retinexmamba_mm.models.data_preprocessors import LowLightDataPreprocessor


def packed_batch(images, targets):
    """What the dataloader hands over: packed items as LoadRGBImageFromFile + PackInputs make."""
    pack = PackInputs(meta_keys=['key'])
    items = [pack(dict(img=img, gt=gt, img_channel_order='rgb', gt_channel_order='rgb',
                       img_color_type='color', gt_color_type='color', key=str(i)))
             for i, (img, gt) in enumerate(zip(images, targets))]
    return dict(inputs=[item['inputs'] for item in items],
                data_samples=[item['data_samples'] for item in items])


def rgb_batch(batch=4, size=5, seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 86, (size, size, 3), dtype=np.uint8) for _ in range(batch)]
    targets = [img * 3 for img in images]  # target = 3 * input, both uint8 RGB
    return images, targets


def as_chw(images):
    return torch.stack([torch.from_numpy(img).permute(2, 0, 1).float() for img in images])


def test_training_gives_rgb_in_unit_range_for_input_and_target():
    images, targets = rgb_batch()
    data = LowLightDataPreprocessor()(packed_batch(images, targets), training=True)
    torch.testing.assert_close(data['inputs'], as_chw(images) / 255)
    torch.testing.assert_close(data['data_samples'].gt_img, as_chw(targets) / 255)


def test_test_mode_hands_bgr_0_255_to_the_metrics():
    """mmagic's rule, pinned here: in test mode the GT is converted to BGR and stays uint8, and
    destruct() turns the RGB prediction into BGR [0, 255], so metrics see both in BGR."""
    images, targets = rgb_batch(batch=1)
    preprocessor = LowLightDataPreprocessor()
    data = preprocessor(packed_batch(images, targets), training=False)
    torch.testing.assert_close(data['inputs'], as_chw(images) / 255)  # model input: RGB [0, 1]
    gt = data['data_samples'].gt_img
    assert gt.dtype == torch.uint8  # left as loaded: mmagic's metrics convert it themselves
    torch.testing.assert_close(gt.float(), as_chw(targets).flip(1))
    prediction = data['inputs']  # an identity "model"
    destructed = preprocessor.destruct(prediction, data['data_samples'])
    torch.testing.assert_close(destructed, as_chw(images).flip(1))


def test_mixup_only_in_training_and_pairs_stay_aligned():
    images, targets = rgb_batch(batch=6)
    preprocessor = LowLightDataPreprocessor(
        batch_augments=dict(type='PairedMixup', prob=1.0, alpha=1.2))
    torch.manual_seed(0)
    data = preprocessor(packed_batch(images, targets), training=True)
    inputs, gt = data['inputs'], data['data_samples'].gt_img
    assert not torch.allclose(inputs, as_chw(images) / 255)  # mixed
    torch.testing.assert_close(gt, 3 * inputs)  # still target = 3 * input, sample by sample
    data = preprocessor(packed_batch(images, targets), training=False)
    torch.testing.assert_close(data['inputs'], as_chw(images) / 255)  # no mixup at test time


def test_no_batch_augments_by_default():
    assert LowLightDataPreprocessor().batch_augments is None


def test_padding_is_refused():
    with pytest.raises(ValueError, match='pad_size_divisor=1'):
        LowLightDataPreprocessor(pad_size_divisor=4)
