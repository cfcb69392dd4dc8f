"""MMagic's DataPreprocessor plus optional batch augments (mixup) in training."""
from typing import Optional, Sequence

import torch
from mmagic.models.data_preprocessors import DataPreprocessor
from mmagic.registry import MODELS
from mmagic.structures import DataSample


@MODELS.register_module()
class LowLightDataPreprocessor(DataPreprocessor):
    """Normalise RGB uint8 batches to [0, 1] and, in training only, apply ``batch_augments``.

    Everything else is MMagic's ``DataPreprocessor`` unchanged, including what reaches the
    model and the metrics when images are loaded as RGB (``LoadRGBImageFromFile``):

    - the generator receives RGB in [0, 1] (``output_channel_order=None`` keeps the loaded
      order), and in training the target ``gt_img`` is RGB in [0, 1] too;
    - in test/val the target stays in [0, 255] and is converted to BGR, and ``destruct``
      turns the prediction (and the destructed input) from RGB to BGR in [0, 255]: metrics
      receive ``pred_img`` and ``gt_img`` both in BGR order.

    Padding stays off (``pad_size_divisor=1``): RetinexMamba reflect-pads to a multiple of 4
    and crops back inside its forward, and MMagic's own ``pad_mode='reflect'`` fails on the
    list path anyway.

    The batch augment runs after normalisation on the stacked batch (``inputs`` and
    ``data_samples.gt_img``), the mmpretrain way of keeping batch tricks out of the dataset.

    Args:
        mean (Sequence[float]): Per-channel mean subtracted. Defaults to ``(0, 0, 0)``.
        std (Sequence[float]): Per-channel divisor. Defaults to ``(255, 255, 255)``.
        batch_augments (dict, optional): Config of a callable
            ``(inputs, targets) -> (inputs, targets)`` built from MODELS, e.g.
            ``dict(type='PairedMixup', prob=0.5, alpha=1.2)``. None (default): no augment.
        **kwargs: Other arguments of MMagic's ``DataPreprocessor``.
    """

    def __init__(self,
                 mean: Sequence[float] = (0., 0., 0.),
                 std: Sequence[float] = (255., 255., 255.),
                 batch_augments: Optional[dict] = None,
                 **kwargs):
        if kwargs.get('pad_size_divisor', 1) != 1:
            raise ValueError(
                'LowLightDataPreprocessor keeps pad_size_divisor=1: RetinexMamba pads inputs to '
                'a multiple of 4 (reflect) and crops back itself, got '
                f'pad_size_divisor={kwargs["pad_size_divisor"]}')
        super().__init__(mean=list(mean), std=list(std), **kwargs)
        self.batch_augments = MODELS.build(batch_augments) if batch_augments else None

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if not training or self.batch_augments is None:
            return data
        inputs, samples = data['inputs'], data['data_samples']
        if not isinstance(inputs, torch.Tensor) or not isinstance(samples, DataSample):
            raise TypeError('batch_augments need a stacked batch: inputs as one tensor and '
                            'data_samples as one DataSample (stack_data_sample=True), got '
                            f'{type(inputs).__name__} and {type(samples).__name__}')
        if 'gt_img' not in samples:
            raise KeyError('batch_augments mix inputs with targets, but the data samples '
                           "carry no 'gt_img' (pack the 'gt' key in the pipeline)")
        data['inputs'], mixed_targets = self.batch_augments(inputs, samples.gt_img)
        samples.set_data(dict(gt_img=mixed_targets))
        return data
