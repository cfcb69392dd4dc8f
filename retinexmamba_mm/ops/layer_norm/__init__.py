"""LayerNorm over the last axis (``F.layer_norm(x, (C,), weight, bias, eps)``), with backends.

The model normalises (B, H, W, C) maps over C = 40-320 channels: at 400x600, 240,000 rows of 40.
PyTorch's CUDA kernel gives each row its own thread block and moves ~0.5 TB/s there (40 calls,
5.9 ms of a 43.6 ms forward on an H100). Backends, one contract:

* ``torch``: ``F.layer_norm``, the reference; any device.
* ``triton``: a block of rows per program, forward and backward (CUDA).

``auto`` picks triton for CUDA tensors when it is installed, torch otherwise, and logs its choice
once. Asking for triton where it cannot run raises ``BackendUnavailable``. The model's layers
call it with ``backend=None``: the environment variable ``RETINEXMAMBA_LAYER_NORM`` (auto, torch
or triton; default auto) chooses, e.g. ``torch`` for a pure-PyTorch reference run on a GPU.
"""
import os

import torch.nn.functional as F

from ...utils import log_once
from ..selective_scan import BackendUnavailable, triton_scan

BACKENDS = ('torch', 'triton')
ENV_VAR = 'RETINEXMAMBA_LAYER_NORM'


def layer_norm(x, weight, bias, eps=1e-5, backend=None):
    """Normalise ``x`` over its last axis, then scale by ``weight`` and shift by ``bias``.

    ``backend``: 'auto', 'torch', 'triton', or None for ``$RETINEXMAMBA_LAYER_NORM`` (or auto).
    """
    if backend is None:
        backend = os.environ.get(ENV_VAR, 'auto')
    name = resolve_layer_norm_backend(backend, x.device)
    if name == 'torch':
        return F.layer_norm(x, weight.shape, weight, bias, eps)
    from .triton_layer_norm import layer_norm as triton_layer_norm
    return triton_layer_norm(x, weight, bias, eps)


def resolve_layer_norm_backend(backend, device):
    """The backend name that runs for ``backend`` ('auto' or a name) on ``device``."""
    if backend not in ('auto', *BACKENDS):
        raise ValueError(f'unknown layer-norm backend {backend!r} (argument or ${ENV_VAR}); '
                         f"choose one of {['auto', *BACKENDS]}")
    usable = device.type == 'cuda' and triton_scan.is_available()   # triton imports, CUDA
    if backend == 'triton' and not usable:
        raise BackendUnavailable(
            'layer-norm backend "triton" is unavailable: it needs CUDA tensors and triton '
            f'(pip install triton); got {device} tensors. Use backend="torch" or "auto".')
    name = backend if backend != 'auto' else ('triton' if usable else 'torch')
    log_once(('layer_norm', name, device.type),
             f'layer norm: backend "{name}" for {device.type} tensors (backend="{backend}")')
    return name


__all__ = ['BACKENDS', 'ENV_VAR', 'layer_norm', 'resolve_layer_norm_backend']
