"""The ``cpu`` backend: the scan's forward and backward as compiled C walks (``cpu_kernels.c``).

The kernels are compiled at first use with the machine's C compiler (``$CC``, else ``cc``;
``-O3 -march=native``) into a per-user cache (``$RETINEXMAMBA_CACHE_DIR``, else
``~/.cache/retinexmamba_mm``), keyed by the source, the compiler and the CPU, and loaded with
ctypes: no build step at install time, and a machine without a compiler simply does not have
this backend (``auto`` then uses ``torch``; asking for ``cpu`` by name says why it is missing).

Inputs are read in place where their layout allows (SS2D's channels-last maps and pixel-major
projections, the contract's (b, K*D, L)); any float dtype is computed in fp32 and returned in
the input's dtype. The D term and the reductions of the bias's and D's gradients are PyTorch
ops. It runs on as many threads as torch does.
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
from .dispatch import needs_grad

__all__ = ['is_available', 'unavailable_reason', 'selective_scan', 'cross_selective_scan']

# SS2D hands over channels-last maps and pixel-major projections, which the walks read in place.
prefers_channels_last = True

_SOURCE = Path(__file__).with_name('cpu_kernels.c')
_FLAGS = ('-O3', '-march=native', '-fPIC', '-shared', '-pthread')
# Compilers that do not know -march=native for their target (some clang builds) get plain -O3.
_PORTABLE_FLAGS = tuple(flag for flag in _FLAGS if flag != '-march=native')
# The kernels' tensors, in the order of cpu_kernels.c's arrays.
_TENSORS = ('delta', 'u', 'B', 'C', 'y', 'd_delta', 'd_u', 'd_B', 'd_C', 'd_y')
_MAX_DIRECTIONS = 64
_LOG2E = 1.0 / math.log(2.0)

_PerTensor = ctypes.c_int64 * len(_TENSORS)


class _Geometry(ctypes.Structure):
    """``struct geometry`` of cpu_kernels.c: where a direction's positions lie."""
    _fields_ = [('lines', ctypes.c_int64), ('steps', ctypes.c_int64), ('offset', _PerTensor),
                ('line_stride', _PerTensor), ('step_stride', _PerTensor)]


class _Args(ctypes.Structure):
    """``struct args`` of cpu_kernels.c."""
    _fields_ = [('batch', ctypes.c_int64), ('channels', ctypes.c_int64),
                ('state', ctypes.c_int64), ('directions', ctypes.c_int64),
                ('threads', ctypes.c_int64), ('data', ctypes.c_void_p * len(_TENSORS)),
                ('batch_stride', _PerTensor), ('inner_stride', _PerTensor),
                ('a2', ctypes.c_void_p),
                ('delta_bias', ctypes.c_void_p), ('softplus', ctypes.c_int64),
                ('d_A', ctypes.c_void_p), ('geometry', ctypes.POINTER(_Geometry))]


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
        for flags in (_FLAGS, _PORTABLE_FLAGS):
            command = [compiler, *flags, str(_SOURCE), '-o', str(built)]
            result = subprocess.run(command, capture_output=True, text=True)
            if not result.returncode:
                log_once('cpu_scan.flags', f'cpu scan backend: built with {" ".join(flags)}')
                break
        else:
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
            log_once('cpu_scan.compile', f'cpu scan backend: compiling {_SOURCE.name} with '
                     f'{_compiler()} into {target}, once per machine')
            _compile(target)
        library = ctypes.CDLL(str(target))
        _check_layout(library)
    except OSError as error:
        _load_error = str(error)
        log_once('cpu_scan.unavailable', f'cpu scan backend unavailable, backend="auto" uses '
                 f'torch on the CPU: {error}', logging.WARNING)
        return None
    for function in (library.retinexmamba_scan_forward, library.retinexmamba_scan_backward):
        function.argtypes = [ctypes.POINTER(_Args)]
        function.restype = ctypes.c_int
    return library


