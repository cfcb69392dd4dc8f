/* The ``cpu`` backend's kernels: the selective scan's forward and backward as compiled walks.
 *
 * Why compiled: the torch backend needs several whole-block passes per element (decays, inputs,
 * recurrence, contraction; ~2 ns per (step, channel, state) on a 2-core EPYC), bound by memory
 * traffic and call overhead. Here a walk keeps a group of channels' states in L1 and does
 * everything for a step while its inputs are in cache.
 *
 * Directions are described by a geometry (lines x steps per line, element strides), which
 * covers the flat contract (one line, K groups as directions) and SS2D's four reading orders of
 * one map (row-/column-major and their reverses: negative strides from the last pixel).
 *
 * Forward, per step: a = 2^(delta A log2 e) (own vector exp2, <= 1e-7 relative error),
 * h = a h + delta u B, y += <C, h>. Work item: (batch, group of channels); it walks every
 * direction in turn and adds into y, so no two items write the same element.
 *
 * Backward: work item (batch, direction), so the gradients of B and C (sums over channels) have
 * one writer. Per group of channels: a forward pass keeps the state entering every segment of
 * ~sqrt(L) steps; then, segment by segment from the end, the segment's states and decays are
 * recomputed and the adjoint g_t = C_t dy_t + a_{t+1} g_{t+1} runs back through it.
 *
 * Accumulation is fp32, as in the contract. Compiled at first use by cpu_scan.py with the
 * machine's C compiler (-O3 -march=native); GCC vector extensions, no intrinsics.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 8
#define MAX_DIRECTIONS 64
#define MAX_THREADS 256
#define MAX_GROUP 8            /* vectors of 8 channels per forward walk */
#define BACKWARD_VECTORS 64    /* states x channel vectors per backward walk (its buffers) */

typedef float vfloat __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t vint __attribute__((vector_size(LANES * sizeof(float))));
typedef float vfloat_unaligned __attribute__((vector_size(LANES * sizeof(float)), aligned(4)));

/* Keep in sync with cpu_scan.py (_Geometry, _Args, _TENSORS). Strides and offsets count
 * elements. Channels are contiguous in A and the bias; in delta, u, y and their gradients they
 * are read as vectors where contiguous and gathered otherwise. */
enum { DELTA, U, B_IN, C_IN, Y, D_DELTA, D_U, D_B, D_C, D_Y, TENSORS };

struct geometry {
    int64_t lines, steps;             /* a direction reads lines x steps positions */
    int64_t offset[TENSORS];          /* element offset of its first position */
    int64_t line_stride[TENSORS];
    int64_t step_stride[TENSORS];
};

struct args {
    int64_t batch, channels, state, directions, threads;
    float *data[TENSORS];             /* inputs, y; the backward's gradients (NULL forward) */
    int64_t batch_stride[TENSORS];
    int64_t inner_stride[TENSORS];    /* channels of delta, u, y; states of B, C (and grads) */
    const float *a2;                  /* (directions, state, channels): A * log2(e) */
    const float *delta_bias;          /* (directions, channels), or NULL */
    int64_t softplus;                 /* delta' = softplus(delta + bias), else delta + bias */
    float *d_A;                       /* backward: (batch, directions, state, channels) */
    const struct geometry *geometry;  /* one per direction */
};

static inline vfloat splat(float x) { return (vfloat){0} + x; }

static inline vfloat blend(vint mask, vfloat yes, vfloat no)
{
    return (vfloat)(((vint)yes & mask) | ((vint)no & ~mask));
}

/* 2^x for vectors: x = n + f with n = round(x), |f| <= 1/2; 2^f by a degree-6 polynomial
 * (relative-error fit, 9.6e-8 max in fp32), 2^n by the exponent bits. x is clamped to
 * [-126, 128]: below, 2^-126 stands in for smaller decays (1.2e-38); 128 gives inf. NaN stays
 * NaN. */
