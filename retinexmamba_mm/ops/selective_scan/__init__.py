"""The selective-scan contract and its backend dispatch.

CONTRACT (every backend implements exactly this; ``torch`` is the reference):

``selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False, backend='auto')``
    u, delta   : (batch, K*D, L)   input and step size, for K groups (scan directions) of D channels
    A          : (K*D, N)          state matrix (real, usually negative)
    B, C       : (batch, K, N, L)  input/output projections, shared by the D channels of a group
    D          : (K*D,) or None    skip connection
    delta_bias : (K*D,) or None    added to delta before the optional softplus
    returns y  : (batch, K*D, L) in u's dtype, computed with fp32 accumulation:
        delta' = softplus(delta + delta_bias) if delta_softplus else delta + delta_bias
        h_t = exp(delta'_t * A) * h_{t-1} + delta'_t * B_t * u_t ;  y_t = <C_t, h_t> + D * u_t

``cross_selective_scan(x, delta, A, B, C, D, delta_bias, delta_softplus=True, backend='auto')``
    The SS2D core (VMamba's four-direction cross-scan + scan + cross-merge) in one call, so a
    backend can read the feature map in each direction's order instead of materialising copies.
    x          : (batch, D, H, W)          the feature map, shared by the four directions
    delta      : (batch, 4, D, H, W)       per-direction step sizes, in spatial (row-major) order
    B, C       : (batch, 4, N, H, W)       per-direction projections, in spatial order
    A          : (4*D, N); D, delta_bias : (4*D,)
    returns y  : (batch, D, H, W) in x's dtype (fp32 accumulation) = sum over k of the scan of
                 direction k, each output written back at the spatial position it came from.
                 Directions: 0 row-major (h, w), 1 column-major (w, h), 2 and 3 the reverses
                 of 0 and 1.
    Because every projection in SS2D is pointwise, this equals the authors' path (flip/transpose
    copies -> scan -> flip/transpose back -> sum) up to float summation order.

Backends: 'torch' (portable, any device, the reference), 'cpu' (C kernels compiled at first use,
CPU), 'mamba_ssm' (CUDA kernel of the mamba_ssm package), 'triton' (fused kernels,
CUDA). 'auto' picks the fastest available for the tensors' device and for inference or training,
and logs the choice once. A backend that is asked for and missing raises BackendUnavailable
saying how to get it; nothing falls back silently. Asking for a CUDA-only backend with CPU
tensors (or for 'cpu' with CUDA tensors) raises BackendUnavailable too.

Adding a backend: a module in this package exposing ``selective_scan`` and ``cross_selective_scan``
(the signatures above minus ``backend``) and ``is_available()``, listed in ``dispatch.BACKENDS``,
and tested against the torch backend.
"""
from .dispatch import (
    BACKENDS,
    BackendUnavailable,
    available_backends,
    cross_selective_scan,
    needs_grad,
    resolve_backend,
    selective_scan,
)

__all__ = ['selective_scan', 'cross_selective_scan', 'available_backends', 'BackendUnavailable',
           'needs_grad', 'resolve_backend', 'BACKENDS']
