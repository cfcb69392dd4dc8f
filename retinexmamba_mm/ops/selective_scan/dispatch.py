"""Backend registry and dispatch for the selective-scan contract (see ``__init__``).

Every backend is a module exposing ``selective_scan``, ``cross_selective_scan`` (the contract's
signatures minus ``backend``) and ``is_available()``. They are imported only when first asked
for, so a CPU machine never imports mamba_ssm or triton.
"""
import importlib

import torch

from ...utils import log_once

__all__ = ['BACKENDS', 'BackendUnavailable', 'available_backends', 'needs_grad',
           'resolve_backend', 'selective_scan', 'cross_selective_scan']

# Name -> module inside this package. 'auto' tries the backends of the tensors' device in these
# orders, fastest first as measured by tools/analysis/benchmark.py (README, Benchmarks). CUDA, on
# an H100: for inference (no gradients) triton's forward wins (400x600: 40.1 vs 68.4 ms for the
# whole model); for training mamba_ssm is as fast in fp32 and faster in bf16 (H200, with triton's
# Gluon backward walk: 138.6 vs 140.7 ms fp32, 130.2 vs 141.9 ms bf16; the walk's kept step
# sizes took 3.3 / 2.6 ms more kernel time off, not enough to change that); both beat torch. CPU
# (2-core EPYC): the cpu backend's compiled walks beat torch's, forward and backward (README).
BACKENDS = {'torch': 'torch_scan', 'cpu': 'cpu_scan', 'mamba_ssm': 'mamba_ssm_scan',
            'triton': 'triton_scan'}
_PREFERENCE = {('cuda', False): ('triton', 'mamba_ssm', 'torch'),   # inference
               ('cuda', True): ('mamba_ssm', 'triton', 'torch'),    # training
               ('cpu', False): ('cpu', 'torch'),
               ('cpu', True): ('cpu', 'torch')}
_DEVICE_ONLY = {'mamba_ssm': 'cuda', 'triton': 'cuda', 'cpu': 'cpu'}

_HOW_TO_GET = {
    'mamba_ssm': ('it needs a CUDA machine and the mamba_ssm package, built from source: '
                  'MAMBA_FORCE_BUILD=TRUE pip install --no-build-isolation mamba_ssm '
                  '(PyPI has no wheels; see docs for the sm_90-only build that takes ~3 min)'),
    'triton': 'it needs a CUDA GPU and triton: pip install triton',
    'cpu': ('it compiles its C kernel at first use: install a C compiler (gcc or clang; '
            'CC=... chooses one) and make $RETINEXMAMBA_CACHE_DIR (default '
            '~/.cache/retinexmamba_mm) writable'),
    'torch': 'it ships with this package and should always import',
}


class BackendUnavailable(RuntimeError):
    """A scan backend was asked for by name but cannot run here (missing package or device)."""


def _module(name):
    """The backend's module, or the reason it is unavailable (str)."""
    if name not in BACKENDS:
        raise ValueError(f'unknown selective-scan backend {name!r}; '
                         f"choose one of {['auto', *BACKENDS]}")
    try:
        module = importlib.import_module(f'.{BACKENDS[name]}', __package__)
    except ImportError as error:
        return f'importing it failed ({error})'
    if not module.is_available():
        return module.unavailable_reason() if hasattr(module, 'unavailable_reason') else \
            'its is_available() says no'
    return module


def available_backends(device=None):
    """Names of the backends that can run here, optionally for tensors on ``device``."""
    device = None if device is None else torch.device(device)
    names = []
    for name in BACKENDS:
        if device is not None and _DEVICE_ONLY.get(name, device.type) != device.type:
            continue
        if not isinstance(_module(name), str):
            names.append(name)
    return names