def _check_layout(library):
    """The structs of cpu_kernels.c and ``_Args``/``_Geometry`` must match field for field;
    their sizes catch an edit of one side only."""
    sizes = library.retinexmamba_struct_sizes
    sizes.argtypes, sizes.restype = [ctypes.POINTER(ctypes.c_int64)], ctypes.c_int64
    geometry = ctypes.c_int64()
    args = sizes(ctypes.byref(geometry))
    if (args, geometry.value) != (ctypes.sizeof(_Args), ctypes.sizeof(_Geometry)):
        raise OSError(f'{_SOURCE.name} and {Path(__file__).name} disagree on the argument '
                      f'layout (struct sizes {args}/{geometry.value}, ctypes '
                      f'{ctypes.sizeof(_Args)}/{ctypes.sizeof(_Geometry)})')


def is_available():
    return _library() is not None


def unavailable_reason():
    _library()
    return f'its C kernel could not be built: {_load_error}'


# ------------------------------------------------------------------------------ the calls
class _Operand:
    """One of the kernel's tensors and its element strides: batch, the channel (or state)
    axis, the offset from one direction to the next, and the sequence axes (L, or H and W)."""

    def __init__(self, tensor=None, inner=0, direction=0, sequence=(0, 0)):
        self.tensor, self.inner, self.direction, self.sequence = tensor, inner, direction, sequence
        self.batch = 0 if tensor is None else tensor.stride(0)


def _flat(t, channels=None):
    """(b, K*D, L) with ``channels`` per group, or (b, K, N, L) (B, C and their gradients)."""
    if channels is None:
        return _Operand(t, t.stride(2), t.stride(1), (t.stride(3), ))
    return _Operand(t, t.stride(1), channels * t.stride(1), (t.stride(2), ))


def _cross(t):
    """(b, 4, D or N, H, W) per direction, or (b, D, H, W) shared by the four."""
    if t.dim() == 4:
        return _Operand(t, t.stride(1), 0, t.stride()[2:])
    return _Operand(t, t.stride(2), t.stride(1), t.stride()[3:])


def _flat_geometry(length, groups):
    """One line of ``length`` steps per group (K); the groups differ only by their offsets."""
    def geometry(operands):
        zero = [0] * len(operands)
        return [(1, length, zero, zero, [o.sequence[0] for o in operands])] * groups
    return geometry


def _cross_geometry(height, width):
    """SS2D's four reading orders over (H, W) maps: 0 row-major, 1 column-major, 2 and 3 their
    reverses (from the last pixel backwards); (lines, steps, first offsets, line strides,
    step strides)."""
    def geometry(operands):
        rows = [o.sequence[0] for o in operands]
        cols = [o.sequence[1] for o in operands]
        last = [(height - 1) * r + (width - 1) * c for r, c in zip(rows, cols)]
        zero = [0] * len(operands)
        return [(height, width, zero, rows, cols), (width, height, zero, cols, rows),
                (height, width, last, [-r for r in rows], [-c for c in cols]),
                (width, height, last, [-c for c in cols], [-r for r in rows])]
    return geometry


def _launch(function, operands, geometry, a2, bias, softplus, d_A=None):
    """Call a kernel: ``operands`` maps names of ``_TENSORS`` to ``_Operand``s (fp32, CPU);
    ``geometry`` gives each direction's (lines, steps, offsets, line strides, step strides)
    without the per-direction offsets, which are added here."""
    operands = [operands.get(name, _Operand()) for name in _TENSORS]
    if operands[_TENSORS.index('u')].tensor.numel() == 0:
        return                                  # nothing to scan; outputs are set up already
    directions, state, channels = a2.shape
    if directions > _MAX_DIRECTIONS:
        raise ValueError(f'the cpu scan backend takes at most {_MAX_DIRECTIONS} groups (K), '
                         f'got {directions}; use backend="torch"')
    table = (_Geometry * directions)(*(
        _Geometry(lines, steps, _PerTensor(*(o + k * op.direction
                                             for o, op in zip(offsets, operands))),
                  _PerTensor(*line_strides), _PerTensor(*step_strides))
        for k, (lines, steps, offsets, line_strides, step_strides)
        in enumerate(geometry(operands))))
    batch = operands[_TENSORS.index('u')].tensor.shape[0]
    args = _Args(batch, channels, state, directions, torch.get_num_threads(),
                 (ctypes.c_void_p * len(_TENSORS))(*(None if o.tensor is None else
                                                     o.tensor.data_ptr() for o in operands)),
                 _PerTensor(*(o.batch for o in operands)),
                 _PerTensor(*(o.inner for o in operands)),
                 a2.data_ptr(), None if bias is None else bias.data_ptr(), int(softplus),
                 None if d_A is None else d_A.data_ptr(), table)
    status = function(ctypes.byref(args))
    if status == -2:
        raise MemoryError('cpu scan backend: out of memory for the backward walk\'s buffers')
    if status:
        raise ValueError(f'cpu scan kernel rejected its arguments (batch {batch}, channels '
                         f'{channels}, states {state}, directions {directions})')


