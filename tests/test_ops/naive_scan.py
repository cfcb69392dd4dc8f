"""Deliberately naive float64 references for the scan tests: one Python step per position.

Written from the contract's equations (ops/selective_scan/__init__.py), not from the code under
test: h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t ; y_t = <C_t, h_t> + D u_t.
"""
import torch
import torch.nn.functional as F


def naive_selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    batch, channels, length = u.shape
    groups = B.shape[1]
    per_group = channels // groups
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    h = u.new_zeros(batch, channels, A.shape[1])
    ys = []
    for t in range(length):
        b_t = B[:, :, :, t].repeat_interleave(per_group, dim=1)   # (batch, channels, N)
        c_t = C[:, :, :, t].repeat_interleave(per_group, dim=1)
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * b_t
        ys.append((h * c_t).sum(-1))
    y = torch.stack(ys, dim=-1)
    return y if D is None else y + D[:, None] * u


def direction_sequence(t, k):
    """(..., H, W) -> (..., H*W) in the order direction k reads: 0 rows, 1 columns, 2 and 3
    their reverses (the authors' flip/transpose copies)."""
    seq = t.flatten(-2) if k % 2 == 0 else t.transpose(-1, -2).flatten(-2)
    return seq.flip(-1) if k >= 2 else seq


def direction_to_map(seq, k, height, width):
    if k >= 2:
        seq = seq.flip(-1)
    if k % 2 == 0:
        return seq.unflatten(-1, (height, width))
    return seq.unflatten(-1, (width, height)).transpose(-1, -2)


def naive_cross_selective_scan(x, delta, A, B, C, D, delta_bias, delta_softplus=True):
    """The authors' SS2D core: explicit copies per direction, one scan, copies back, summed."""
    channels, height, width = x.shape[1:]
    u = torch.cat([direction_sequence(x, k) for k in range(4)], dim=1)
    dl = torch.cat([direction_sequence(delta[:, k], k) for k in range(4)], dim=1)
    bs = torch.stack([direction_sequence(B[:, k], k) for k in range(4)], dim=1)
    cs = torch.stack([direction_sequence(C[:, k], k) for k in range(4)], dim=1)
    ys = naive_selective_scan(u, dl, A, bs, cs, D, delta_bias, delta_softplus)
    return sum(direction_to_map(ys[:, k * channels:(k + 1) * channels], k, height, width)
               for k in range(4))
