"""Saves every test output as an image file (``tools/test.py --save-images DIR``)."""
import os
import os.path as osp

import cv2
import numpy as np
from mmagic.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class SaveEnhancedImagesHook(Hook):
    """Write ``pred_img`` of each test sample as 8-bit PNG ``<out_dir>/<input name>.png``.

    The prediction is the model output clamped to [0, 255] (what the metrics see), rounded to
    uint8. MMagic's ``destruct`` hands it over in BGR order, which is what OpenCV writes.
    """

    priority = 'LOW'

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        os.makedirs(self.out_dir, exist_ok=True)
        for sample in outputs:
            image = sample.output.pred_img
            image = image.data if hasattr(image, 'data') else image
            array = image.detach().cpu().numpy().transpose(1, 2, 0)
            array = np.clip(np.round(array), 0, 255).astype(np.uint8)
            name = osp.splitext(osp.basename(sample.metainfo.get('img_path', f'{batch_idx}')))[0]
            cv2.imwrite(osp.join(self.out_dir, name + '.png'), array)