def _base2(A, groups):
    """A (K*D, N) -> (K, N, D) contiguous fp32, times log2(e)."""
    return (A.float() * _LOG2E).view(groups, -1, A.shape[-1]).transpose(1, 2).contiguous()


def _bias(delta_bias, groups):
    return None if delta_bias is None else delta_bias.float().view(groups, -1).contiguous()


def _states_inner(t):
    """B or C (b, K, N, ...) in fp32 with the state axis contiguous: a step reads its N values
    from one cache line instead of N lines far apart (the kernel accepts any strides)."""
    t = t.float()
    return t if t.stride(2) == 1 else t.movedim(2, -1).contiguous().movedim(-1, 2)


def _channels_inner(t):
    """A map (b, c, H, W) or (b, 4, c, H, W) in fp32 with the channel axis contiguous: a view
    where the memory already is, else a channels-last copy."""
    t = t.float()
    return t if t.stride(-3) == 1 else t.movedim(-3, -1).contiguous().movedim(-1, -3)


def _grad_a(d_A):
    """(batch, K, N, D) per-batch gradients -> (K*D, N)."""
    return d_A.sum(0).transpose(1, 2).flatten(0, 1)


def _cast(grads, inputs):
    return tuple(None if g is None or t is None else g.to(t.dtype) for g, t in zip(grads, inputs))


def _zeros_states_inner(t):
    """Zeros shaped like B or C (b, K, N, ...), the state axis contiguous."""
    return t.new_zeros(*t.shape[:2], *t.shape[3:], t.shape[2]).movedim(-1, 2)


def _forward_flat(u, delta, A, B, C, D, delta_bias, delta_softplus):
    """The contract's scan. Inputs are read in place, whatever their strides (channels
    gathered where they are not contiguous: at the contract's (b, K*D, L) that beats transposed
    copies)."""
    groups = B.shape[1]
    channels = u.shape[1] // groups
    u32, delta32, B32, C32 = u.float(), delta.float(), _states_inner(B), _states_inner(C)
    # y in u's memory layout (contiguous for the contract's), so its channels are stored alike
    y = torch.zeros_like(u32) if D is None else u32 * D.float()[:, None]
    _launch(_library().retinexmamba_scan_forward,
            dict(delta=_flat(delta32, channels), u=_flat(u32, channels), B=_flat(B32),
                 C=_flat(C32), y=_flat(y, channels)),
            _flat_geometry(u.shape[-1], groups), _base2(A, groups), _bias(delta_bias, groups),
            delta_softplus)
    return y.to(u.dtype)


def _forward_cross(x, delta, A, B, C, D, delta_bias, delta_softplus):
    """SS2D's four-direction scan on channels-last maps and pixel-major projections (copied
    into those layouts when given otherwise)."""
    batch, channels, height, width = x.shape
    x32, delta32 = _channels_inner(x), _channels_inner(delta)
    B32, C32 = _states_inner(B), _states_inner(C)
    # every direction's D term multiplies x at its own pixel: y starts as x * sum_k D_k
    dsum = x32.new_zeros(channels) if D is None else D.float().view(4, channels).sum(0)
    y = x32.new_empty(batch, height, width, channels)
    torch.mul(x32.permute(0, 2, 3, 1), dsum, out=y)
    y = y.permute(0, 3, 1, 2)
    _launch(_library().retinexmamba_scan_forward,
            dict(delta=_cross(delta32), u=_cross(x32), B=_cross(B32), C=_cross(C32),
                 y=_cross(y)),
            _cross_geometry(height, width), _base2(A, 4), _bias(delta_bias, 4), delta_softplus)
    return y.to(x.dtype)