static inline vfloat exp2v(vfloat x)
{
    const vfloat lo = splat(-126.0f), hi = splat(128.0f), magic = splat(12582912.0f);
    x = blend(x < lo, lo, x);
    x = blend(x > hi, hi, x);
    vfloat shifted = x + magic;                    /* round(x) lands in the low mantissa bits */
    vint n = (vint)shifted - 0x4B400000;
    vfloat f = x - (shifted - magic);
    vfloat p = splat(1.5345812e-4f);
    p = p * f + 1.3399931e-3f;
    p = p * f + 9.6184891e-3f;
    p = p * f + 5.5503286e-2f;
    p = p * f + 2.4022646e-1f;
    p = p * f + 6.9314718e-1f;
    p = p * f + 1.0f;
    return p * (vfloat)((n + 127) << 23);
}

/* log(1 + exp(x)) as max(x, 0) + log1p(e), e = exp(-|x|) in (0, 1], with
 * log1p(e) = 2 atanh(s), s = e / (2 + e) in (0, 1/3] (no cancellation for small e), by its
 * series to s^11 (relative error < 1e-7). Agrees with PyTorch's softplus (threshold 20).
 * ``slope`` gets its derivative, sigmoid(x) = 1 / (1 + e) or e / (1 + e), from the same e. */
static inline vfloat softplus(vfloat x, vfloat *slope)
{
    const vfloat zero = splat(0.0f);
    const vint positive = x > zero;
    vfloat e = exp2v(blend(positive, -x, x) * 1.44269504f);
    if (slope)
        *slope = blend(positive, splat(1.0f), e) / (e + 1.0f);
    vfloat s = e / (e + 2.0f), s2 = s * s;
    vfloat p = splat(1.0f / 11.0f);
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return blend(positive, x, zero) + 2.0f * s * p;
}

static inline float lane_sum(vfloat v)
{
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
    v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5);
    return v[0] + v[1];
}

/* ``lanes`` channels from p (the rest zero); one vector move for a full block */
static inline vfloat load(const float *p, int64_t lanes)
{
    if (lanes == LANES)
        return *(const vfloat_unaligned *)p;
    vfloat v = {0};
    memcpy(&v, p, (size_t)lanes * sizeof(float));
    return v;
}

static inline void store(float *p, vfloat v, int64_t lanes)
{
    if (lanes == LANES)
        *(vfloat_unaligned *)p = v;
    else
        memcpy(p, &v, (size_t)lanes * sizeof(float));
}

/* ``lanes`` channels ``stride`` elements apart */
static inline vfloat load_channels(const float *p, int64_t stride, int64_t lanes)
{
    if (stride == 1)
        return load(p, lanes);
    vfloat v = {0};
    for (int64_t i = 0; i < lanes; ++i)
        v[i] = p[i * stride];
    return v;
}

static inline void store_channels(float *p, int64_t stride, vfloat v, int64_t lanes)
{
    if (stride == 1) {
        store(p, v, lanes);
        return;
    }
    for (int64_t i = 0; i < lanes; ++i)
        p[i * stride] = v[i];
}

/* Element offset of tensor i at (batch b, first channel c0, step t of direction g). */
static inline int64_t position(const struct args *a, const struct geometry *g, int i, int64_t b,
                               int64_t c0, int64_t t)
{
    const int64_t line = t / g->steps, step = t - line * g->steps;
    return g->offset[i] + b * a->batch_stride[i] + c0 * a->inner_stride[i] +
           line * g->line_stride[i] + step * g->step_stride[i];
}

/* What a walk over channels c0 .. c0 + 8 * vectors - 1 keeps per vector j: how many channels
 * it holds (the last may be partial) and their delta bias. */
struct channels {
    int64_t c0, vectors, lanes[MAX_GROUP];
    vfloat bias[MAX_GROUP];
};

