"""The ``cpu`` backend: the scan's forward as one compiled C walk (``cpu_kernels.c``).

The kernel is compiled at first use with the machine's C compiler (``$CC``, else ``cc``;
``-O3 -march=native``) into a per-user cache (``$RETINEXMAMBA_CACHE_DIR``, else
``~/.cache/retinexmamba_mm``), keyed by the source, the compiler and the CPU, and loaded with
ctypes: no build step at install time, and a machine without a compiler simply does not have
this backend (``auto`` then uses ``torch``; asking for ``cpu`` by name says why it is missing).

Forward only: with gradients wanted, the backward is the torch backend's, which recomputes the
forward (so ``auto`` picks ``torch`` for training on the CPU). Inputs of any float dtype are
computed in fp32 and returned in the input's dtype. It runs on as many threads as torch does.
"""
import ctypes
import functools
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from ...utils import log_once
from . import torch_scan
from .dispatch import needs_grad

__all__ = ['is_available', 'unavailable_reason', 'selective_scan', 'cross_selective_scan']

# SS2D hands over channels-last maps and pixel-major projections, which the walks read in place.
prefers_channels_last = True

_SOURCE = Path(__file__).with_name('cpu_kernels.c')
_FLAGS = ('-O3', '-march=native', '-fPIC', '-shared', '-pthread')
_TENSORS = 5                      # delta, u, B, C, y: the order of cpu_kernels.c's arrays
_MAX_DIRECTIONS = 64
_LOG2E = 1.0 / math.log(2.0)

_Five = ctypes.c_int64 * _TENSORS


class _Geometry(ctypes.Structure):
    """``struct geometry`` of cpu_kernels.c: where a direction's positions lie."""
    _fields_ = [('lines', ctypes.c_int64), ('steps', ctypes.c_int64), ('offset', _Five),
                ('line_stride', _Five), ('step_stride', _Five)]


class _Args(ctypes.Structure):
    """``struct args`` of cpu_kernels.c."""
    _fields_ = [('batch', ctypes.c_int64), ('channels', ctypes.c_int64),
                ('state', ctypes.c_int64), ('directions', ctypes.c_int64),
                ('threads', ctypes.c_int64),
                ('delta', ctypes.c_void_p), ('u', ctypes.c_void_p), ('B', ctypes.c_void_p),
                ('C', ctypes.c_void_p), ('y', ctypes.c_void_p), ('a2', ctypes.c_void_p),
                ('delta_bias', ctypes.c_void_p), ('softplus', ctypes.c_int64),
                ('batch_stride', _Five), ('state_stride', ctypes.c_int64 * 2),
                ('geometry', ctypes.POINTER(_Geometry))]


# ------------------------------------------------------------------------------ compilation
def _compiler():
    return os.environ.get('CC') or 'cc'


def _cache_dir():
    root = os.environ.get('RETINEXMAMBA_CACHE_DIR') or Path.home() / '.cache' / 'retinexmamba_mm'
    return Path(root)


def _cpu_signature():
    """What -march=native depends on: the CPU model and its feature flags."""
    try:
        info = Path('/proc/cpuinfo').read_text()
    except OSError:
        return platform.processor()
    keys = ('model name', 'flags', 'Features', 'CPU part')
    return '\n'.join(sorted({line for line in info.splitlines() if line.startswith(keys)}))


