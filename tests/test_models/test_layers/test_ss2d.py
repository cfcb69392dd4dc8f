"""SS2D against a reference written from the spec (the authors' path: four explicit
flip/transpose copies, a per-step scan, copies back), in float64, for both memory layouts SS2D
can hand to the scan backend; plus the VMamba initialisation rules."""
import math

import pytest
import torch
import torch.nn.functional as F

from retinexmamba_mm.models.layers import SS2D
from retinexmamba_mm.ops.selective_scan import torch_scan

pytestmark = pytest.mark.usefixtures('single_thread')


def naive_scan(u, delta, A, B, C, D):
    """u, delta (b, KD, L); B, C (b, K, N, L) shared by the D channels of a group."""
    per_group = u.shape[1] // B.shape[1]
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[2]):
        b_t = B[..., t].repeat_interleave(per_group, 1)
        c_t = C[..., t].repeat_interleave(per_group, 1)
        h = torch.exp(delta[..., t, None] * A) * h + (delta[..., t] * u[..., t])[..., None] * b_t
        ys.append((h * c_t).sum(-1))
    return torch.stack(ys, -1) + D[:, None] * u


def reference_ss2d(m, x):
    """x: (b, H, W, C) channels-last, as the IFSSM block hands it over."""
    b, height, width, _ = x.shape
    length = height * width
    xz = x @ m.in_proj.weight.t()
    xi, z = xz.chunk(2, dim=-1)
    xi = F.silu(F.conv2d(xi.permute(0, 3, 1, 2), m.conv2d.weight, m.conv2d.bias, padding=1,
                         groups=xi.shape[-1]))
    inner = xi.shape[1]
    rows = xi.reshape(b, inner, length)
    cols = xi.transpose(2, 3).reshape(b, inner, length)
    xs = torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], dim=1)       # (b, 4, D, L)
    x_dbl = torch.einsum('bkdl,kcd->bkcl', xs, m.x_proj_weight)
    rank, state = m.dt_projs_weight.shape[2], m.A_logs.shape[1]
    dts, bs, cs = torch.split(x_dbl, [rank, state, state], dim=2)
    dts = torch.einsum('bkrl,kdr->bkdl', dts, m.dt_projs_weight)
    delta = F.softplus(dts.reshape(b, -1, length) + m.dt_projs_bias.reshape(-1, 1))
    y = naive_scan(xs.reshape(b, -1, length), delta, -torch.exp(m.A_logs), bs, cs, m.Ds)
    y = y.view(b, 4, inner, length)
    y = (y[:, 0] + y[:, 2].flip(-1)
         + (y[:, 1] + y[:, 3].flip(-1)).view(b, inner, width, height).transpose(2, 3)
         .reshape(b, inner, length))
    y = y.transpose(1, 2).reshape(b, height, width, inner)
    y = F.layer_norm(y, (inner, ), m.out_norm.weight, m.out_norm.bias) * F.silu(z)
    return y @ m.out_proj.weight.t()


def randomised(module):
    """Move every parameter away from its init so that no term can hide."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return module


@pytest.mark.parametrize('channels_last', [True, False])
@pytest.mark.parametrize('height,width', [(5, 7), (4, 4)])
def test_ss2d_matches_reference(monkeypatch, channels_last, height, width):
    monkeypatch.setattr(torch_scan, 'prefers_channels_last', channels_last)
    torch.manual_seed(0)
    m = randomised(SS2D(8, d_state=4, scan_backend='torch')).double()
    x = torch.randn(2, height, width, 8, dtype=torch.float64)
    torch.testing.assert_close(m(x), reference_ss2d(m, x), rtol=1e-9, atol=1e-9)


def test_ss2d_shapes_follow_vmamba():
    m = SS2D(40, d_state=16)
    inner, rank = 80, math.ceil(40 / 16)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        'x_proj_weight': (4, rank + 32, inner), 'dt_projs_weight': (4, inner, rank),
        'dt_projs_bias': (4, inner), 'A_logs': (4 * inner, 16), 'Ds': (4 * inner, ),
        'in_proj.weight': (2 * inner, 40), 'conv2d.weight': (inner, 1, 3, 3),
        'conv2d.bias': (inner, ), 'out_norm.weight': (inner, ), 'out_norm.bias': (inner, ),
        'out_proj.weight': (40, inner)}


def test_ss2d_init():
    torch.manual_seed(0)
    m = SS2D(80, d_state=32)
    rank, inner = 5, 160
    dt = F.softplus(m.dt_projs_bias)
    assert dt.min() >= 1e-4 - 1e-9 and dt.max() <= 0.1 + 1e-6 and dt.min() < 2e-3
    torch.testing.assert_close(m.A_logs, torch.log(torch.arange(1., 33.)).expand(4 * inner, 32))
    assert torch.equal(m.Ds, torch.ones(4 * inner))
    assert m.dt_projs_weight.abs().max() <= rank**-0.5
    assert m.x_proj_weight.abs().max() <= inner**-0.5
    assert m.x_proj_weight.std() > 0.8 * inner**-0.5 / math.sqrt(3)  # uniform, not shrunk


def test_unknown_backend_is_refused_at_construction():
    with pytest.raises(ValueError, match='unknown scan_backend'):
        SS2D(8, scan_backend='cuda')
