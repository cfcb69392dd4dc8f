"""Triton kernels of the chunked selective scan (imported lazily: needs triton).

Every kernel is a *walk*: a program carries the state h of BD channels x NB states x TL lanes in
registers and advances it one step at a time (h = a*h + delta*u*B, with a = exp2(A*log2(e)*delta)
in [0, 1] for A < 0; nothing is ever divided by a decay). There is no associative scan over a
tile; the parallelism comes from walking many lanes and chunks side by side. On an H100 a first
version built on tile-wise tl.associative_scan (a channel loop with masked carries) was about 6x
slower than this walk for the same passes.

The backward and the row forward go four steps at a time (a *group*). The two *families* of walk
differ only in where a group's (lane, step) positions lie in the (H, W) plane:

- rows (``COL=False``): the flat sequence cut into chunks of ``chunk`` steps; the lanes are TL
  consecutive chunks; a lane's group is one 16-byte vector (4 consecutive fp32), split in
  registers into the 4 steps. It serves the plain 1-D scan (contiguous sequences).
- columns (``COL=True``): the lanes are TL neighbouring lines of the map, a chunk is ``chunk``
  steps along them: pixel ``step * s_row + lane * s_lane``, so the same kernels walk the column
  directions (s_row = W, s_lane = 1) and the row directions (s_row = 1, s_lane = W) of SS2D.

Every tensor's pixel ``p`` lies ``p * s*_p`` elements past its (batch, group, channel) offset. SS2D
hands the kernels pixel-major maps (channels-last: the BD channels or NB states of one pixel are
contiguous), so every lane of every step reads whole 32-byte sectors in all four directions,
with no transposed or flipped copies. Walking backwards (``REV``) gives the reversed directions.
A chunk's number follows the sequence order: rows ``lane``, columns ``lane * n_cs + jc``.

Forward: pass 1 (``_row_walk_kernel`` / ``_column_walk_kernel``, EMIT_Y=False) gives each chunk's
end state from a zero start and the sum of its step sizes (its decay is exp(A * sum)); pass 2
(``_chunk_combine_kernel``) scans the chunks for every chunk's start state; pass 3 (EMIT_Y=True)
walks again from the true start and adds y (+ D u) into the merged output (atomics: four
directions and the state blocks meet there). With one chunk per sequence, passes 1 and 2 are
skipped. The column forward walks one row per step (on an H100, 0.79 ms for both column
directions at 400x600, D=80, N=16, against about 0.9 ms for groups of four rows).

Backward (g = dL/dh, g_t = C_t dy_t + a_{t+1} g_{t+1}, carried backwards as r = a*g):
pass 1b (``_bwd_summary_kernel``) and pass 2 give each chunk the r flowing in from later chunks;
pass 3b (``_bwd_walk_kernel``) walks each chunk forwards once from the start state saved by the
forward, storing every group's entry state in a per-program scratch, then backwards: per group it
reloads that state, recomputes the group's four states and runs the adjoint steps, emitting every
gradient. For line walks (the cross-scan) pass 3b runs by default as the Gluon kernel of
``gluon_kernels.py`` (same work items and results, explicit per-thread layout); this one serves
the plain scan, triton builds without Gluon, and Triton's interpreter.
"""
import triton
import triton.language as tl

LN2 = tl.constexpr(0.6931471805599453)
# Counters that vary from call to call are not specialised, so a new image size or chunking does
# not trigger a recompilation (strides stay specialised: their divisibility vectorises loads).
_COUNTERS = ['ext_a', 'chunk', 'n_lanes', 'n_cs', 'n_ct', 'n_lb', 'n_db', 'n_nb', 'k0']


@triton.jit
def _affine_combine(p1, h1, p2, h2):
    """Compose h -> p1*h + h1 then h -> p2*h + h2 (first segment, then second in scan order)."""
    return p1 * p2, p2 * h1 + h2


@triton.jit
def _decode(pid, n_nb, n_db, n_lb, n_cs, nk):
    """Program id -> (state block, channel block, lane block, chunk, group, batch).

    State and channel blocks vary fastest, so programs that share B/C and u/delta rows run side
    by side and hit L2.
    """
    nbi = pid % n_nb
    pid = pid // n_nb
    dbi = pid % n_db
    pid = pid // n_db
    lbi = pid % n_lb
    pid = pid // n_lb
    jc = pid % n_cs
    pid = pid // n_cs
    kk = pid % nk
    b = pid // nk
    return nbi, dbi, lbi, jc, kk, b


@triton.jit
def _softplus(v):
    """softplus(v) = log(1 + e^v); a series for small e^v keeps full relative precision there."""
    z = tl.exp(tl.minimum(v, 20.0))
    small = z * (1.0 - z * (0.5 - z * (0.33333333 - z * (0.25 - z * (0.2 - z * 0.16666667)))))
    return tl.where(v > 20.0, v, tl.where(z < 0.05, small, tl.log(1.0 + z)))


@triton.jit
def _split4(x):
    """(A, B, 4) -> its four (A, B) slices along the last axis."""
    even, odd = tl.split(tl.reshape(x, (x.shape[0], x.shape[1], 2, 2)))
    x0, x2 = tl.split(even)
    x1, x3 = tl.split(odd)
    return x0, x1, x2, x3


