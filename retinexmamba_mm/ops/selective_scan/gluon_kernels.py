"""Gluon kernel of the cross-scan's backward walk (pass 3b of ``triton_kernels.py``, line walks).

Same work items, arguments and results as ``triton_kernels._bwd_walk_kernel`` with ``COL=True``;
what differs is that the layout is explicit: each thread owns one lane and all BD channels x NB
states of it, so every reduction of a step (over states for du and ddelta, over channels for dB
and dC) stays in the thread's registers and a lane's BD channels or NB states are one vector
load. Triton's own layout choice for the same code splits the states and lanes over threads
and converts between layouts several times per step (through shared memory). One step per row;
every fourth state is kept in a per-thread scratch and the three between are recomputed. The
forward sweep also keeps every step's step size (softplus(delta + bias)) in the scratch, so the
backward sweep reads it instead of computing the softplus again (which was ~40% of its
instructions).
"""
from triton.experimental import gluon
from triton.experimental.gluon import language as gl

from . import triton_kernels

# The layout-free pieces of the Triton kernels, compiled as Gluon (as Gluon's own gl.sum is).
LN2 = triton_kernels.LN2
_softplus = gluon.jit(triton_kernels._softplus.fn)
_decode = gluon.jit(triton_kernels._decode.fn)


@gluon.jit
def _at(ptr, off, pos, pix, rows_ok, lanes_ok):
    """(X, TL) fp32 values at row offsets ``off`` (X,) and pixels ``pos`` (TL,)."""
    return gl.load(ptr + off[:, None] + (pos * pix)[None, :],
                   mask=rows_ok[:, None] & lanes_ok[None, :], other=0.0).to(gl.float32)


@gluon.jit
def _row_of(s, first, chunk, REV: gl.constexpr):
    if REV:
        return first + chunk - 1 - s
    return first + s


@gluon.jit
def _delta_at(s, first, chunk, ext_a, s_row, s_lane, lane_d, lm_d, dm, dl_ptr, dl_off, sd_p,
              bias, REV: gl.constexpr, SOFTPLUS: gl.constexpr):
    """The (BD, TL) step sizes of scan step ``s`` (0 outside the map)."""
    row = _row_of(s, first, chunk, REV)
    ok_d = lm_d & (row < ext_a)
    pre = _at(dl_ptr, dl_off, row * s_row + lane_d * s_lane, sd_p, dm, ok_d) + bias
    if SOFTPLUS:
        pre = _softplus(pre)
    return gl.where(ok_d[None, :], pre, 0.0)


@gluon.jit
def _recompute(h, dl, s, first, chunk, ext_a, s_row, s_lane, lane_d, lane_n, lm_d, lm_n, dm, nm,
               u_ptr, b_ptr, u_off, bc_off, su_p, sb_p, a2, REV: gl.constexpr):
    """The state after scan step ``s`` from the state before it and the step's sizes ``dl``."""
    row = _row_of(s, first, chunk, REV)
    u = _at(u_ptr, u_off, row * s_row + lane_d * s_lane, su_p, dm, lm_d & (row < ext_a))
    bv = _at(b_ptr, bc_off, row * s_row + lane_n * s_lane, sb_p, nm, lm_n & (row < ext_a))
    return gl.exp2(a2 * dl[:, None, :]) * h + (dl * u)[:, None, :] * bv[None, :, :]