def _compile(target):
    """Build the shared library at ``target`` (atomically: parallel processes may race)."""
    compiler = shutil.which(_compiler())
    if compiler is None:
        raise OSError(f'no C compiler: {_compiler()!r} is not on PATH (install gcc or set CC)')
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / target.name
        command = [compiler, *_FLAGS, str(_SOURCE), '-o', str(built)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            raise OSError(f'compiling {_SOURCE.name} failed ({" ".join(command)}):\n'
                          f'{result.stderr.strip()}')
        os.replace(built, target)


_load_error = None


@functools.cache
def _library():
    """The compiled kernel (ctypes), or None when it cannot be built here (reason kept)."""
    global _load_error
    key = hashlib.sha256('\0'.join((_SOURCE.read_text(), _compiler(), ' '.join(_FLAGS),
                                    platform.machine(), _cpu_signature())).encode())
    target = _cache_dir() / f'cpu_kernels-{key.hexdigest()[:16]}.so'
    try:
        if not target.exists():
            logging.getLogger(__name__).info('compiling the cpu scan kernel into %s', target)
            _compile(target)
        library = ctypes.CDLL(str(target))
    except OSError as error:
        _load_error = str(error)
        return None
    library.retinexmamba_scan_forward.argtypes = [ctypes.POINTER(_Args)]
    library.retinexmamba_scan_forward.restype = ctypes.c_int
    return library


def is_available():
    return _library() is not None


def unavailable_reason():
    _library()
    return f'its C kernel could not be built: {_load_error}'


# ------------------------------------------------------------------------------ the call
def _geometry(offsets, line_strides, step_strides, lines, steps):
    return _Geometry(lines, steps, _Five(*offsets), _Five(*line_strides), _Five(*step_strides))


def _run(delta, u, B, C, y, a2, bias, softplus, geometries, batch_strides, state_strides):
    """y += the scan of every direction (in place). All tensors fp32 on the CPU; channels
    contiguous in delta, u, y; a2 (directions, N, channels) and bias (directions, channels) or
    None contiguous. The kernel adds the bias to delta and applies softplus itself."""
    directions, state, channels = a2.shape
    if directions > _MAX_DIRECTIONS:
        raise ValueError(f'the cpu scan backend takes at most {_MAX_DIRECTIONS} groups (K), '
                         f'got {directions}; use backend="torch"')
    table = (_Geometry * directions)(*geometries)
    args = _Args(y.shape[0], channels, state, directions, torch.get_num_threads(),
                 delta.data_ptr(), u.data_ptr(), B.data_ptr(), C.data_ptr(), y.data_ptr(),
                 a2.data_ptr(), None if bias is None else bias.data_ptr(), int(softplus),
                 _Five(*batch_strides), (ctypes.c_int64 * 2)(*state_strides),
                 table)
    if _library().retinexmamba_scan_forward(ctypes.byref(args)):
        raise ValueError(f'cpu scan kernel rejected its arguments (batch {args.batch}, '
                         f'channels {channels}, states {state}, directions {directions})')


def _base2(A, groups):
    """A (K*D, N) -> (K, N, D) contiguous fp32, times log2(e)."""
    return (A.float() * _LOG2E).view(groups, -1, A.shape[-1]).transpose(1, 2).contiguous()


def _bias(delta_bias, groups):
    return None if delta_bias is None else delta_bias.float().view(groups, -1).contiguous()


def _forward_flat(u, delta, A, B, C, D, delta_bias, delta_softplus):
    batch, kd, length = u.shape
    groups, state = B.shape[1:3]
    channels = kd // groups
    # time-major copies, so a step's channels are contiguous; B and C are read in place
    steps_t, u_t = (t.float().transpose(1, 2).contiguous() for t in (delta, u))  # (b, L, K*D)
    y = torch.zeros_like(u_t) if D is None else u_t * D.float()
    B, C = _states_inner(B), _states_inner(C)
    geometries = [_geometry([k * channels, k * channels, k * B.stride(1), k * C.stride(1),
                             k * channels], [0] * _TENSORS,
                            [kd, kd, B.stride(3), C.stride(3), kd], 1, length)
                  for k in range(groups)]
    _run(steps_t, u_t, B, C, y, _base2(A, groups), _bias(delta_bias, groups), delta_softplus,
         geometries,
         [length * kd, length * kd, B.stride(0), C.stride(0), length * kd],
         [B.stride(2), C.stride(2)])
    return y.transpose(1, 2).contiguous().to(u.dtype)


def _states_inner(t):
    """B or C (b, K, N, ...) in fp32 with the state axis contiguous: a step reads its N values
    from one cache line instead of N lines far apart (the kernel accepts any strides)."""
    t = t.float()
    return t if t.stride(2) == 1 else t.movedim(2, -1).contiguous().movedim(-1, 2)


def _pixel_major(t):
    """(b, c, H, W) (or (b, 4, c, H, W)) with the channel axis contiguous: a view where the
    memory already is, else a channels-last copy."""
    if t.stride(-3) == 1:
        return t
    order = (0, 2, 3, 1) if t.dim() == 4 else (0, 3, 4, 1, 2)
    return t.permute(order).contiguous().permute(
        (0, 3, 1, 2) if t.dim() == 4 else (0, 3, 4, 1, 2))


def _directions(height, width, strides):
    """SS2D's four reading orders as geometries over (H, W) maps with the given per-tensor
    (row, column) strides: 0 row-major, 1 column-major, 2 and 3 their reverses (from the last
    pixel backwards)."""
    rows = [s[0] for s in strides]
    cols = [s[1] for s in strides]
    last = [(height - 1) * r + (width - 1) * c for r, c in zip(rows, cols)]
    zero = [0] * _TENSORS
    negate = lambda values: [-v for v in values]   # noqa: E731
    return [_geometry(zero, rows, cols, height, width),
            _geometry(zero, cols, rows, width, height),
            _geometry(last, negate(rows), negate(cols), height, width),
            _geometry(last, negate(cols), negate(rows), width, height)]


def _forward_cross(x, delta, A, B, C, D, delta_bias, delta_softplus):
    batch, channels, height, width = x.shape
    x32 = _pixel_major(x.float())
    steps = _pixel_major(delta.float())
    B, C = _states_inner(B), _states_inner(C)
    # every direction's D term multiplies x at its own pixel: y starts as x * sum_k D_k
    dsum = x32.new_zeros(channels) if D is None else D.float().view(4, channels).sum(0)
    y = x32.new_empty(batch, height, width, channels)
    torch.mul(x32.permute(0, 2, 3, 1), dsum, out=y)
    y_map = y.permute(0, 3, 1, 2)
    geometries = _directions(height, width, [(t.stride(-2), t.stride(-1))
                                             for t in (steps, x32, B, C, y_map)])
    # direction k's delta, B and C start k slices further in
    for k, geometry in enumerate(geometries):
        for index, t in ((0, steps), (2, B), (3, C)):
            geometry.offset[index] += k * t.stride(1)
    _run(steps, x32, B, C, y, _base2(A, 4), _bias(delta_bias, 4), delta_softplus, geometries,
         [steps.stride(0), x32.stride(0), B.stride(0), C.stride(0), y_map.stride(0)],
         [B.stride(2), C.stride(2)])
    return y_map.to(x.dtype)


def _checked_cpu(*tensors):
    for t in tensors:
        if t is not None and t.device.type != 'cpu':
            raise ValueError(f'the cpu scan backend takes CPU tensors, got {t.device}')


class _Recompute(torch.autograd.Function):
    """Forward by the C kernel; backward by the torch backend, which recomputes its forward."""

    @staticmethod
    def forward(ctx, kernel, reference, *inputs):
        ctx.reference = reference
        ctx.save_for_backward(*(t for t in inputs if isinstance(t, torch.Tensor)))
        ctx.layout = [isinstance(t, torch.Tensor) for t in inputs]
        ctx.flags = [t for t in inputs if not isinstance(t, torch.Tensor)]
        return kernel(*inputs)

    @staticmethod
    def backward(ctx, grad):
        saved, flags = iter(ctx.saved_tensors), iter(ctx.flags)
        inputs = [next(saved).detach().requires_grad_(ctx.needs_input_grad[i + 2])
                  if is_tensor else next(flags) for i, is_tensor in enumerate(ctx.layout)]
        with torch.enable_grad():
            out = ctx.reference(*inputs)
        wanted = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
        grads = iter(torch.autograd.grad(out, wanted, grad))
        return (None, None, *(next(grads) if isinstance(t, torch.Tensor) and t.requires_grad
                              else None for t in inputs))


def _call(kernel, reference, *inputs):
    _checked_cpu(*(t for t in inputs if isinstance(t, torch.Tensor)))
    if needs_grad(*(t for t in inputs if isinstance(t, torch.Tensor))):
        log_once('cpu_scan.backward', 'cpu scan backend: gradients come from the torch '
                 'backend, which recomputes the forward (backend="auto" uses torch for training)')
        return _Recompute.apply(kernel, reference, *inputs)
    with torch.no_grad():
        return kernel(*inputs)


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    return _call(_forward_flat, torch_scan.selective_scan, u, delta, A, B, C, D, delta_bias,
                 delta_softplus)


def cross_selective_scan(x, delta, A, B, C, D, delta_bias, delta_softplus=True):
    return _call(_forward_cross, torch_scan.cross_selective_scan, x, delta, A, B, C, D,
                 delta_bias, delta_softplus)