@triton.jit
def _join4(x0, x1, x2, x3):
    """Inverse of _split4."""
    both = tl.join(tl.join(x0, x2), tl.join(x1, x3))
    return tl.reshape(both, (x0.shape[0], x0.shape[1], 4))


@triton.jit
def _group(lane, jc, g, ext_a, chunk, n_lanes, s_row, s_lane, COL: tl.constexpr):
    """(TL, 4) pixel indices of group ``g`` of chunk ``jc`` for ``lane``, and their validity."""
    v = tl.arange(0, 4)
    if COL:
        row = jc * chunk + g * 4 + v
        pos = row[None, :] * s_row + lane[:, None] * s_lane
        ok = (row < ext_a)[None, :] & (lane < n_lanes)[:, None]
    else:
        pos = lane[:, None] * chunk + (g * 4 + v)[None, :]
        ok = (pos < ext_a) & (lane < n_lanes)[:, None]
    return pos, ok


@triton.jit
def _load(ptr, off, pos, pix, mask):
    """(X, TL, 4) fp32 values at row offsets ``off`` (X,) and pixels ``pos`` (TL, 4), ``pix``
    elements apart."""
    return tl.load(ptr + off[:, None, None] + pos[None, :, :] * pix, mask=mask, other=0.0).to(
        tl.float32)


@triton.jit
def _chunk_index(lane, jc, n_cs, COL: tl.constexpr):
    if COL:
        return lane * n_cs + jc
    return lane


@triton.jit
def _step_size(raw, bias, valid, SOFTPLUS: tl.constexpr):
    """delta' = softplus(raw + bias) (or raw + bias); 0 where not valid (an identity step)."""
    raw = raw + bias
    if SOFTPLUS:
        dl = _softplus(raw)
    else:
        dl = raw
    return tl.where(valid, dl, 0.0), raw


@triton.jit
def _fwd_step(h, u, raw, bv, cv, valid, a2, bias, dsk, SOFTPLUS: tl.constexpr,
              EMIT_Y: tl.constexpr, HAS_D: tl.constexpr):
    """One step for all (channel, state, lane); returns (h, y) in pass 3, (h, delta) in pass 1."""
    dl, _ = _step_size(raw, bias, valid, SOFTPLUS)
    h = tl.exp2(a2[:, :, None] * dl[:, None, :]) * h + (dl * u)[:, None, :] * bv[None, :, :]
    if EMIT_Y:
        y = tl.sum(h * cv[None, :, :], axis=1)
        if HAS_D:
            y += dsk * u
        return h, y
    return h, dl


@triton.jit
def _params(a2_ptr, bias_ptr, dsk_ptr, k, d, d_mask, n, n_mask, n_ch, n_state, nbi,
            BD: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_D: tl.constexpr):
    """A*log2(e) (BD, NB), delta bias (BD, 1) and D (BD, 1; zero outside state block 0)."""
    ch = k * n_ch + d
    a2 = tl.load(a2_ptr + ch[:, None] * n_state + n[None, :],
                 mask=d_mask[:, None] & n_mask[None, :], other=0.0)
    bias = tl.zeros((BD, 1), tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + ch, mask=d_mask, other=0.0)[:, None]
    dsk = tl.zeros((BD, 1), tl.float32)
    if HAS_D:
        dsk = tl.load(dsk_ptr + ch, mask=d_mask, other=0.0)[:, None] * (nbi == 0).to(tl.float32)
    return a2, bias, dsk