@gluon.jit
def _adjoint(r, h_prev, dl, s, first, chunk, ext_a, s_row, s_lane, lane_d, lane_n, lm_d, lm_n,
             dm, nm, u_ptr, dl_ptr, b_ptr, c_ptr, dy_ptr, du_ptr, ddl_ptr, db_ptr, dc_ptr, u_off,
             dl_off, dy_off, bc_off, su_p, sd_p, sb_p, sg_p, a2, bias, dsk, da_acc, dd_acc,
             dbias_acc, REV: gl.constexpr, SOFTPLUS: gl.constexpr):
    """One adjoint step at scan step ``s`` with its step sizes ``dl`` (see
    ``triton_kernels._bwd_step``); adds du, ddelta, dB and dC of the step into their buffers and
    returns r for the step before."""
    row = _row_of(s, first, chunk, REV)
    ok_d = lm_d & (row < ext_a)
    ok_n = lm_n & (row < ext_a)
    pos_d = row * s_row + lane_d * s_lane
    pos_n = row * s_row + lane_n * s_lane
    u = _at(u_ptr, u_off, pos_d, su_p, dm, ok_d)
    dy = _at(dy_ptr, dy_off, pos_d, sg_p, dm, ok_d)
    bv = _at(b_ptr, bc_off, pos_n, sb_p, nm, ok_n)
    cv = _at(c_ptr, bc_off, pos_n, sb_p, nm, ok_n)
    a = gl.exp2(a2 * dl[:, None, :])
    ah = a * h_prev
    g = cv[None, :, :] * dy[:, None, :] + r
    gb = gl.sum(g * bv[None, :, :], axis=1)
    du = gb * dl + dsk * dy
    ddl = gl.sum(g * ah * a2, axis=1) * LN2 + gb * u
    if SOFTPLUS:   # d softplus(pre) / d pre
        ddl = ddl / (1.0 + gl.exp(-(_at(dl_ptr, dl_off, pos_d, sd_p, dm, ok_d) + bias)))
    ddl = gl.where(ok_d[None, :], ddl, 0.0)
    dlu = dl * u
    d_b = gl.sum(g * dlu[:, None, :], axis=0)
    d_c = gl.sum((ah + dlu[:, None, :] * bv[None, :, :]) * dy[:, None, :], axis=0)
    m_d = dm[:, None] & ok_d[None, :]
    m_n = nm[:, None] & ok_n[None, :]
    gl.atomic_add(du_ptr + u_off[:, None] + (pos_d * su_p)[None, :], du, mask=m_d, sem='relaxed')
    gl.atomic_add(ddl_ptr + dl_off[:, None] + (pos_d * sd_p)[None, :], ddl, mask=m_d,
                  sem='relaxed')
    gl.atomic_add(db_ptr + bc_off[:, None] + (pos_n * sb_p)[None, :], d_b, mask=m_n,
                  sem='relaxed')
    gl.atomic_add(dc_ptr + bc_off[:, None] + (pos_n * sb_p)[None, :], d_c, mask=m_n,
                  sem='relaxed')
    da_acc += g * ah * dl[:, None, :]
    dd_acc += dy * u
    dbias_acc += ddl
    return a * g, da_acc, dd_acc, dbias_acc