def resolve_backend(backend, device, training=False):
    """The backend module that runs for ``backend`` ('auto' or a name) on ``device``;
    ``training`` (gradients wanted) matters only to 'auto'."""
    device = torch.device(device)
    if backend == 'auto':
        preference = _PREFERENCE.get((device.type, bool(training)), ('torch', ))
        name = next(n for n in preference if not isinstance(_module(n), str))
        mode = 'training' if training else 'inference'
        log_once(f'selective_scan.auto.{device.type}.{mode}',
                 f'selective scan: backend "{name}" for {device.type} tensors, {mode} '
                 '(backend="auto")')
        return _module(name)
    module = _module(backend)
    if isinstance(module, str):
        raise BackendUnavailable(f'selective-scan backend {backend!r} is unavailable: {module}. '
                                 f'To get it: {_HOW_TO_GET[backend]}. backend="auto" picks the '
                                 f'fastest available one ({available_backends()} here).')
    if _DEVICE_ONLY.get(backend, device.type) != device.type:
        raise BackendUnavailable(f'selective-scan backend {backend!r} runs on '
                                 f'{_DEVICE_ONLY[backend].upper()} tensors only, got '
                                 f'{device.type} tensors; use backend="torch" or "auto".')
    return module


def _expect(name, tensor, shape):
    if tensor.dim() != len(shape) or any(s is not None and s != t
                                         for s, t in zip(shape, tensor.shape)):
        want = '(' + ', '.join('*' if s is None else str(s) for s in shape) + ')'
        raise ValueError(f'selective_scan: {name} must have shape {want}, got '
                         f'{tuple(tensor.shape)}')


def needs_grad(*tensors):
    """True when autograd will want gradients of any of ``tensors`` (None entries allowed):
    what 'auto' calls training, and what backends check before saving for backward."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _check_params(A, D, delta_bias, channels):
    _expect('A', A, (channels, None))
    if D is not None:
        _expect('D', D, (channels, ))
    if delta_bias is not None:
        _expect('delta_bias', delta_bias, (channels, ))


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False,
                   backend='auto'):
    """The selective scan of the contract (module docstring of ``ops.selective_scan``)."""
    if u.dim() != 3:
        raise ValueError(f'selective_scan: u must be (batch, K*D, L), got {tuple(u.shape)}')
    batch, channels, length = u.shape
    _expect('delta', delta, (batch, channels, length))
    if B.dim() != 4:
        raise ValueError(f'selective_scan: B must be (batch, K, N, L), got {tuple(B.shape)}')
    groups, state = B.shape[1], B.shape[2]
    _expect('B', B, (batch, groups, state, length))
    _expect('C', C, (batch, groups, state, length))
    if channels % groups:
        raise ValueError(f'selective_scan: {channels} channels do not split into the {groups} '
                         'groups (K) of B and C')
    _check_params(A, D, delta_bias, channels)
    _expect('A', A, (channels, state))
    module = resolve_backend(backend, u.device, needs_grad(u, delta, A, B, C, D, delta_bias))
    return module.selective_scan(u, delta, A, B, C, D, delta_bias, delta_softplus)


def cross_selective_scan(x, delta, A, B, C, D, delta_bias, delta_softplus=True, backend='auto'):
    """SS2D's four-direction scan of the contract (module docstring of ``ops.selective_scan``)."""
    if x.dim() != 4:
        raise ValueError(f'cross_selective_scan: x must be (batch, D, H, W), got '
                         f'{tuple(x.shape)}')
    batch, channels, height, width = x.shape
    _expect('delta', delta, (batch, 4, channels, height, width))
    if B.dim() != 5:
        raise ValueError(f'cross_selective_scan: B must be (batch, 4, N, H, W), got '
                         f'{tuple(B.shape)}')
    state = B.shape[2]
    _expect('B', B, (batch, 4, state, height, width))
    _expect('C', C, (batch, 4, state, height, width))
    _check_params(A, D, delta_bias, 4 * channels)
    _expect('A', A, (4 * channels, state))
    module = resolve_backend(backend, x.device, needs_grad(x, delta, A, B, C, D, delta_bias))
    return module.cross_selective_scan(x, delta, A, B, C, D, delta_bias, delta_softplus)