@triton.jit(do_not_specialize=_COUNTERS)
def _row_walk_kernel(
        u_ptr, dl_ptr, a2_ptr, b_ptr, c_ptr, dsk_ptr, bias_ptr, y_ptr, start_ptr, hend_ptr,
        ssum_ptr,
        n_ch, n_state, ext_a, chunk, n_lanes, n_cs, n_ct, s_row, s_lane, n_lb, n_db, n_nb, k0,
        k_step, nk, su_b, su_k, su_d, su_p, sd_b, sd_k, sd_d, sd_p, sb_b, sb_k, sb_n, sb_p,
        NB: tl.constexpr, TL: tl.constexpr, BD: tl.constexpr,
        REV: tl.constexpr, EMIT_Y: tl.constexpr, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, HAS_START: tl.constexpr):
    """Forward of the row family, pass 1 (EMIT_Y=False: end states, step sums) or pass 3 (y
    added into y_ptr), four steps per group.

    B and C share strides (sb_*); y uses u's (su_*). The next group's loads are issued before the
    current group is computed (a hand-made two-stage pipeline).
    """
    nbi, dbi, lbi, jc, kk, b = _decode(tl.program_id(0), n_nb, n_db, n_lb, n_cs, nk)
    k = k0 + kk * k_step
    d = dbi * BD + tl.arange(0, BD)
    d_mask = d < n_ch
    n = nbi * NB + tl.arange(0, NB)
    n_mask = n < n_state
    lane = lbi * TL + tl.arange(0, TL)
    l_mask = lane < n_lanes
    b64 = b.to(tl.int64)
    a2, bias, dsk = _params(a2_ptr, bias_ptr, dsk_ptr, k, d, d_mask, n, n_mask, n_ch, n_state,
                            nbi, BD, HAS_BIAS, HAS_D)
    seq = (b64 * nk + kk) * n_ch + d
    c = _chunk_index(lane, jc, n_cs, False)
    m3 = d_mask[:, None, None] & n_mask[None, :, None] & l_mask[None, None, :]
    s_ptrs = (seq[:, None, None] * n_ct + c[None, None, :]) * n_state + n[None, :, None]
    if HAS_START:
        h = tl.load(start_ptr + s_ptrs, mask=m3, other=0.0)
    else:
        h = tl.zeros((BD, NB, TL), tl.float32)
    s_acc = tl.zeros((BD, TL), tl.float32)
    u_off = b64 * su_b + k * su_k + d * su_d
    dl_off = b64 * sd_b + k * sd_k + d * sd_d
    bc_off = b64 * sb_b + k * sb_k + n * sb_n
    n_groups = chunk // 4
    if REV:
        g = n_groups - 1
    else:
        g = 0
    pos, ok = _group(lane, jc, g, ext_a, chunk, n_lanes, s_row, s_lane, False)
    um = d_mask[:, None, None] & ok[None, :, :]
    bm = n_mask[:, None, None] & ok[None, :, :]
    u_n = _load(u_ptr, u_off, pos, su_p, um)
    r_n = _load(dl_ptr, dl_off, pos, sd_p, um)
    b_n = _load(b_ptr, bc_off, pos, sb_p, bm)
    c_n = b_n
    if EMIT_Y:
        c_n = _load(c_ptr, bc_off, pos, sb_p, bm)
    for i in range(n_groups):
        if REV:
            g = n_groups - 1 - i
            g_next = g - 1
        else:
            g = i
            g_next = g + 1
        pos, ok = _group(lane, jc, g, ext_a, chunk, n_lanes, s_row, s_lane, False)
        um = d_mask[:, None, None] & ok[None, :, :]
        u4, r4, b4, c4 = u_n, r_n, b_n, c_n
        nxt, ok_n = _group(lane, jc, g_next, ext_a, chunk, n_lanes, s_row, s_lane, False)
        ok_n = ok_n & (i + 1 < n_groups)
        um_n = d_mask[:, None, None] & ok_n[None, :, :]
        bm_n = n_mask[:, None, None] & ok_n[None, :, :]
        u_n = _load(u_ptr, u_off, nxt, su_p, um_n)
        r_n = _load(dl_ptr, dl_off, nxt, sd_p, um_n)
        b_n = _load(b_ptr, bc_off, nxt, sb_p, bm_n)
        c_n = b_n
        if EMIT_Y:
            c_n = _load(c_ptr, bc_off, nxt, sb_p, bm_n)
        u0, u1, u2, u3 = _split4(u4)
        r0, r1, r2, r3 = _split4(r4)
        b0, b1, b2, b3 = _split4(b4)
        c0, c1, c2, c3 = _split4(c4)
        v0, v1, v2, v3 = _split4(tl.broadcast_to(ok[None, :, :], (BD, TL, 4)).to(tl.int8))
        if REV:
            h, y3 = _fwd_step(h, u3, r3, b3, c3, v3 != 0, a2, bias, dsk, SOFTPLUS, EMIT_Y, HAS_D)
            h, y2 = _fwd_step(h, u2, r2, b2, c2, v2 != 0, a2, bias, dsk, SOFTPLUS, EMIT_Y, HAS_D)
            h, y1 = _fwd_step(h, u1, r1, b1, c1, v1 != 0, a2, bias, dsk, SOFTPLUS, EMIT_Y, HAS_D)
            h, y0 = _fwd_step(h, u0, r0, b0, c0, v0 != 0, a2, bias, dsk, SOFTPLUS, EMIT_Y, HAS_D)
        else:
            h, y0 = _fwd_step(h, u0, r0, b0, c0, v0 != 0, a2, bias, dsk, SOFTPLUS, EMIT_Y, HAS_D)
            h, y1 = _fwd_step(h, u1, r1, b1, c1, v1 != 0, a2, bias, dsk, SOFTPLUS, EMIT_Y, HAS_D)
            h, y2 = _fwd_step(h, u2, r2, b2, c2, v2 != 0, a2, bias, dsk, SOFTPLUS, EMIT_Y, HAS_D)
            h, y3 = _fwd_step(h, u3, r3, b3, c3, v3 != 0, a2, bias, dsk, SOFTPLUS, EMIT_Y, HAS_D)
        if EMIT_Y:
            tl.atomic_add(y_ptr + u_off[:, None, None] + pos[None, :, :] * su_p,
                          _join4(y0, y1, y2, y3), mask=um, sem='relaxed')
        else:
            s_acc += y0 + y1 + y2 + y3
    if not EMIT_Y:
        tl.store(hend_ptr + s_ptrs, h, mask=m3)
        tl.store(ssum_ptr + seq[:, None] * n_ct + c[None, :], s_acc,
                 mask=d_mask[:, None] & l_mask[None, :] & (nbi == 0))


@triton.jit
def _load_row(u_ptr, dl_ptr, b_ptr, c_ptr, u_off, dl_off, bc_off, pos, su_p, sd_p, sb_p, ok,
              um, bm, EMIT_Y: tl.constexpr):
    """One step of a column walk at pixels ``pos`` (1, TL): u and raw delta (BD, TL), B and C
    (NB, TL); zeros if not ok."""
    um = um & ok
    bm = bm & ok
    u = tl.load(u_ptr + u_off[:, None] + pos * su_p, mask=um, other=0.0).to(tl.float32)
    raw = tl.load(dl_ptr + dl_off[:, None] + pos * sd_p, mask=um, other=0.0).to(tl.float32)
    bv = tl.load(b_ptr + bc_off[:, None] + pos * sb_p, mask=bm, other=0.0).to(tl.float32)
    cv = bv
    if EMIT_Y:
        cv = tl.load(c_ptr + bc_off[:, None] + pos * sb_p, mask=bm, other=0.0).to(tl.float32)
    return u, raw, bv, cv