@gluon.jit
def _item(item, scratch, cell, dcell, u_ptr, dl_ptr, a2_ptr, b_ptr, c_ptr, dsk_ptr, bias_ptr,
          dy_ptr, start_ptr, rin_ptr, du_ptr, ddl_ptr, db_ptr, dc_ptr, da_ptr, dd_ptr, dbias_ptr,
          n_ch, n_state, ext_a, chunk, n_lanes, n_cs, n_ct, s_row, s_lane, n_lb, n_db, n_nb, k0,
          k_step, nk, su_b, su_k, su_d, su_p, sd_b, sd_k, sd_d, sd_p, sb_b, sb_k, sb_n, sb_p,
          sg_b, sg_k, sg_d, sg_p, L3: gl.constexpr, NB: gl.constexpr, TL: gl.constexpr,
          BD: gl.constexpr, REV: gl.constexpr, HAS_D: gl.constexpr, HAS_BIAS: gl.constexpr,
          SOFTPLUS: gl.constexpr, HAS_START: gl.constexpr):
    """Every gradient of one work item (chunk x lanes x states x channels)."""
    LD: gl.constexpr = gl.SliceLayout(1, L3)   # (BD, TL)
    LN: gl.constexpr = gl.SliceLayout(0, L3)   # (NB, TL)
    LP: gl.constexpr = gl.SliceLayout(2, L3)   # (BD, NB)
    nbi, dbi, lbi, jc, kk, b = _decode(item, n_nb, n_db, n_lb, n_cs, nk)
    b64 = b.to(gl.int64)
    k = k0 + kk * k_step
    d = dbi * BD + gl.arange(0, BD, gl.SliceLayout(1, LD))
    n = nbi * NB + gl.arange(0, NB, gl.SliceLayout(1, LN))
    d_p = dbi * BD + gl.arange(0, BD, gl.SliceLayout(1, LP))
    n_p = nbi * NB + gl.arange(0, NB, gl.SliceLayout(0, LP))
    lane_d = lbi * TL + gl.arange(0, TL, gl.SliceLayout(0, LD))
    lane_n = lbi * TL + gl.arange(0, TL, gl.SliceLayout(0, LN))
    dm = d < n_ch
    nm = n < n_state
    lm_d = lane_d < n_lanes
    lm_n = lane_n < n_lanes
    pm = (d_p < n_ch)[:, None] & (n_p < n_state)[None, :]
    a2 = gl.load(a2_ptr + (k * n_ch + d_p)[:, None] * n_state + n_p[None, :], mask=pm,
                 other=0.0)[:, :, None]
    ch = k * n_ch + d
    if HAS_BIAS:
        bias = gl.load(bias_ptr + ch, mask=dm, other=0.0)[:, None]
    else:
        bias = gl.zeros([BD, 1], gl.float32, LD)
    if HAS_D:
        dsk = gl.load(dsk_ptr + ch, mask=dm & (nbi == 0), other=0.0)[:, None]
    else:
        dsk = gl.zeros([BD, 1], gl.float32, LD)
    if HAS_START:
        seq = (b64 * nk + kk) * n_ch + d_p
        s3 = (seq[:, None] * n_ct * n_state + n_p[None, :])[:, :, None] \
            + ((lane_d * n_cs + jc) * n_state)[None, :][:, None, :]
        m3 = pm[:, :, None] & lm_d[None, :][:, None, :]
        h = gl.load(start_ptr + s3, mask=m3, other=0.0)
        r = gl.load(rin_ptr + s3, mask=m3, other=0.0)
    else:
        h = gl.zeros([BD, NB, TL], gl.float32, L3)
        r = gl.zeros([BD, NB, TL], gl.float32, L3)
    u_off = b64 * su_b + k * su_k + d * su_d
    dl_off = b64 * sd_b + k * sd_k + d * sd_d
    dy_off = b64 * sg_b + k * sg_k + d * sg_d
    bc_off = b64 * sb_b + k * sb_k + n * sb_n
    first = jc * chunk
    n_groups = chunk // 4
    # the scratch: the state entering every group, then the step sizes of every step
    dls = scratch + n_groups * (BD * NB * TL) + dcell
    # forward sweep: the state entering every group of four steps, in scan order
    for j in range(n_groups):
        gl.store(scratch + j * (BD * NB * TL) + cell, h)
        for v in gl.static_range(4):
            dl = _delta_at(j * 4 + v, first, chunk, ext_a, s_row, s_lane, lane_d, lm_d, dm,
                           dl_ptr, dl_off, sd_p, bias, REV, SOFTPLUS)
            gl.store(dls + (j * 4 + v) * (BD * TL), dl)
            h = _recompute(h, dl, j * 4 + v, first, chunk, ext_a, s_row, s_lane, lane_d, lane_n,
                           lm_d, lm_n, dm, nm, u_ptr, b_ptr, u_off, bc_off, su_p, sb_p, a2, REV)
    da_acc = gl.zeros([BD, NB, TL], gl.float32, L3)
    dd_acc = gl.zeros([BD, TL], gl.float32, LD)
    dbias_acc = gl.zeros([BD, TL], gl.float32, LD)
    # backward sweep: per group, recompute its states, then the adjoint steps
    for jj in range(n_groups):
        j = n_groups - 1 - jj
        h_in = gl.load(scratch + j * (BD * NB * TL) + cell)
        # the group's step sizes, read where they are used (holding them spills)
        at = dls + (j * 4) * (BD * TL)
        h0 = _recompute(h_in, gl.load(at), j * 4, first, chunk, ext_a, s_row, s_lane, lane_d,
                        lane_n, lm_d, lm_n, dm, nm, u_ptr, b_ptr, u_off, bc_off, su_p, sb_p, a2,
                        REV)
        h1 = _recompute(h0, gl.load(at + BD * TL), j * 4 + 1, first, chunk, ext_a, s_row,
                        s_lane, lane_d, lane_n, lm_d, lm_n, dm, nm, u_ptr, b_ptr, u_off, bc_off,
                        su_p, sb_p, a2, REV)
        h2 = _recompute(h1, gl.load(at + 2 * BD * TL), j * 4 + 2, first, chunk, ext_a, s_row,
                        s_lane, lane_d, lane_n, lm_d, lm_n, dm, nm, u_ptr, b_ptr, u_off, bc_off,
                        su_p, sb_p, a2, REV)
        r, da_acc, dd_acc, dbias_acc = _adjoint(
            r, h2, gl.load(at + 3 * BD * TL), j * 4 + 3, first, chunk, ext_a, s_row, s_lane, lane_d,
            lane_n, lm_d, lm_n, dm, nm, u_ptr, dl_ptr, b_ptr, c_ptr, dy_ptr, du_ptr, ddl_ptr,
            db_ptr, dc_ptr, u_off, dl_off, dy_off, bc_off, su_p, sd_p, sb_p, sg_p, a2, bias, dsk,
            da_acc, dd_acc, dbias_acc, REV, SOFTPLUS)
        r, da_acc, dd_acc, dbias_acc = _adjoint(
            r, h1, gl.load(at + 2 * BD * TL), j * 4 + 2, first, chunk, ext_a, s_row, s_lane, lane_d,
            lane_n, lm_d, lm_n, dm, nm, u_ptr, dl_ptr, b_ptr, c_ptr, dy_ptr, du_ptr, ddl_ptr,
            db_ptr, dc_ptr, u_off, dl_off, dy_off, bc_off, su_p, sd_p, sb_p, sg_p, a2, bias, dsk,
            da_acc, dd_acc, dbias_acc, REV, SOFTPLUS)
        r, da_acc, dd_acc, dbias_acc = _adjoint(
            r, h0, gl.load(at + BD * TL), j * 4 + 1, first, chunk, ext_a, s_row, s_lane, lane_d,
            lane_n, lm_d, lm_n, dm, nm, u_ptr, dl_ptr, b_ptr, c_ptr, dy_ptr, du_ptr, ddl_ptr,
            db_ptr, dc_ptr, u_off, dl_off, dy_off, bc_off, su_p, sd_p, sb_p, sg_p, a2, bias, dsk,
            da_acc, dd_acc, dbias_acc, REV, SOFTPLUS)
        r, da_acc, dd_acc, dbias_acc = _adjoint(
            r, h_in, gl.load(at), j * 4, first, chunk, ext_a, s_row, s_lane, lane_d,
            lane_n, lm_d, lm_n, dm, nm, u_ptr, dl_ptr, b_ptr, c_ptr, dy_ptr, du_ptr, ddl_ptr,
            db_ptr, dc_ptr, u_off, dl_off, dy_off, bc_off, su_p, sd_p, sb_p, sg_p, a2, bias, dsk,
            da_acc, dd_acc, dbias_acc, REV, SOFTPLUS)
    gl.atomic_add(da_ptr + (k * n_ch + d_p)[:, None] * n_state + n_p[None, :],
                  gl.sum(da_acc, axis=2), mask=pm, sem='relaxed')
    if HAS_D:
        gl.atomic_add(dd_ptr + ch, gl.sum(dd_acc, axis=1), mask=dm & (nbi == 0), sem='relaxed')
    if HAS_BIAS:
        gl.atomic_add(dbias_ptr + ch, gl.sum(dbias_acc, axis=1), mask=dm, sem='relaxed')