def _backward_flat(inputs, delta_softplus, grad_y):
    """Gradients of ``_forward_flat``'s inputs (u, delta, A, B, C, D, delta_bias)."""
    u, delta, A, B, C, D, delta_bias = inputs
    groups = B.shape[1]
    channels = u.shape[1] // groups
    u32, delta32, B32, C32 = u.float(), delta.float(), _states_inner(B), _states_inner(C)
    gy = grad_y.float()
    # channels contiguous: the kernel stores a step's channels as vectors
    d_delta, d_u = (u32.new_empty(u.shape[0], u.shape[2], u.shape[1]).transpose(1, 2)
                    for _ in range(2))
    d_B, d_C = _zeros_states_inner(B32), _zeros_states_inner(C32)
    d_A = u32.new_zeros(u.shape[0], groups, A.shape[-1], channels)
    _launch(_library().retinexmamba_scan_backward,
            dict(delta=_flat(delta32, channels), u=_flat(u32, channels), B=_flat(B32),
                 C=_flat(C32), d_delta=_flat(d_delta, channels), d_u=_flat(d_u, channels),
                 d_B=_flat(d_B), d_C=_flat(d_C), d_y=_flat(gy, channels)),
            _flat_geometry(u.shape[-1], groups), _base2(A, groups), _bias(delta_bias, groups),
            delta_softplus, d_A)
    if D is not None:
        d_u += gy * D.float()[:, None]
    grad_D = None if D is None else (gy * u32).sum((0, 2))
    grad_bias = None if delta_bias is None else d_delta.sum((0, 2))
    return d_u, d_delta, _grad_a(d_A), d_B, d_C, grad_D, grad_bias


def _backward_cross(inputs, delta_softplus, grad_y):
    """Gradients of ``_forward_cross``'s inputs (x, delta, A, B, C, D, delta_bias)."""
    x, delta, A, B, C, D, delta_bias = inputs
    batch, channels, height, width = x.shape
    x32, delta32 = _channels_inner(x), _channels_inner(delta)
    B32, C32 = _states_inner(B), _states_inner(C)
    gy = _channels_inner(grad_y)
    d_delta, d_u = torch.empty_like(delta32), torch.empty_like(delta32)   # d_u per direction
    d_B, d_C = _zeros_states_inner(B32), _zeros_states_inner(C32)
    d_A = x32.new_zeros(batch, 4, A.shape[-1], channels)
    _launch(_library().retinexmamba_scan_backward,
            dict(delta=_cross(delta32), u=_cross(x32), B=_cross(B32), C=_cross(C32),
                 d_delta=_cross(d_delta), d_u=_cross(d_u), d_B=_cross(d_B), d_C=_cross(d_C),
                 d_y=_cross(gy)),
            _cross_geometry(height, width), _base2(A, 4), _bias(delta_bias, 4), delta_softplus,
            d_A)
    grad_x = d_u.sum(1)
    grad_D = None
    if D is not None:
        grad_x += gy * D.float().view(4, channels).sum(0)[:, None, None]
        grad_D = (gy * x32).sum((0, 2, 3)).repeat(4)
    grad_bias = None if delta_bias is None else d_delta.sum((0, 3, 4)).flatten()
    return grad_x, d_delta, _grad_a(d_A), d_B, d_C, grad_D, grad_bias


class _Scan(torch.autograd.Function):
    """A forward (``_forward_flat`` or ``_forward_cross``) with its backward kernel. Inputs
    after the two functions: the seven tensors of the contract, then delta_softplus."""

    @staticmethod
    def forward(ctx, forward, backward, *inputs):
        ctx.backward, ctx.delta_softplus = backward, inputs[-1]
        ctx.save_for_backward(*inputs[:-1])
        return forward(*inputs)

    @staticmethod
    def backward(ctx, grad_y):
        inputs = ctx.saved_tensors
        grads = ctx.backward(inputs, ctx.delta_softplus, grad_y)
        return None, None, *_cast(grads, inputs), None


def _call(forward, backward, *inputs):
    tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
    for t in tensors:
        if t.device.type != 'cpu':
            raise ValueError(f'the cpu scan backend takes CPU tensors, got {t.device}')
    if needs_grad(*tensors):
        return _Scan.apply(forward, backward, *inputs)
    return forward(*inputs)


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    return _call(_forward_flat, _backward_flat, u, delta, A, B, C, D, delta_bias,
                 delta_softplus)


def cross_selective_scan(x, delta, A, B, C, D, delta_bias, delta_softplus=True):
    return _call(_forward_cross, _backward_cross, x, delta, A, B, C, D, delta_bias,
                 delta_softplus)