@triton.jit(do_not_specialize=_COUNTERS)
def _column_walk_kernel(
        u_ptr, dl_ptr, a2_ptr, b_ptr, c_ptr, dsk_ptr, bias_ptr, y_ptr, start_ptr, hend_ptr,
        ssum_ptr,
        n_ch, n_state, ext_a, chunk, n_lanes, n_cs, n_ct, s_row, s_lane, n_lb, n_db, n_nb, k0,
        k_step, nk, su_b, su_k, su_d, su_p, sd_b, sd_k, sd_d, sd_p, sb_b, sb_k, sb_n, sb_p,
        NB: tl.constexpr, TL: tl.constexpr, BD: tl.constexpr,
        REV: tl.constexpr, EMIT_Y: tl.constexpr, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, HAS_START: tl.constexpr):
    """Forward of the column family, one row per step; same passes and arguments as
    ``_row_walk_kernel``. The next row's loads are issued before the current row is computed."""
    nbi, dbi, lbi, jc, kk, b = _decode(tl.program_id(0), n_nb, n_db, n_lb, n_cs, nk)
    k = k0 + kk * k_step
    d = dbi * BD + tl.arange(0, BD)
    d_mask = d < n_ch
    n = nbi * NB + tl.arange(0, NB)
    n_mask = n < n_state
    lane = lbi * TL + tl.arange(0, TL)
    l_mask = lane < n_lanes
    b64 = b.to(tl.int64)
    a2, bias, dsk = _params(a2_ptr, bias_ptr, dsk_ptr, k, d, d_mask, n, n_mask, n_ch, n_state,
                            nbi, BD, HAS_BIAS, HAS_D)
    seq = (b64 * nk + kk) * n_ch + d
    c = lane * n_cs + jc
    m3 = d_mask[:, None, None] & n_mask[None, :, None] & l_mask[None, None, :]
    s_ptrs = (seq[:, None, None] * n_ct + c[None, None, :]) * n_state + n[None, :, None]
    if HAS_START:
        h = tl.load(start_ptr + s_ptrs, mask=m3, other=0.0)
    else:
        h = tl.zeros((BD, NB, TL), tl.float32)
    s_acc = tl.zeros((BD, TL), tl.float32)
    u_off = b64 * su_b + k * su_k + d * su_d
    dl_off = b64 * sd_b + k * sd_k + d * sd_d
    bc_off = b64 * sb_b + k * sb_k + n * sb_n
    um = d_mask[:, None] & l_mask[None, :]
    bm = n_mask[:, None] & l_mask[None, :]
    lane_pos = (lane * s_lane)[None, :]
    r0 = jc * chunk
    n_rows = tl.minimum(chunk, ext_a - r0)
    if REV:
        row = r0 + n_rows - 1
    else:
        row = r0
    u_n, raw_n, b_n, c_n = _load_row(u_ptr, dl_ptr, b_ptr, c_ptr, u_off, dl_off, bc_off,
                                     row * s_row + lane_pos, su_p, sd_p, sb_p, n_rows > 0, um,
                                     bm, EMIT_Y)
    for i in range(n_rows):
        if REV:
            row = r0 + n_rows - 1 - i
            row_next = row - 1
        else:
            row = r0 + i
            row_next = row + 1
        u, raw, bv, cv = u_n, raw_n, b_n, c_n
        u_n, raw_n, b_n, c_n = _load_row(u_ptr, dl_ptr, b_ptr, c_ptr, u_off, dl_off, bc_off,
                                         row_next * s_row + lane_pos, su_p, sd_p, sb_p,
                                         i + 1 < n_rows, um, bm, EMIT_Y)
        h, y = _fwd_step(h, u, raw, bv, cv, um, a2, bias, dsk, SOFTPLUS, EMIT_Y, HAS_D)
        if EMIT_Y:
            tl.atomic_add(y_ptr + u_off[:, None] + (row * s_row + lane_pos) * su_p, y, mask=um,
                          sem='relaxed')
        else:
            s_acc += y
    if not EMIT_Y:
        tl.store(hend_ptr + s_ptrs, h, mask=m3)
        tl.store(ssum_ptr + seq[:, None] * n_ct + c[None, :], s_acc, mask=um & (nbi == 0))


