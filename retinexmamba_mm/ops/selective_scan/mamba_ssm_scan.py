"""The ``mamba_ssm`` backend: the CUDA kernel ``selective_scan_fn`` of the mamba_ssm package.

This is the kernel the authors call. mamba_ssm is imported on first use only (it imports its
CUDA extension unconditionally, so importing it on a CPU-only machine fails). Only CUDA tensors.
``cross_selective_scan`` builds the four direction copies the authors' way (row-major, column-
major and their reverses, stacked as K=4 groups), runs one grouped scan, and merges back.
"""
import functools

import torch

__all__ = ['is_available', 'unavailable_reason', 'selective_scan', 'cross_selective_scan']

_import_error = None


@functools.cache
def _kernel():
    """mamba_ssm's ``selective_scan_fn``, or None when it does not import (reason kept). Tried
    once per process: a failed import is not retried on every SS2D call."""
    global _import_error
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except (ImportError, OSError) as error:  # OSError: a CUDA library that does not load
        _import_error = f'{type(error).__name__}: {error}'
        return None
    return selective_scan_fn


def is_available():
    return torch.cuda.is_available() and _kernel() is not None


def unavailable_reason():
    if not torch.cuda.is_available():
        return 'no CUDA device is visible to torch'
    _kernel()
    return f'mamba_ssm does not import ({_import_error})'


def _check_cuda(*tensors):
    for t in tensors:
        if t is not None and t.device.type != 'cuda':
            raise ValueError(f'mamba_ssm scan backend: tensors must be on a CUDA device, got '
                             f'{t.device}; use backend="torch" for CPU tensors.')


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """Contract layout, passed to the kernel as is (it takes grouped B and C, (b, K, N, L))."""
    _check_cuda(u, delta, A, B, C, D, delta_bias)
    kernel = _kernel()
    y = kernel(u.contiguous(), delta.contiguous(), A.float().contiguous(), B.contiguous(),
               C.contiguous(), None if D is None else D.float().contiguous(), z=None,
               delta_bias=None if delta_bias is None else delta_bias.float().contiguous(),
               delta_softplus=delta_softplus, return_last_state=False)
    return y.to(u.dtype)


def _directions(t):
    """(b, 4, c, H, W) per-direction maps -> (b, 4, c, H*W) in each direction's scan order."""
    rows = t[:, 0::2].flatten(3)                        # directions 0 and 2 read rows
    cols = t[:, 1::2].transpose(3, 4).flatten(3)        # directions 1 and 3 read columns
    seq = torch.stack([rows[:, 0], cols[:, 0], rows[:, 1].flip(-1), cols[:, 1].flip(-1)], 1)
    return seq.contiguous()


def cross_selective_scan(x, delta, A, B, C, D, delta_bias, delta_softplus=True):
    """The authors' SS2D core: 4 copies of x, one scan over 4*D channels, copies merged back."""
    _check_cuda(x, delta, A, B, C, D, delta_bias)
    batch, channels, height, width = x.shape
    length = height * width
    xs = _directions(x.float().unsqueeze(1).expand(-1, 4, -1, -1, -1))
    dts = _directions(delta.float())
    bs = _directions(B.float())
    cs = _directions(C.float())
    y = selective_scan(xs.view(batch, 4 * channels, length), dts.view(batch, 4 * channels, length),
                       A, bs, cs, D, delta_bias, delta_softplus).view(batch, 4, channels, length)
    y = y[:, 0:2] + y[:, 2:4].flip(-1)                   # undo the reversal of directions 2, 3
    rows = y[:, 0].view(batch, channels, height, width)
    cols = y[:, 1].view(batch, channels, width, height).transpose(2, 3)
    return (rows + cols).to(x.dtype)