static inline void channels_init(struct channels *ch, const float *delta_bias, int64_t c0,
                                 int64_t vectors, int64_t last_lanes)
{
    ch->c0 = c0;
    ch->vectors = vectors;
    for (int64_t j = 0; j < vectors; ++j) {
        ch->lanes[j] = j == vectors - 1 ? last_lanes : LANES;
        ch->bias[j] = delta_bias ? load(delta_bias + c0 + j * LANES, ch->lanes[j]) : splat(0.0f);
    }
}

/* delta' (and its slope d delta' / d delta) of vector j, the step's delta at p */
static inline vfloat step_size(const struct args *a, const struct channels *ch, int64_t j,
                               const float *p, vfloat *slope)
{
    const int64_t cd = a->inner_stride[DELTA];
    vfloat z = load_channels(p + j * LANES * cd, cd, ch->lanes[j]) + ch->bias[j];
    if (a->softplus)
        return softplus(z, slope);
    if (slope)
        *slope = splat(1.0f);
    return z;
}

/* Direction k's decay rates (state, channels) and delta bias (channels, or NULL). */
static inline const float *rates_of(const struct args *a, int64_t k)
{
    return a->a2 + k * a->state * a->channels;
}

static inline const float *bias_of(const struct args *a, int64_t k)
{
    return a->delta_bias ? a->delta_bias + k * a->channels : NULL;
}

/* ----------------------------------------------------------------------------- forward */
/* Direction k's walk for one (batch, group of channels). STATE and ``last_lanes`` are
 * constants in the specialisations below. */
static inline __attribute__((always_inline)) void walk(const struct args *a, int64_t k,
                                                        int64_t b, int64_t c0, int64_t vectors,
                                                        const int64_t STATE,
                                                        const int64_t last_lanes)
{
    const struct geometry *g = &a->geometry[k];
    const float *a2 = rates_of(a, k);
    struct channels ch;
    channels_init(&ch, bias_of(a, k), c0, vectors, last_lanes);
    vfloat h[STATE][MAX_GROUP], decay_rate[STATE][MAX_GROUP];
    for (int64_t j = 0; j < vectors; ++j)
        for (int64_t n = 0; n < STATE; ++n) {
            h[n][j] = splat(0.0f);
            decay_rate[n][j] = load(a2 + n * a->channels + c0 + j * LANES, ch.lanes[j]);
        }
    const int64_t sb = a->inner_stride[B_IN], sc = a->inner_stride[C_IN];
    const int64_t cu = a->inner_stride[U], cy = a->inner_stride[Y];
    for (int64_t line = 0; line < g->lines; ++line) {
        const int64_t t0 = line * g->steps;
        const float *delta = a->data[DELTA] + position(a, g, DELTA, b, c0, t0);
        const float *u = a->data[U] + position(a, g, U, b, c0, t0);
        const float *B = a->data[B_IN] + position(a, g, B_IN, b, 0, t0);
        const float *C = a->data[C_IN] + position(a, g, C_IN, b, 0, t0);
        float *y = a->data[Y] + position(a, g, Y, b, c0, t0);
        for (int64_t step = 0; step < g->steps; ++step) {
            vfloat dt[MAX_GROUP], du[MAX_GROUP], out[MAX_GROUP];
            for (int64_t j = 0; j < vectors; ++j) {
                dt[j] = step_size(a, &ch, j, delta, NULL);
                du[j] = dt[j] * load_channels(u + j * LANES * cu, cu, ch.lanes[j]);
                out[j] = load_channels(y + j * LANES * cy, cy, ch.lanes[j]);
            }
            for (int64_t n = 0; n < STATE; ++n) {
                const float b_n = B[n * sb], c_n = C[n * sc];
                for (int64_t j = 0; j < vectors; ++j) {
                    h[n][j] = exp2v(dt[j] * decay_rate[n][j]) * h[n][j] + du[j] * b_n;
                    out[j] += c_n * h[n][j];
                }
            }
            for (int64_t j = 0; j < vectors; ++j)
                store_channels(y + j * LANES * cy, cy, out[j], ch.lanes[j]);
            delta += g->step_stride[DELTA];
            u += g->step_stride[U];
            B += g->step_stride[B_IN];
            C += g->step_stride[C_IN];
            y += g->step_stride[Y];
        }
    }
}