@triton.jit(do_not_specialize=['n_ct', 'n_blk', 'k0', 'n_nb'])
def _chunk_combine_kernel(
        a2_ptr, ssum_ptr, local_ptr, start_ptr, n_ch, n_state, n_ct, n_blk, k0, k_step, nk, n_nb,
        NB: tl.constexpr, NCB: tl.constexpr, REV: tl.constexpr):
    """Pass 2: exclusive scan over the chunks of one sequence (in sequence order, or its
    reverse for REV): start[c] = the value entering chunk c. ``start`` must be zeroed."""
    pid = tl.program_id(0)
    nbi = pid % n_nb
    pid = pid // n_nb
    d = pid % n_ch
    pid = pid // n_ch
    kk = pid % nk
    b = pid // nk
    k = k0 + kk * k_step
    n = nbi * NB + tl.arange(0, NB)
    n_mask = n < n_state
    seq = (b.to(tl.int64) * nk + kk) * n_ch + d
    a2 = tl.load(a2_ptr + (k * n_ch + d) * n_state + n, mask=n_mask, other=0.0)
    carry = tl.zeros((NB,), tl.float32)
    rows = tl.arange(0, NCB)
    for i in range(n_blk):
        if REV:
            cb = n_blk - 1 - i
        else:
            cb = i
        c = cb * NCB + rows
        cm = c < n_ct
        ssum = tl.load(ssum_ptr + seq * n_ct + c, mask=cm, other=0.0)
        m2 = cm[:, None] & n_mask[None, :]
        local = tl.load(local_ptr + (seq * n_ct + c[:, None]) * n_state + n[None, :], mask=m2,
                        other=0.0)
        decay = tl.exp2(a2[None, :] * ssum[:, None])
        p, h = tl.associative_scan((decay, local), 0, _affine_combine, reverse=REV)
        incl = p * carry[None, :] + h
        if REV:
            tgt = c - 1
            last = rows == 0
        else:
            tgt = c + 1
            last = rows == NCB - 1
        tm = cm & (tgt >= 0) & (tgt < n_ct)
        tl.store(start_ptr + (seq * n_ct + tgt[:, None]) * n_state + n[None, :], incl,
                 mask=tm[:, None] & n_mask[None, :])
        carry = tl.sum(tl.where(last[:, None], incl, 0.0), axis=0)


@triton.jit
def _adjoint_summary_step(r, raw, cv, dy, valid, a2, bias, SOFTPLUS: tl.constexpr):
    """r <- a * (C dy + r): the adjoint carried one step backwards; returns (r, delta)."""
    dl, _ = _step_size(raw, bias, valid, SOFTPLUS)
    r = tl.exp2(a2[:, :, None] * dl[:, None, :]) * (cv[None, :, :] * dy[:, None, :] + r)
    return r, dl


