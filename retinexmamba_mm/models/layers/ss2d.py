"""Architecture: SS2D, the 2D selective-scan module (VMamba) in the paper's IFSSM block.

in_proj splits into x and a gate z; x goes through a depthwise 3x3 conv and SiLU, then is scanned
in four directions (row-major, column-major and their reverses) by a selective scan whose step
size, B and C come from x itself; the four outputs are summed back at their pixels, normalised,
gated by SiLU(z) and projected out. The core is ``ops.cross_selective_scan``, so the scan backend
(torch, cpu, mamba_ssm, triton) can be swapped without touching this module.

Parameter names and shapes follow VMamba's SS2D (and so the authors' checkpoints): the four
directions' projections are kept as stacked parameters ``x_proj_weight`` (4, R + 2N, D),
``dt_projs_weight`` (4, D, R), ``dt_projs_bias`` (4, D), ``A_logs`` (4D, N), ``Ds`` (4D).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...ops import cross_selective_scan
from ...ops.selective_scan import BACKENDS, needs_grad, resolve_backend
from .layer_norm import LayerNorm

NUM_DIRECTIONS = 4


def check_scan_backend(name):
    if name != 'auto' and name not in BACKENDS:
        raise ValueError(f'unknown scan_backend {name!r}; choose one of '
                         f"{['auto', *BACKENDS]}")
    return name


class SS2D(nn.Module):
    """2D selective scan on channels-last (B, H, W, C) tensors.

    Args:
        channels (int): Model width C.
        d_state (int): State size N per channel. Default: 16.
        expand (int): Inner width D = expand * C. Default: 2.
        d_conv (int): Depthwise conv kernel size. Default: 3.
        dt_rank (int | None): Rank R of the step-size projection; None means ceil(C / 16).
        dt_min, dt_max (float): Range of the initial step sizes (log-uniform). Defaults:
            1e-3, 1e-1.
        dt_init_floor (float): Lower clamp of the initial step sizes. Default: 1e-4.
        scan_backend (str): 'auto', 'torch', 'mamba_ssm' or 'triton' (see ``ops``).
    """

    def __init__(self, channels, d_state=16, expand=2, d_conv=3, dt_rank=None, dt_min=1e-3,
                 dt_max=1e-1, dt_init_floor=1e-4, scan_backend='auto'):
        super().__init__()
        inner = expand * channels
        rank = math.ceil(channels / 16) if dt_rank is None else dt_rank
        self.d_state, self.dt_rank = d_state, rank
        self.scan_backend = check_scan_backend(scan_backend)
        k = NUM_DIRECTIONS

        self.in_proj = nn.Linear(channels, 2 * inner, bias=False)
        self.conv2d = nn.Conv2d(inner, inner, d_conv, padding=(d_conv - 1) // 2, groups=inner)
        self.x_proj_weight = nn.Parameter(torch.empty(k, rank + 2 * d_state, inner))
        self.dt_projs_weight = nn.Parameter(torch.empty(k, inner, rank))
        self.dt_projs_bias = nn.Parameter(torch.empty(k, inner))
        self.A_logs = nn.Parameter(torch.empty(k * inner, d_state))
        self.Ds = nn.Parameter(torch.empty(k * inner))
        self.out_norm = LayerNorm(inner)
        self.out_proj = nn.Linear(inner, channels, bias=False)
        self._init_scan_parameters(dt_min, dt_max, dt_init_floor)

    @torch.no_grad()
    def _init_scan_parameters(self, dt_min, dt_max, dt_init_floor):
        """VMamba/Mamba initialisation of the scan's parameters."""
        inner = self.Ds.numel() // NUM_DIRECTIONS
        # x_proj: nn.Linear's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = inner**-0.5
        self.x_proj_weight.uniform_(-bound, bound)
        # dt_proj weight: U(-R^-0.5, R^-0.5) keeps the step sizes' variance at init
        bound = self.dt_rank**-0.5
        self.dt_projs_weight.uniform_(-bound, bound)
        # dt_proj bias: softplus(bias) log-uniform in [dt_min, dt_max], floored
        log_dt = torch.rand(self.dt_projs_bias.shape) * (math.log(dt_max) - math.log(dt_min))
        dt = torch.exp(log_dt + math.log(dt_min)).clamp(min=dt_init_floor)
        self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        # S4D-real: A = -(1, 2, ..., N) for every channel; skip D = 1
        self.A_logs.copy_(torch.log(torch.arange(1, self.d_state + 1, dtype=torch.float32))
                          .expand_as(self.A_logs))
        self.Ds.fill_(1.0)

    def forward(self, x):
        # in_proj as two GEMMs: x and z come out dense, so the conv reads x without a copy
        x_weight, z_weight = self.in_proj.weight.chunk(2, dim=0)
        x, z = F.linear(x, x_weight), F.linear(x, z_weight)
        x = F.silu(self.conv2d(x.permute(0, 3, 1, 2)))                  # (B, D, H, W)
        dts, bs, cs = self._project(x)
        y = cross_selective_scan(
            x, dts, -torch.exp(self.A_logs.float()), bs, cs, self.Ds.float(),
            self.dt_projs_bias.float().flatten(), delta_softplus=True,
            backend=self.scan_backend)
        y = self.out_norm(y.permute(0, 2, 3, 1)) * F.silu(z)
        return self.out_proj(y)

    def _project(self, x):
        """Per-direction step sizes (B, 4, D, H, W) and B, C (B, 4, N, H, W) from x.

        The memory layout follows the scan backend's preference (same GEMMs either way):
        mamba_ssm reads contiguous (4, D, H*W) rows; the torch and triton backends read
        channels-last maps, B and C as slices of the projection.
        """
        rank, state = self.dt_rank, self.d_state
        backend = resolve_backend(self.scan_backend, x.device, needs_grad(x, self.A_logs))
        if not getattr(backend, 'prefers_channels_last', False):
            # one GEMM for the four directions: (4(R+2N), D) @ (B, D, H*W); B and C stay
            # slices of its output (the kernels read them in place)
            batch, _, height, width = x.shape
            x_dbl = (self.x_proj_weight.flatten(0, 1) @ x.flatten(2)).unflatten(
                1, (NUM_DIRECTIONS, -1))                                 # (B, 4, R+2N, H*W)
            dts, bs, cs = torch.split(x_dbl, [rank, state, state], dim=2)
            dts = self.dt_projs_weight @ dts                              # (B, 4, D, H*W)
            return tuple(t.unflatten(-1, (height, width)) for t in (dts, bs, cs))
        k, inner = self.dt_projs_weight.shape[:2]
        x_dbl = x.permute(0, 2, 3, 1) @ self.x_proj_weight.flatten(0, 1).t()  # (B, H, W, 4(R+2N))
        x_dbl = x_dbl.unflatten(-1, (k, rank + 2 * state))
        dts, bs, cs = torch.split(x_dbl, [rank, state, state], dim=-1)
        # the four (D x R) projections as one block-diagonal GEMM: (B, H, W, 4R) -> (B, H, W, 4D)
        dts = dts.flatten(-2) @ torch.block_diag(*self.dt_projs_weight).t()
        dts = dts.unflatten(-1, (k, inner))
        return (dts.permute(0, 3, 4, 1, 2), bs.permute(0, 3, 4, 1, 2),
                cs.permute(0, 3, 4, 1, 2))