/* ---------------------------------------------------------------------------- backward */
/* Buffers of one backward walk, as vectors [index][n][j] (index: segment or step). */
#define AT(buffer, index, n, j) (buffer)[((index) * STATE + (n)) * vectors + (j)]

/* Advance the states h over step t (forward recurrence); keep states and decays at ``slot``
 * of ``states``/``decays`` when given. */
static inline __attribute__((always_inline)) void advance(
    const struct args *a, const struct geometry *g, const struct channels *ch,
    const vfloat *rate, int64_t b, int64_t t, vfloat *h, vfloat *states, vfloat *decays,
    int64_t slot, const int64_t STATE)
{
    const int64_t vectors = ch->vectors, c0 = ch->c0, cu = a->inner_stride[U];
    const float *delta = a->data[DELTA] + position(a, g, DELTA, b, c0, t);
    const float *u = a->data[U] + position(a, g, U, b, c0, t);
    const float *B = a->data[B_IN] + position(a, g, B_IN, b, 0, t);
    vfloat dt[MAX_GROUP], du[MAX_GROUP];
    for (int64_t j = 0; j < vectors; ++j) {
        dt[j] = step_size(a, ch, j, delta, NULL);
        du[j] = dt[j] * load_channels(u + j * LANES * cu, cu, ch->lanes[j]);
    }
    for (int64_t n = 0; n < STATE; ++n) {
        const float b_n = B[n * a->inner_stride[B_IN]];
        for (int64_t j = 0; j < vectors; ++j) {
            const vfloat decay = exp2v(dt[j] * rate[n * vectors + j]);
            h[n * vectors + j] = decay * h[n * vectors + j] + du[j] * b_n;
            if (states) {
                AT(states, slot, n, j) = h[n * vectors + j];
                AT(decays, slot, n, j) = decay;
            }
        }
    }
}

/* One step of the adjoint, backwards: g = C_t dy_t + carry (carry: a_{t+1} g_{t+1}); writes
 * the gradients of delta and u at t, adds those of B_t and C_t, and accumulates A's. */