@triton.jit(do_not_specialize=_COUNTERS)
def _bwd_summary_kernel(
        dl_ptr, a2_ptr, c_ptr, bias_ptr, dy_ptr, rend_ptr, ssum_ptr,
        n_ch, n_state, ext_a, chunk, n_lanes, n_cs, n_ct, s_row, s_lane, n_lb, n_db, n_nb, k0,
        k_step, nk, sd_b, sd_k, sd_d, sd_p, sb_b, sb_k, sb_n, sb_p, sg_b, sg_k, sg_d, sg_p,
        NB: tl.constexpr, TL: tl.constexpr, BD: tl.constexpr, COL: tl.constexpr,
        REV: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """Pass 1b: the r = a * g that each chunk sends to the chunk before it, from a zero input."""
    nbi, dbi, lbi, jc, kk, b = _decode(tl.program_id(0), n_nb, n_db, n_lb, n_cs, nk)
    k = k0 + kk * k_step
    d = dbi * BD + tl.arange(0, BD)
    d_mask = d < n_ch
    n = nbi * NB + tl.arange(0, NB)
    n_mask = n < n_state
    lane = lbi * TL + tl.arange(0, TL)
    l_mask = lane < n_lanes
    b64 = b.to(tl.int64)
    a2, bias, _ = _params(a2_ptr, bias_ptr, bias_ptr, k, d, d_mask, n, n_mask, n_ch, n_state,
                          nbi, BD, HAS_BIAS, False)
    seq = (b64 * nk + kk) * n_ch + d
    c = _chunk_index(lane, jc, n_cs, COL)
    r = tl.zeros((BD, NB, TL), tl.float32)
    s_acc = tl.zeros((BD, TL), tl.float32)
    dl_off = b64 * sd_b + k * sd_k + d * sd_d
    dy_off = b64 * sg_b + k * sg_k + d * sg_d
    c_off = b64 * sb_b + k * sb_k + n * sb_n
    n_groups = chunk // 4
    for i in range(n_groups):
        if REV:
            g = i
        else:
            g = n_groups - 1 - i
        pos, ok = _group(lane, jc, g, ext_a, chunk, n_lanes, s_row, s_lane, COL)
        um = d_mask[:, None, None] & ok[None, :, :]
        r0, r1, r2, r3 = _split4(_load(dl_ptr, dl_off, pos, sd_p, um))
        y0, y1, y2, y3 = _split4(_load(dy_ptr, dy_off, pos, sg_p, um))
        c0, c1, c2, c3 = _split4(_load(c_ptr, c_off, pos, sb_p,
                                       n_mask[:, None, None] & ok[None, :, :]))
        v0, v1, v2, v3 = _split4(tl.broadcast_to(ok[None, :, :], (BD, TL, 4)).to(tl.int8))
        if REV:
            r, e0 = _adjoint_summary_step(r, r0, c0, y0, v0 != 0, a2, bias, SOFTPLUS)
            r, e1 = _adjoint_summary_step(r, r1, c1, y1, v1 != 0, a2, bias, SOFTPLUS)
            r, e2 = _adjoint_summary_step(r, r2, c2, y2, v2 != 0, a2, bias, SOFTPLUS)
            r, e3 = _adjoint_summary_step(r, r3, c3, y3, v3 != 0, a2, bias, SOFTPLUS)
        else:
            r, e3 = _adjoint_summary_step(r, r3, c3, y3, v3 != 0, a2, bias, SOFTPLUS)
            r, e2 = _adjoint_summary_step(r, r2, c2, y2, v2 != 0, a2, bias, SOFTPLUS)
            r, e1 = _adjoint_summary_step(r, r1, c1, y1, v1 != 0, a2, bias, SOFTPLUS)
            r, e0 = _adjoint_summary_step(r, r0, c0, y0, v0 != 0, a2, bias, SOFTPLUS)
        s_acc += e0 + e1 + e2 + e3
    m3 = d_mask[:, None, None] & n_mask[None, :, None] & l_mask[None, None, :]
    tl.store(rend_ptr + ((seq[:, None, None] * n_ct + c[None, None, :]) * n_state
                         + n[None, :, None]), r, mask=m3)
    tl.store(ssum_ptr + seq[:, None] * n_ct + c[None, :], s_acc,
             mask=d_mask[:, None] & l_mask[None, :] & (nbi == 0))


@triton.jit
def _bwd_step(r, h_prev, u, raw, bv, cv, dy, valid, a2, bias, dsk, da_acc, dd_acc, dbias_acc,
              SOFTPLUS: tl.constexpr):
    """One adjoint step at t (walking backwards), given h_{t-1} and r = a_{t+1} g_{t+1}.

    Returns r for step t-1, the step's du, ddelta (BD, TL), dB, dC (NB, TL) and the updated
    accumulators of dA (BD, NB, TL), dD and ddelta_bias (BD, TL); and h_t is not needed: the
    terms that use the state take a_t h_{t-1} and h_t = a_t h_{t-1} + delta u B.
    """
    dl, raw = _step_size(raw, bias, valid, SOFTPLUS)
    a = tl.exp2(a2[:, :, None] * dl[:, None, :])
    ah = a * h_prev
    h = ah + (dl * u)[:, None, :] * bv[None, :, :]
    g = cv[None, :, :] * dy[:, None, :] + r
    gb = tl.sum(g * bv[None, :, :], axis=1)
    du = gb * dl + dsk * dy
    ddl = tl.sum(g * ah * (a2 * LN2)[:, :, None], axis=1) + gb * u
    if SOFTPLUS:
        ddl = ddl / (1.0 + tl.exp(-raw))
    ddl = tl.where(valid, ddl, 0.0)
    d_b = tl.sum(g * (dl * u)[:, None, :], axis=0)
    d_c = tl.sum(h * dy[:, None, :], axis=0)
    da_acc += g * ah * dl[:, None, :]
    dd_acc += dy * u
    dbias_acc += ddl
    return a * g, du, ddl, d_b, d_c, da_acc, dd_acc, dbias_acc


@triton.jit
def _recompute_step(h, u, raw, bv, valid, a2, bias, SOFTPLUS: tl.constexpr):
    dl, _ = _step_size(raw, bias, valid, SOFTPLUS)
    return tl.exp2(a2[:, :, None] * dl[:, None, :]) * h + (dl * u)[:, None, :] * bv[None, :, :]


@triton.jit
def _bwd_item(item, scratch, u_ptr, dl_ptr, a2_ptr, b_ptr, c_ptr, dsk_ptr, bias_ptr, dy_ptr,
              start_ptr, rin_ptr, du_ptr, ddl_ptr, db_ptr, dc_ptr, da_ptr, dd_ptr, dbias_ptr,
              n_ch, n_state, ext_a, chunk, n_lanes, n_cs, n_ct, s_row, s_lane, n_lb, n_db, n_nb,
              k0, k_step, nk, su_b, su_k, su_d, su_p, sd_b, sd_k, sd_d, sd_p, sb_b, sb_k, sb_n,
              sb_p, sg_b, sg_k, sg_d, sg_p,
              NB: tl.constexpr, TL: tl.constexpr, BD: tl.constexpr, COL: tl.constexpr,
              REV: tl.constexpr, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr,
              SOFTPLUS: tl.constexpr, HAS_START: tl.constexpr):
    """Every gradient of one work item (chunk x lanes x states x channels)."""
    nbi, dbi, lbi, jc, kk, b = _decode(item, n_nb, n_db, n_lb, n_cs, nk)
    k = k0 + kk * k_step
    d = dbi * BD + tl.arange(0, BD)
    d_mask = d < n_ch
    n = nbi * NB + tl.arange(0, NB)
    n_mask = n < n_state
    lane = lbi * TL + tl.arange(0, TL)
    l_mask = lane < n_lanes
    b64 = b.to(tl.int64)
    a2, bias, dsk = _params(a2_ptr, bias_ptr, dsk_ptr, k, d, d_mask, n, n_mask, n_ch, n_state,
                            nbi, BD, HAS_BIAS, HAS_D)
    seq = (b64 * nk + kk) * n_ch + d
    c = _chunk_index(lane, jc, n_cs, COL)
    m3 = d_mask[:, None, None] & n_mask[None, :, None] & l_mask[None, None, :]
    s_ptrs = (seq[:, None, None] * n_ct + c[None, None, :]) * n_state + n[None, :, None]
    if HAS_START:
        h = tl.load(start_ptr + s_ptrs, mask=m3, other=0.0)
        r = tl.load(rin_ptr + s_ptrs, mask=m3, other=0.0)
    else:
        h = tl.zeros((BD, NB, TL), tl.float32)
        r = tl.zeros((BD, NB, TL), tl.float32)
    u_off = b64 * su_b + k * su_k + d * su_d
    dl_off = b64 * sd_b + k * sd_k + d * sd_d
    dy_off = b64 * sg_b + k * sg_k + d * sg_d
    bc_off = b64 * sb_b + k * sb_k + n * sb_n
    bm_all = n_mask[:, None, None]
    n_groups = chunk // 4
    # forward sweep: the state entering every group, in scan order
    for i in range(n_groups):
        if REV:
            g = n_groups - 1 - i
        else:
            g = i
        tl.store(scratch + g * (BD * NB * TL), h)
        pos, ok = _group(lane, jc, g, ext_a, chunk, n_lanes, s_row, s_lane, COL)
        um = d_mask[:, None, None] & ok[None, :, :]
        u0, u1, u2, u3 = _split4(_load(u_ptr, u_off, pos, su_p, um))
        r0, r1, r2, r3 = _split4(_load(dl_ptr, dl_off, pos, sd_p, um))
        b0, b1, b2, b3 = _split4(_load(b_ptr, bc_off, pos, sb_p, bm_all & ok[None, :, :]))
        v0, v1, v2, v3 = _split4(tl.broadcast_to(ok[None, :, :], (BD, TL, 4)).to(tl.int8))
        if REV:
            h = _recompute_step(h, u3, r3, b3, v3 != 0, a2, bias, SOFTPLUS)
            h = _recompute_step(h, u2, r2, b2, v2 != 0, a2, bias, SOFTPLUS)
            h = _recompute_step(h, u1, r1, b1, v1 != 0, a2, bias, SOFTPLUS)
            h = _recompute_step(h, u0, r0, b0, v0 != 0, a2, bias, SOFTPLUS)
        else:
            h = _recompute_step(h, u0, r0, b0, v0 != 0, a2, bias, SOFTPLUS)
            h = _recompute_step(h, u1, r1, b1, v1 != 0, a2, bias, SOFTPLUS)
            h = _recompute_step(h, u2, r2, b2, v2 != 0, a2, bias, SOFTPLUS)
            h = _recompute_step(h, u3, r3, b3, v3 != 0, a2, bias, SOFTPLUS)
    tl.debug_barrier()
    da_acc = tl.zeros((BD, NB, TL), tl.float32)
    dd_acc = tl.zeros((BD, TL), tl.float32)
    dbias_acc = tl.zeros((BD, TL), tl.float32)
    # backward sweep: per group, recompute its four states, then the adjoint steps
    for i in range(n_groups):
        if REV:
            g = i
        else:
            g = n_groups - 1 - i
        pos, ok = _group(lane, jc, g, ext_a, chunk, n_lanes, s_row, s_lane, COL)
        um = d_mask[:, None, None] & ok[None, :, :]
        bm = bm_all & ok[None, :, :]
        u0, u1, u2, u3 = _split4(_load(u_ptr, u_off, pos, su_p, um))
        r0, r1, r2, r3 = _split4(_load(dl_ptr, dl_off, pos, sd_p, um))
        y0, y1, y2, y3 = _split4(_load(dy_ptr, dy_off, pos, sg_p, um))
        b0, b1, b2, b3 = _split4(_load(b_ptr, bc_off, pos, sb_p, bm))
        c0, c1, c2, c3 = _split4(_load(c_ptr, bc_off, pos, sb_p, bm))
        v0, v1, v2, v3 = _split4(tl.broadcast_to(ok[None, :, :], (BD, TL, 4)).to(tl.int8))
        h_in = tl.load(scratch + g * (BD * NB * TL))
        if REV:
            h2 = _recompute_step(h_in, u3, r3, b3, v3 != 0, a2, bias, SOFTPLUS)
            h1 = _recompute_step(h2, u2, r2, b2, v2 != 0, a2, bias, SOFTPLUS)
            h0 = _recompute_step(h1, u1, r1, b1, v1 != 0, a2, bias, SOFTPLUS)
            r, du0, dd0, db0, dc0, da_acc, dd_acc, dbias_acc = _bwd_step(
                r, h0, u0, r0, b0, c0, y0, v0 != 0, a2, bias, dsk, da_acc, dd_acc, dbias_acc,
                SOFTPLUS)
            r, du1, dd1, db1, dc1, da_acc, dd_acc, dbias_acc = _bwd_step(
                r, h1, u1, r1, b1, c1, y1, v1 != 0, a2, bias, dsk, da_acc, dd_acc, dbias_acc,
                SOFTPLUS)
            r, du2, dd2, db2, dc2, da_acc, dd_acc, dbias_acc = _bwd_step(
                r, h2, u2, r2, b2, c2, y2, v2 != 0, a2, bias, dsk, da_acc, dd_acc, dbias_acc,
                SOFTPLUS)
            r, du3, dd3, db3, dc3, da_acc, dd_acc, dbias_acc = _bwd_step(
                r, h_in, u3, r3, b3, c3, y3, v3 != 0, a2, bias, dsk, da_acc, dd_acc, dbias_acc,
                SOFTPLUS)
        else:
            h0 = _recompute_step(h_in, u0, r0, b0, v0 != 0, a2, bias, SOFTPLUS)
            h1 = _recompute_step(h0, u1, r1, b1, v1 != 0, a2, bias, SOFTPLUS)
            h2 = _recompute_step(h1, u2, r2, b2, v2 != 0, a2, bias, SOFTPLUS)
            r, du3, dd3, db3, dc3, da_acc, dd_acc, dbias_acc = _bwd_step(
                r, h2, u3, r3, b3, c3, y3, v3 != 0, a2, bias, dsk, da_acc, dd_acc, dbias_acc,
                SOFTPLUS)
            r, du2, dd2, db2, dc2, da_acc, dd_acc, dbias_acc = _bwd_step(
                r, h1, u2, r2, b2, c2, y2, v2 != 0, a2, bias, dsk, da_acc, dd_acc, dbias_acc,
                SOFTPLUS)
            r, du1, dd1, db1, dc1, da_acc, dd_acc, dbias_acc = _bwd_step(
                r, h0, u1, r1, b1, c1, y1, v1 != 0, a2, bias, dsk, da_acc, dd_acc, dbias_acc,
                SOFTPLUS)
            r, du0, dd0, db0, dc0, da_acc, dd_acc, dbias_acc = _bwd_step(
                r, h_in, u0, r0, b0, c0, y0, v0 != 0, a2, bias, dsk, da_acc, dd_acc, dbias_acc,
                SOFTPLUS)
        tl.atomic_add(du_ptr + u_off[:, None, None] + pos[None, :, :] * su_p,
                      _join4(du0, du1, du2, du3), mask=um, sem='relaxed')
        tl.atomic_add(ddl_ptr + dl_off[:, None, None] + pos[None, :, :] * sd_p,
                      _join4(dd0, dd1, dd2, dd3), mask=um, sem='relaxed')
        tl.atomic_add(db_ptr + bc_off[:, None, None] + pos[None, :, :] * sb_p,
                      _join4(db0, db1, db2, db3), mask=bm, sem='relaxed')
        tl.atomic_add(dc_ptr + bc_off[:, None, None] + pos[None, :, :] * sb_p,
                      _join4(dc0, dc1, dc2, dc3), mask=bm, sem='relaxed')
    ch = k * n_ch + d
    dm2 = d_mask[:, None] & n_mask[None, :]
    tl.atomic_add(da_ptr + ch[:, None] * n_state + n[None, :], tl.sum(da_acc, axis=2), mask=dm2,
                  sem='relaxed')
    if HAS_D:
        tl.atomic_add(dd_ptr + ch, tl.sum(dd_acc, axis=1), mask=d_mask & (nbi == 0),
                      sem='relaxed')
    if HAS_BIAS:
        tl.atomic_add(dbias_ptr + ch, tl.sum(dbias_acc, axis=1), mask=d_mask, sem='relaxed')
    tl.debug_barrier()


@triton.jit(do_not_specialize=_COUNTERS + ['n_items'])
def _bwd_walk_kernel(
        u_ptr, dl_ptr, a2_ptr, b_ptr, c_ptr, dsk_ptr, bias_ptr, dy_ptr, start_ptr, rin_ptr,
        scratch_ptr, du_ptr, ddl_ptr, db_ptr, dc_ptr, da_ptr, dd_ptr, dbias_ptr, n_items,
        n_ch, n_state, ext_a, chunk, n_lanes, n_cs, n_ct, s_row, s_lane, n_lb, n_db, n_nb, k0,
        k_step, nk, su_b, su_k, su_d, su_p, sd_b, sd_k, sd_d, sd_p, sb_b, sb_k, sb_n, sb_p, sg_b,
        sg_k, sg_d, sg_p,
        NB: tl.constexpr, TL: tl.constexpr, BD: tl.constexpr, COL: tl.constexpr,
        REV: tl.constexpr, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr, HAS_START: tl.constexpr):
    """Pass 3b: a fixed number of programs loop over the work items, each reusing its own
    ``scratch`` of chunk // 4 states (BD, NB, TL), so the scratch stays small and in L2.
    du/ddelta use u's and delta's strides, dB/dC B's, dy sg_*; all are fp32 and zeroed."""
    pid = tl.program_id(0)
    cell = (tl.arange(0, BD)[:, None, None] * NB + tl.arange(0, NB)[None, :, None]) * TL \
        + tl.arange(0, TL)[None, None, :]
    scratch = scratch_ptr + pid.to(tl.int64) * (chunk // 4) * (BD * NB * TL) + cell
    for item in range(pid, n_items, tl.num_programs(0)):
        _bwd_item(item, scratch, u_ptr, dl_ptr, a2_ptr, b_ptr, c_ptr, dsk_ptr, bias_ptr, dy_ptr,
                  start_ptr, rin_ptr, du_ptr, ddl_ptr, db_ptr, dc_ptr, da_ptr, dd_ptr,
                  dbias_ptr, n_ch, n_state, ext_a, chunk, n_lanes, n_cs, n_ct, s_row, s_lane,
                  n_lb, n_db, n_nb, k0, k_step, nk, su_b, su_k, su_d, su_p, sd_b, sd_k, sd_d,
                  sd_p, sb_b, sb_k, sb_n, sb_p, sg_b, sg_k, sg_d, sg_p, NB, TL, BD, COL, REV,
                  HAS_D, HAS_BIAS, SOFTPLUS, HAS_START)
