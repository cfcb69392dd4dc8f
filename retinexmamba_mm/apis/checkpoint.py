"""Checkpoints of either layout: ours (mmengine) and the authors' BasicSR .pth files."""
import os
import os.path as osp

import torch

from ..models.official import convert_official_state_dict, is_official_checkpoint
from ..utils import get_logger


def _read(path):
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:  # weights_only keeps arbitrary pickles out; compat allow-lists mmengine's own types
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise ValueError(f'cannot read checkpoint {path}: {error}') from error


def generator_state_dict(path):
    """The backbone's state dict (our key layout) from a checkpoint of either layout."""
    checkpoint = _read(path)
    if is_official_checkpoint(checkpoint):
        get_logger().info(f'{path}: the authors\' layout; converting it')
        return convert_official_state_dict(checkpoint)
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{path}: expected an mmengine checkpoint (a dict with "state_dict") or '
                         'the authors\' .pth (a dict with "params"); got something else')
    prefix = 'generator.'
    generator = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not generator:
        raise ValueError(f'{path}: no "generator.*" weights in its state_dict; keys start with '
                         f'{sorted({k.split(".")[0] for k in state})}')
    return generator


def as_mmengine_checkpoint(path, work_dir):
    """Return a checkpoint path that mmengine's ``load_from`` accepts.

    Our checkpoints are returned as they are; an authors' .pth is converted once into
    ``work_dir/converted_<name>.pth`` (logged), so ``tools/test.py`` takes either file.
    """
    checkpoint = _read(path)
    if not is_official_checkpoint(checkpoint):
        return path
    os.makedirs(work_dir, exist_ok=True)
    out = osp.join(work_dir, 'converted_' + osp.basename(path))
    state = {'generator.' + k: v for k, v in convert_official_state_dict(checkpoint).items()}
    torch.save({'meta': {'converted_from': osp.abspath(path)}, 'state_dict': state}, out)
    get_logger().info(f'{path}: the authors\' layout; converted to {out}')
    return out