static inline __attribute__((always_inline)) void adjoint_step(
    const struct args *a, const struct geometry *g, const struct channels *ch,
    const vfloat *a_natural, int64_t b, int64_t t, const vfloat *h_t, const vfloat *h_before,
    const vfloat *decay_t, vfloat *carry, vfloat *grad_a, const int64_t STATE)
{
    const int64_t vectors = ch->vectors, c0 = ch->c0;
    const int64_t cu = a->inner_stride[U], cdy = a->inner_stride[D_Y];
    const float *delta = a->data[DELTA] + position(a, g, DELTA, b, c0, t);
    const float *u = a->data[U] + position(a, g, U, b, c0, t);
    const float *B = a->data[B_IN] + position(a, g, B_IN, b, 0, t);
    const float *C = a->data[C_IN] + position(a, g, C_IN, b, 0, t);
    const float *dy = a->data[D_Y] + position(a, g, D_Y, b, c0, t);
    float *d_B = a->data[D_B] + position(a, g, D_B, b, 0, t);
    float *d_C = a->data[D_C] + position(a, g, D_C, b, 0, t);
    vfloat dt[MAX_GROUP], slope[MAX_GROUP], uu[MAX_GROUP], du[MAX_GROUP], gy[MAX_GROUP];
    vfloat g_b[MAX_GROUP], g_dt[MAX_GROUP];
    for (int64_t j = 0; j < vectors; ++j) {
        dt[j] = step_size(a, ch, j, delta, &slope[j]);
        uu[j] = load_channels(u + j * LANES * cu, cu, ch->lanes[j]);
        du[j] = dt[j] * uu[j];
        gy[j] = load_channels(dy + j * LANES * cdy, cdy, ch->lanes[j]);
        g_b[j] = g_dt[j] = splat(0.0f);
    }
    for (int64_t n = 0; n < STATE; ++n) {
        const float b_n = B[n * a->inner_stride[B_IN]], c_n = C[n * a->inner_stride[C_IN]];
        vfloat sum_c = splat(0.0f), sum_b = splat(0.0f);
        for (int64_t j = 0; j < vectors; ++j) {
            const int64_t i = n * vectors + j;
            const vfloat adjoint = c_n * gy[j] + carry[i];
            const vfloat q = adjoint * h_before[i] * decay_t[i];   /* d loss / d log(decay) */
            sum_c += h_t[i] * gy[j];
            sum_b += adjoint * du[j];
            g_b[j] += adjoint * b_n;
            g_dt[j] += q * a_natural[i];
            grad_a[i] += q * dt[j];
            carry[i] = decay_t[i] * adjoint;
        }
        d_C[n * a->inner_stride[D_C]] += lane_sum(sum_c);
        d_B[n * a->inner_stride[D_B]] += lane_sum(sum_b);
    }
    const int64_t cdd = a->inner_stride[D_DELTA], cdu = a->inner_stride[D_U];
    float *d_delta = a->data[D_DELTA] + position(a, g, D_DELTA, b, c0, t);
    float *d_u = a->data[D_U] + position(a, g, D_U, b, c0, t);
    for (int64_t j = 0; j < vectors; ++j) {
        store_channels(d_u + j * LANES * cdu, cdu, dt[j] * g_b[j], ch->lanes[j]);
        store_channels(d_delta + j * LANES * cdd, cdd, (g_dt[j] + uu[j] * g_b[j]) * slope[j],
                       ch->lanes[j]);
    }
}

/* The backward of direction k for one (batch, group of channels); 0, or -1 when out of
 * memory. Gradients of A go to d_A (state, channels) of this (batch, direction). */
static inline __attribute__((always_inline)) int backward_walk(
    const struct args *a, int64_t k, int64_t b, int64_t c0, int64_t vectors,
    const int64_t STATE, const int64_t last_lanes)
{
    const struct geometry *g = &a->geometry[k];
    const float *a2 = rates_of(a, k);
    float *d_A = a->d_A + (b * a->directions + k) * STATE * a->channels;
    struct channels ch;
    channels_init(&ch, bias_of(a, k), c0, vectors, last_lanes);
    const int64_t length = g->lines * g->steps;
    int64_t segment = 16;                              /* ~sqrt(length), at least 16 */
    while ((segment + 1) * (segment + 1) <= length)
        ++segment;
    const int64_t segments = (length + segment - 1) / segment;
    const size_t slab = (size_t)STATE * vectors * sizeof(vfloat);
    vfloat *starts = aligned_alloc(sizeof(vfloat), slab * segments);
    vfloat *states = aligned_alloc(sizeof(vfloat), slab * segment);
    vfloat *decays = aligned_alloc(sizeof(vfloat), slab * segment);
    vfloat *work = aligned_alloc(sizeof(vfloat), slab * 5);
    if (!starts || !states || !decays || !work) {
        free(starts), free(states), free(decays), free(work);
        return -1;
    }
    const int64_t size = STATE * vectors;
    vfloat *h = work, *carry = work + size, *grad_a = work + 2 * size;
    vfloat *rate = work + 3 * size, *a_natural = work + 4 * size;   /* A log2(e), A */
    for (int64_t n = 0; n < STATE; ++n)
        for (int64_t j = 0; j < vectors; ++j) {
            const int64_t i = n * vectors + j;
            h[i] = carry[i] = grad_a[i] = splat(0.0f);
            rate[i] = load(a2 + n * a->channels + c0 + j * LANES, ch.lanes[j]);
            a_natural[i] = rate[i] * 0.69314718f;
        }
    for (int64_t t = 0; t < length; ++t) {
        if (t % segment == 0)
            memcpy(starts + (t / segment) * STATE * vectors, h, slab);
        advance(a, g, &ch, rate, b, t, h, NULL, NULL, 0, STATE);
    }
    for (int64_t s = segments - 1; s >= 0; --s) {
        const int64_t t0 = s * segment, t1 = t0 + segment < length ? t0 + segment : length;
        const vfloat *start = starts + s * STATE * vectors;
        memcpy(h, start, slab);
        for (int64_t t = t0; t < t1; ++t)
            advance(a, g, &ch, rate, b, t, h, states, decays, t - t0, STATE);
        for (int64_t t = t1 - 1; t >= t0; --t)
            adjoint_step(a, g, &ch, a_natural, b, t, &AT(states, t - t0, 0, 0),
                         t > t0 ? &AT(states, t - t0 - 1, 0, 0) : start,
                         &AT(decays, t - t0, 0, 0), carry, grad_a, STATE);
    }
    for (int64_t n = 0; n < STATE; ++n)
        for (int64_t j = 0; j < vectors; ++j)
            store(d_A + n * a->channels + c0 + j * LANES, AT(grad_a, 0, n, j), ch.lanes[j]);
    free(starts), free(states), free(decays), free(work);
    return 0;
}

