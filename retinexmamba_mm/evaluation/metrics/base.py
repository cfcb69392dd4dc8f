"""What every low-light metric shares: reading MMagic's data samples and the GT-mean option."""
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmagic.evaluation.metrics.base_sample_wise_metric import BaseSampleWiseMetric
from mmengine.dist import get_world_size

from .functional import check_gray_weights, gt_mean_align


class LowLightMetric(BaseSampleWiseMetric):
    """Base class of the low-light metrics: one score per image, averaged over images.

    What arrives from MMagic (``BaseEditModel`` + ``DataPreprocessor`` under ``MultiValLoop`` /
    ``MultiTestLoop``), per data sample:

    - ``output.pred_img``: float CHW in [0, 255], **BGR**, unpadded and clamped
      (``DataPreprocessor.destruct`` un-normalises and converts to BGR);
    - ``gt_img``: uint8 CHW in [0, 255], in the order named by the metainfo key
      ``gt_img_output_channel_order`` (the preprocessor converts it to BGR in test mode; BGR is
      also MMagic's convention when the key is absent).

    Both are turned into float64 HWC **RGB** in [0, 1]; the prediction is clamped to [0, 1] (the
    authors clamp the network output). With ``gt_mean=True`` the prediction is then scaled so its
    mean gray level matches the target's (see :func:`~.functional.gt_mean_align`) and the metric
    is reported under ``<NAME>_GTmean``.

    Args:
        gt_mean (bool): Apply the GT-mean brightness alignment first. Defaults to False.
        gray_weights (str): Gray weights of the GT-mean alignment: ``'bt601'`` (correct RGB
            weights 0.299 R + 0.587 G + 0.114 B) or ``'authors'`` (0.114 R + 0.587 G + 0.299 B,
            what the authors' script computes by applying OpenCV's BGR2GRAY to RGB arrays; use it
            only to reproduce their GT-mean numbers). Defaults to ``'bt601'``.
        gt_key (str): Key of the target in a data sample. Defaults to ``'gt_img'``.
        pred_key (str): Key of the prediction in ``data_sample['output']``.
            Defaults to ``'pred_img'``.
        collect_device (str): Device for collecting results across ranks. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the reported key (``'<prefix>/<NAME>'``); then
            ``save_best`` must name the prefixed key. Defaults to None.
    """

    metric = None  # base name of the reported key, set by each subclass
    default_prefix = ''  # bare keys ('PSNR') like MMagic's metrics, without mmengine's warning

    def __init__(self,
                 gt_mean: bool = False,
                 gray_weights: str = 'bt601',
                 gt_key: str = 'gt_img',
                 pred_key: str = 'pred_img',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        check_gray_weights(gray_weights)
        super().__init__(gt_key=gt_key, pred_key=pred_key, collect_device=collect_device,
                         prefix=prefix)
        self.gt_mean = gt_mean
        self.gray_weights = gray_weights
        if gt_mean:
            self.metric = f'{self.metric}_GTmean'

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        """The metric of one image pair (float64 HWC RGB in [0, 1])."""
        raise NotImplementedError

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for data_sample in data_samples:
            pred, gt = self._rgb_pair(data_sample)
            if self.gt_mean:
                pred = gt_mean_align(pred, gt, self.gray_weights)
            self.results.append({self.metric: self.score(pred, gt)})

    def compute_metrics(self, results: List[dict]) -> dict:
        return {self.metric: float(np.mean([r[self.metric] for r in results]))}

    def evaluate(self) -> dict:
        if not self.results:
            raise RuntimeError(
                f'{type(self).__name__}: no image was evaluated, so there is no {self.metric} to '
                'report (instead of a meaningless nan). The val/test dataloader yielded no '
                'samples: check data_root and data_prefix of its dataset in the config, and '
                'that the folders hold paired images.')
        size = getattr(self, 'size', None)  # set by prepare(), which MultiVal/TestLoop call
        if size is None:
            if get_world_size() > 1:
                raise RuntimeError(f'{type(self).__name__}.prepare() was not called; in '
                                   'distributed evaluation it must be, to drop padded samples.')
            size = len(self.results)
        return super(BaseSampleWiseMetric, self).evaluate(size)

    def _rgb_pair(self, data_sample: dict):
        if self.gt_key not in data_sample:
            raise KeyError(f'{type(self).__name__}: the data sample has no target '
                           f'{self.gt_key!r}; keys: {sorted(data_sample)}')
        output = data_sample.get('output', {})
        if self.pred_key not in output:
            raise KeyError(f'{type(self).__name__}: the model output has no {self.pred_key!r}; '
                           f'keys of data_sample["output"]: {sorted(output)}')
        gt_order = str(data_sample.get(f'{self.gt_key}_output_channel_order', 'BGR')).upper()
        gt = _to_rgb_hwc(data_sample[self.gt_key], gt_order, self.gt_key) / 255.0
        pred = _to_rgb_hwc(output[self.pred_key], 'BGR', self.pred_key) / 255.0
        if pred.shape != gt.shape:
            raise ValueError(f'{type(self).__name__}: prediction {pred.shape} and target '
                             f'{gt.shape} differ in shape (HWC)')
        return np.clip(pred, 0.0, 1.0), gt


def _to_rgb_hwc(img, channel_order: str, key: str) -> np.ndarray:
    """CHW tensor/array in [0, 255] with the given channel order -> float64 HWC RGB."""
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu().numpy()
    img = np.asarray(img, dtype=np.float64)
    if img.ndim != 3 or img.shape[0] != 3:
        raise ValueError(f'{key!r} must be a 3-channel CHW image, got shape {img.shape}')
    if channel_order not in ('RGB', 'BGR'):
        raise ValueError(f'{key!r} has channel order {channel_order!r}; '
                         'low-light metrics need RGB or BGR colour images')
    img = img.transpose(1, 2, 0)
    return img[..., ::-1] if channel_order == 'BGR' else img