@gluon.jit(do_not_specialize=triton_kernels._COUNTERS + ['n_items'])
def bwd_line_walk_kernel(
        u_ptr, dl_ptr, a2_ptr, b_ptr, c_ptr, dsk_ptr, bias_ptr, dy_ptr, start_ptr, rin_ptr,
        scratch_ptr, du_ptr, ddl_ptr, db_ptr, dc_ptr, da_ptr, dd_ptr, dbias_ptr, n_items,
        n_ch, n_state, ext_a, chunk, n_lanes, n_cs, n_ct, s_row, s_lane, n_lb, n_db, n_nb, k0,
        k_step, nk, su_b, su_k, su_d, su_p, sd_b, sd_k, sd_d, sd_p, sb_b, sb_k, sb_n, sb_p, sg_b,
        sg_k, sg_d, sg_p,
        NB: gl.constexpr, TL: gl.constexpr, BD: gl.constexpr, REV: gl.constexpr,
        HAS_D: gl.constexpr, HAS_BIAS: gl.constexpr, SOFTPLUS: gl.constexpr,
        HAS_START: gl.constexpr, WARPS: gl.constexpr):
    """Pass 3b for line walks; a fixed number of programs loop over the work items, each with
    its own scratch of chunk // 4 states and chunk step sizes (chunk // 4 * BD * (NB + 4) * TL
    values; each thread's BD x NB values of a state, or BD of a step, contiguous). TL must be
    32 * WARPS (one lane per thread)."""
    L3: gl.constexpr = gl.BlockedLayout([BD, NB, 1], [1, 1, 32], [1, 1, WARPS], [1, 0, 2])
    LP: gl.constexpr = gl.SliceLayout(2, L3)
    lane = gl.arange(0, TL, gl.SliceLayout(0, gl.SliceLayout(1, L3)))
    cell = ((gl.arange(0, BD, gl.SliceLayout(1, LP)) * NB)[:, None]
            + gl.arange(0, NB, gl.SliceLayout(0, LP))[None, :])[:, :, None] \
        + (lane * (BD * NB))[None, :][:, None, :]
    LD: gl.constexpr = gl.SliceLayout(1, L3)
    dcell = gl.arange(0, BD, gl.SliceLayout(1, LD))[:, None] \
        + (gl.arange(0, TL, gl.SliceLayout(0, LD)) * BD)[None, :]
    pid = gl.program_id(0)
    scratch = scratch_ptr + pid.to(gl.int64) * (chunk // 4) * (BD * (NB + 4) * TL)
    for item in range(pid, n_items, gl.num_programs(0)):
        _item(item, scratch, cell, dcell, u_ptr, dl_ptr, a2_ptr, b_ptr, c_ptr, dsk_ptr,
              bias_ptr, dy_ptr, start_ptr, rin_ptr, du_ptr, ddl_ptr, db_ptr, dc_ptr, da_ptr, dd_ptr,
              dbias_ptr, n_ch, n_state, ext_a, chunk, n_lanes, n_cs, n_ct, s_row, s_lane, n_lb,
              n_db, n_nb, k0, k_step, nk, su_b, su_k, su_d, su_p, sd_b, sd_k, sd_d, sd_p, sb_b,
              sb_k, sb_n, sb_p, sg_b, sg_k, sg_d, sg_p, L3, NB, TL, BD, REV, HAS_D, HAS_BIAS,
              SOFTPLUS, HAS_START)