/* ----------------------------------------------------------------------- specialisations */
/* Walkers of direction k for (batch b, channels c0 .. c0 + 8 * vectors - 1). */
typedef void forward_walker(const struct args *, int64_t, int64_t, int64_t, int64_t);
typedef int backward_walker(const struct args *, int64_t, int64_t, int64_t, int64_t);

#define WALKS_FOR(NAME, STATE) \
    static void walk_##NAME(const struct args *a, int64_t k, int64_t b, int64_t c0, \
                            int64_t vectors) \
    { \
        const int64_t last = a->channels - c0 - (vectors - 1) * LANES; \
        if (last >= LANES) \
            walk(a, k, b, c0, vectors, STATE, LANES); \
        else \
            walk(a, k, b, c0, vectors, STATE, last); \
    } \
    static int backward_##NAME(const struct args *a, int64_t k, int64_t b, int64_t c0, \
                               int64_t vectors) \
    { \
        const int64_t last = a->channels - c0 - (vectors - 1) * LANES; \
        return last >= LANES ? backward_walk(a, k, b, c0, vectors, STATE, LANES) \
                             : backward_walk(a, k, b, c0, vectors, STATE, last); \
    }
WALKS_FOR(4, 4)
WALKS_FOR(8, 8)
WALKS_FOR(16, 16)
WALKS_FOR(32, 32)
WALKS_FOR(64, 64)
WALKS_FOR(any, a->state)

