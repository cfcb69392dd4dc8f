"""Data samples shaped exactly as MMagic hands them to metrics in MultiValLoop/MultiTestLoop."""
from pathlib import Path

import numpy as np
import pytest
import torch

LOL_V1_TEST = Path(__file__).resolve().parents[2].parent / 'shared' / 'data' / 'LOLv1' / 'Test'


def _sample(pred_rgb255, gt_rgb_u8):
    """One evaluated sample: ``gt_img`` uint8 CHW BGR with the channel-order metainfo that
    DataPreprocessor records in test mode, ``output.pred_img`` float32 CHW BGR in [0, 255] (what
    ``destruct`` returns), converted with ``to_dict()`` as mmagic's Evaluator does."""
    from mmagic.structures import DataSample

    def chw_bgr(img):
        return torch.from_numpy(np.ascontiguousarray(np.asarray(img)[..., ::-1].transpose(2, 0, 1)))

    gt = np.asarray(gt_rgb_u8)
    assert gt.dtype == np.uint8
    sample = DataSample(gt_img=chw_bgr(gt), metainfo=dict(gt_img_output_channel_order='BGR'))
    sample.output = DataSample(pred_img=chw_bgr(np.asarray(pred_rgb255, np.float32)))
    return sample.to_dict()


@pytest.fixture
def make_sample():
    return _sample


@pytest.fixture
def lol_v1_test():
    if not (LOL_V1_TEST / 'input').is_dir() or not (LOL_V1_TEST / 'target').is_dir():
        pytest.skip(f'LOL-v1 test pairs not found at {LOL_V1_TEST} (the repo expects the shared '
                    'data next to it: ../shared/data/LOLv1/Test/{input,target})')
    return LOL_V1_TEST
