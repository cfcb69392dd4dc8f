"""The ``triton`` layer-norm backend: BLOCK_R rows of C <= 512 channels per program.

Forward saves each row's mean and 1/std; the backward recomputes x_hat from them and gives
dx = (w dy - mean(w dy) - x_hat mean(w dy x_hat)) / std per row, plus per-program partial sums
of dy x_hat and dy that torch adds up into dweight and dbias. fp32 arithmetic; under autocast
the inputs are cast to fp32 first and the output is fp32, as autocast does for F.layer_norm.
"""
import torch
import triton
import triton.language as tl


@triton.jit
def _forward_kernel(x_ptr, w_ptr, b_ptr, y_ptr, mean_ptr, rstd_ptr, n_rows, n_cols, eps,
                    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_C)
    row_ok, col_ok = rows < n_rows, cols < n_cols
    mask = row_ok[:, None] & col_ok[None, :]
    offsets = rows.to(tl.int64)[:, None] * n_cols + cols[None, :]
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
    mean = tl.sum(x, axis=1) / n_cols
    centred = tl.where(mask, x - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1) / n_cols + eps)
    w = tl.load(w_ptr + cols, mask=col_ok, other=0.0)
    b = tl.load(b_ptr + cols, mask=col_ok, other=0.0)
    tl.store(y_ptr + offsets, centred * rstd[:, None] * w[None, :] + b[None, :], mask=mask)
    tl.store(mean_ptr + rows, mean, mask=row_ok)
    tl.store(rstd_ptr + rows, rstd, mask=row_ok)


@triton.jit
def _backward_kernel(x_ptr, w_ptr, dy_ptr, mean_ptr, rstd_ptr, dx_ptr, dw_ptr, db_ptr, n_rows,
                     n_cols, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    pid = tl.program_id(0)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_C)
    row_ok, col_ok = rows < n_rows, cols < n_cols
    mask = row_ok[:, None] & col_ok[None, :]
    offsets = rows.to(tl.int64)[:, None] * n_cols + cols[None, :]
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
    dy = tl.load(dy_ptr + offsets, mask=mask, other=0.0)
    mean = tl.load(mean_ptr + rows, mask=row_ok, other=0.0)
    rstd = tl.load(rstd_ptr + rows, mask=row_ok, other=0.0)
    w = tl.load(w_ptr + cols, mask=col_ok, other=0.0)
    x_hat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
    w_dy = dy * w[None, :]
    mean_w_dy = tl.sum(w_dy, axis=1) / n_cols
    mean_w_dy_x_hat = tl.sum(w_dy * x_hat, axis=1) / n_cols
    dx = (w_dy - mean_w_dy[:, None] - x_hat * mean_w_dy_x_hat[:, None]) * rstd[:, None]
    tl.store(dx_ptr + offsets, dx, mask=mask)
    tl.store(dw_ptr + pid * n_cols + cols, tl.sum(dy * x_hat, axis=0), mask=col_ok)
    tl.store(db_ptr + pid * n_cols + cols, tl.sum(dy, axis=0), mask=col_ok)


def _blocks(n_cols):
    block_c = triton.next_power_of_2(n_cols)
    if block_c > 512:
        raise ValueError(f'triton layer norm: rows of {n_cols} channels; this kernel takes up '
                         'to 512 (use backend="torch")')
    return max(1, 4096 // block_c), block_c   # ~4096 values per program


class _LayerNorm(torch.autograd.Function):

    @staticmethod
    @torch.amp.custom_fwd(device_type='cuda', cast_inputs=torch.float32)
    def forward(ctx, x, weight, bias, eps):
        shape = x.shape
        x = x.reshape(-1, shape[-1]).float().contiguous()
        n_rows, n_cols = x.shape
        block_r, block_c = _blocks(n_cols)
        y = torch.empty_like(x)
        mean, rstd = (x.new_empty(n_rows) for _ in range(2))
        grid = (triton.cdiv(n_rows, block_r), )
        _forward_kernel[grid](x, weight.float().contiguous(), bias.float().contiguous(), y,
                              mean, rstd, n_rows, n_cols, eps, BLOCK_R=block_r,
                              BLOCK_C=block_c, num_warps=4)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.shape, ctx.dtypes = shape, (weight.dtype, bias.dtype)
        return y.view(shape)

    @staticmethod
    @torch.amp.custom_bwd(device_type='cuda')
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        n_rows, n_cols = x.shape
        block_r, block_c = _blocks(n_cols)
        programs = triton.cdiv(n_rows, block_r)
        dy = dy.reshape(n_rows, n_cols).float().contiguous()
        dx = torch.empty_like(x)
        dw, db = (x.new_empty(programs, n_cols) for _ in range(2))
        _backward_kernel[(programs, )](x, weight.float().contiguous(), dy, mean, rstd, dx, dw,
                                       db, n_rows, n_cols, BLOCK_R=block_r, BLOCK_C=block_c,
                                       num_warps=4)
        return (dx.view(ctx.shape), dw.sum(0).to(ctx.dtypes[0]), db.sum(0).to(ctx.dtypes[1]),
                None)


def layer_norm(x, weight, bias, eps=1e-5):
    """See the contract in ``__init__``; returns x's shape, contiguous, fp32 (or x's dtype)."""
    if x.shape[-1:] != weight.shape or weight.shape != bias.shape:
        raise ValueError(f'triton layer norm: x {tuple(x.shape)} needs weight and bias of shape '
                         f'({x.shape[-1]},), got {tuple(weight.shape)} and {tuple(bias.shape)}')
    y = _LayerNorm.apply(x, weight, bias, float(eps))
    return y if torch.is_autocast_enabled(x.device.type) else y.to(x.dtype)