#define PICK(prefix, state) \
    ((state) == 4 ? prefix##_4 : (state) == 8 ? prefix##_8 : (state) == 16 ? prefix##_16 : \
     (state) == 32 ? prefix##_32 : (state) == 64 ? prefix##_64 : prefix##_any)

/* ------------------------------------------------------------------------------ threads */
struct worker {
    const struct args *a;
    int64_t first, stride;            /* work items first, first + stride, ... */
    int64_t group;                    /* forward: vectors of channels per work item */
    int status;
};

static void *forward_worker(void *arg)
{
    struct worker *w = arg;
    const struct args *a = w->a;
    forward_walker *walk_item = PICK(walk, a->state);
    const int64_t vectors = (a->channels + LANES - 1) / LANES;
    const int64_t groups = (vectors + w->group - 1) / w->group;
    for (int64_t item = w->first; item < a->batch * groups; item += w->stride) {
        const int64_t b = item / groups, first = (item % groups) * w->group;
        const int64_t count = vectors - first < w->group ? vectors - first : w->group;
        for (int64_t k = 0; k < a->directions; ++k)
            walk_item(a, k, b, first * LANES, count);
    }
    return NULL;
}

static void *backward_worker(void *arg)
{
    struct worker *w = arg;
    const struct args *a = w->a;
    backward_walker *walk_item = PICK(backward, a->state);
    const int64_t vectors = (a->channels + LANES - 1) / LANES;
    int64_t group = BACKWARD_VECTORS / a->state;
    group = group < 1 ? 1 : group > MAX_GROUP ? MAX_GROUP : group;
    for (int64_t item = w->first; item < a->batch * a->directions; item += w->stride) {
        const int64_t b = item / a->directions, k = item % a->directions;
        for (int64_t first = 0; first < vectors && !w->status; first += group) {
            const int64_t count = vectors - first < group ? vectors - first : group;
            w->status = walk_item(a, k, b, first * LANES, count);
        }
    }
    return NULL;
}

/* Vectors per forward work item: as many as fit MAX_GROUP, in equal shares for ``threads``. */
static int64_t group_size(int64_t vectors, int64_t batch, int64_t threads)
{
    int64_t per_batch = (threads + batch - 1) / batch;            /* items wanted per image */
    int64_t rounds = (vectors + per_batch * MAX_GROUP - 1) / (per_batch * MAX_GROUP);
    int64_t items = per_batch * rounds;
    return (vectors + items - 1) / items;
}

/* Run ``body`` over ``items`` work items on up to a->threads threads (the caller's included). */
static int run(const struct args *a, void *(*body)(void *), int64_t items, int64_t group)
{
    int64_t threads = a->threads < 1 ? 1 : a->threads;
    threads = threads > MAX_THREADS ? MAX_THREADS : threads > items ? items : threads;
    pthread_t ids[MAX_THREADS];
    struct worker workers[MAX_THREADS];
    int64_t started = 1;
    for (int64_t t = 0; t < threads; ++t)
        workers[t] = (struct worker){a, t, threads, group, 0};
    for (int64_t t = 1; t < threads; ++t, ++started)
        if (pthread_create(&ids[t], NULL, body, &workers[t]) != 0)
            break;
    for (int64_t t = started; t < threads; ++t)   /* threads that could not start: run here */
        body(&workers[t]);
    body(&workers[0]);
    int status = 0;
    for (int64_t t = 1; t < started; ++t)
        pthread_join(ids[t], NULL);
    for (int64_t t = 0; t < threads; ++t)
        status = workers[t].status ? workers[t].status : status;
    return status;
}

static int valid(const struct args *a)
{
    return a->directions >= 1 && a->directions <= MAX_DIRECTIONS && a->state >= 1 &&
           a->channels >= 1 && a->batch >= 1;
}

/* The sizes of the argument structs, which cpu_scan.py checks against its own. */
int64_t retinexmamba_struct_sizes(int64_t *geometry_size)
{
    *geometry_size = sizeof(struct geometry);
    return sizeof(struct args);
}

/* y += the scan of every direction. Returns 0, or -1 for arguments out of range. */
int retinexmamba_scan_forward(const struct args *a)
{
    if (!valid(a))
        return -1;
    const int64_t vectors = (a->channels + LANES - 1) / LANES;
    const int64_t group = group_size(vectors, a->batch, a->threads < 1 ? 1 : a->threads);
    return run(a, forward_worker, a->batch * ((vectors + group - 1) / group), group);
}

/* Gradients of sum(dy * y) of the forward (without its D term): writes d_delta (through the
 * bias and softplus) and d_u (per direction), adds into d_B and d_C (zeroed by the caller),
 * writes d_A per batch. Returns 0, -1 for arguments out of range, -2 when out of memory. */
int retinexmamba_scan_backward(const struct args *a)
{
    if (!valid(a))
        return -1;
    return run(a, backward_worker, a->batch * a->directions, 0) ? -2 : 0;
}
