/* The ``cpu`` backend's kernel: the selective scan's forward in one pass over the sequence.
 *
 * Why a compiled kernel: the torch backend needs several whole-block passes per element
 * (decays, inputs, recurrence, contraction; ~2 ns per (step, channel, state) on a 2-core EPYC),
 * all bound by memory traffic and call overhead. Here one walk keeps a block of 8 channels'
 * states in vector registers and does everything for a step while its inputs are in cache.
 *
 * Work item: (batch, block of 8 channels). Each item walks every direction in turn and adds
 * that direction's outputs into y, so items never write the same element and need no locks.
 * Directions are described by a geometry (lines x steps per line, element strides), which
 * covers the flat contract (one line, K groups as directions) and SS2D's four reading orders
 * of one map (row-/column-major and their reverses: negative strides from the last pixel).
 *
 * Per step: dA = 2^(delta * A log2 e) (own vector exp2, <= 1e-7 relative error), h = dA * h +
 * delta u B, y += <C, h>. Accumulation is fp32, as in the contract. Compiled at first use by
 * cpu_scan.py with the machine's C compiler (-O3 -march=native); GCC vector extensions, no
 * intrinsics, so any target GCC or Clang supports works.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define LANES 8
#define MAX_DIRECTIONS 64
#define MAX_THREADS 256
#define MAX_GROUP 8           /* vectors of 8 channels per work item */

typedef float vfloat __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t vint __attribute__((vector_size(LANES * sizeof(float))));
typedef float vfloat_unaligned __attribute__((vector_size(LANES * sizeof(float)), aligned(4)));

/* Keep in sync with cpu_scan.py (_Geometry, _Args). Tensor order in the 5-arrays: delta, u,
 * B, C, y. Strides and offsets count elements; channels are contiguous in delta, u, y and A. */
enum { DELTA, U, B_IN, C_IN, Y, TENSORS };

struct geometry {
    int64_t lines, steps;             /* a direction reads lines x steps positions */
    int64_t offset[TENSORS];          /* element offset of its first position (+ channel base) */
    int64_t line_stride[TENSORS];
    int64_t step_stride[TENSORS];
};

struct args {
    int64_t batch, channels, state, directions, threads;
    const float *delta, *u, *B, *C;
    float *y;
    const float *a2;                  /* (directions, state, channels): A * log2(e) */
    const float *delta_bias;          /* (directions, channels), or NULL */
    int64_t softplus;                 /* delta' = softplus(delta + bias), else delta + bias */
    int64_t batch_stride[TENSORS];
    int64_t state_stride[2];          /* of B and C */
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

/* ``lanes`` channels from p (the rest zero); one vector move for a full block */
/* log(1 + exp(x)) as max(x, 0) + log1p(e), e = exp(-|x|) in (0, 1], with
 * log1p(e) = 2 atanh(s), s = e / (2 + e) in (0, 1/3] (no cancellation for small e), by its
 * series to s^11 (relative error < 1e-7). Agrees with PyTorch's softplus (threshold 20). */
static inline vfloat softplus(vfloat x)
{
    const vfloat zero = splat(0.0f);
    vfloat e = exp2v(blend(x < zero, x, -x) * 1.44269504f);
    vfloat s = e / (e + 2.0f), s2 = s * s;
    vfloat p = splat(1.0f / 11.0f);
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return blend(x > zero, x, zero) + 2.0f * s * p;
}

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

/* One direction's walk for one work item: batch b, channels c0 .. c0 + 8 * vectors - 1 (the
 * last vector holds ``last_lanes`` of them). Per step, the inputs of all its channels are read
 * as whole cache lines and B_t, C_t once; states live in L1 (h[n][j]: vector j, state n).
 * STATE and ``last_lanes`` are constants in the specialisations below. */
static inline __attribute__((always_inline)) void walk(const struct args *a,
                                                        const struct geometry *g,
                                                        const float *a2, const float *delta_bias,
                                                        int64_t b, int64_t c0, int64_t vectors,
                                                        const int64_t STATE,
                                                        const int64_t last_lanes)
{
    vfloat h[STATE][MAX_GROUP], decay_rate[STATE][MAX_GROUP], bias[MAX_GROUP];
    int64_t lanes[MAX_GROUP];
    for (int64_t j = 0; j < vectors; ++j) {
        lanes[j] = j == vectors - 1 ? last_lanes : LANES;
        bias[j] = delta_bias ? load(delta_bias + c0 + j * LANES, lanes[j]) : splat(0.0f);
        for (int64_t n = 0; n < STATE; ++n) {
            h[n][j] = splat(0.0f);
            decay_rate[n][j] = load(a2 + n * a->channels + c0 + j * LANES, lanes[j]);
        }
    }
    const int64_t sb = a->state_stride[0], sc = a->state_stride[1];
    int64_t base[TENSORS];
    for (int t = 0; t < TENSORS; ++t)
        base[t] = g->offset[t] + b * a->batch_stride[t] + ((t == B_IN || t == C_IN) ? 0 : c0);
    for (int64_t line = 0; line < g->lines; ++line) {
        const float *delta = a->delta + base[DELTA] + line * g->line_stride[DELTA];
        const float *u = a->u + base[U] + line * g->line_stride[U];
        const float *B = a->B + base[B_IN] + line * g->line_stride[B_IN];
        const float *C = a->C + base[C_IN] + line * g->line_stride[C_IN];
        float *y = a->y + base[Y] + line * g->line_stride[Y];
        for (int64_t step = 0; step < g->steps; ++step) {
            vfloat dt[MAX_GROUP], du[MAX_GROUP], out[MAX_GROUP];
            for (int64_t j = 0; j < vectors; ++j) {
                dt[j] = load(delta + j * LANES, lanes[j]) + bias[j];
                if (a->softplus)
                    dt[j] = softplus(dt[j]);
                du[j] = dt[j] * load(u + j * LANES, lanes[j]);
                out[j] = load(y + j * LANES, lanes[j]);
            }
            for (int64_t n = 0; n < STATE; ++n) {
                const float b_n = B[n * sb], c_n = C[n * sc];
                for (int64_t j = 0; j < vectors; ++j) {
                    h[n][j] = exp2v(dt[j] * decay_rate[n][j]) * h[n][j] + du[j] * b_n;
                    out[j] += c_n * h[n][j];
                }
            }
            for (int64_t j = 0; j < vectors; ++j)
                store(y + j * LANES, out[j], lanes[j]);
            delta += g->step_stride[DELTA];
            u += g->step_stride[U];
            B += g->step_stride[B_IN];
            C += g->step_stride[C_IN];
            y += g->step_stride[Y];
        }
    }
}

typedef void walker(const struct args *, const struct geometry *, const float *, const float *,
                    int64_t, int64_t, int64_t);

#define WALK_FOR(NAME, STATE) \
    static void walk_##NAME(const struct args *a, const struct geometry *g, const float *a2, \
                            const float *bias, int64_t b, int64_t c0, int64_t vectors) \
    { \
        const int64_t last = a->channels - c0 - (vectors - 1) * LANES; \
        if (last >= LANES) \
            walk(a, g, a2, bias, b, c0, vectors, STATE, LANES); \
        else \
            walk(a, g, a2, bias, b, c0, vectors, STATE, last); \
    }
WALK_FOR(4, 4)
WALK_FOR(8, 8)
WALK_FOR(16, 16)
WALK_FOR(32, 32)
WALK_FOR(64, 64)
WALK_FOR(any, a->state)

struct worker {
    const struct args *a;
    int64_t first, stride;            /* work items first, first + stride, ... */
    int64_t group;                    /* vectors of channels per work item */
};

static void *run_worker(void *arg)
{
    const struct worker *w = arg;
    const struct args *a = w->a;
    walker *walk_item = a->state == 4 ? walk_4 : a->state == 8 ? walk_8 :
                        a->state == 16 ? walk_16 : a->state == 32 ? walk_32 :
                        a->state == 64 ? walk_64 : walk_any;
    const int64_t vectors = (a->channels + LANES - 1) / LANES;
    const int64_t groups = (vectors + w->group - 1) / w->group;
    for (int64_t item = w->first; item < a->batch * groups; item += w->stride) {
        const int64_t b = item / groups, first = (item % groups) * w->group;
        const int64_t count = vectors - first < w->group ? vectors - first : w->group;
        for (int64_t k = 0; k < a->directions; ++k)
            walk_item(a, &a->geometry[k], a->a2 + k * a->state * a->channels,
                      a->delta_bias ? a->delta_bias + k * a->channels : NULL, b,
                      first * LANES, count);
    }
    return NULL;
}

/* Vectors per work item: as many as fit MAX_GROUP, in equal shares for ``threads``. */
static int64_t group_size(int64_t vectors, int64_t batch, int64_t threads)
{
    int64_t per_batch = (threads + batch - 1) / batch;            /* items wanted per image */
    int64_t rounds = (vectors + per_batch * MAX_GROUP - 1) / (per_batch * MAX_GROUP);
    int64_t items = per_batch * rounds;
    return (vectors + items - 1) / items;
}

/* y += the scan of every direction. Returns 0, or -1 for arguments out of range. */
int retinexmamba_scan_forward(const struct args *a)
{
    if (a->directions < 1 || a->directions > MAX_DIRECTIONS || a->state < 1 || a->channels < 1)
        return -1;
    int64_t threads = a->threads < 1 ? 1 : a->threads;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    const int64_t vectors = (a->channels + LANES - 1) / LANES;
    const int64_t group = group_size(vectors, a->batch, threads);
    const int64_t items = a->batch * ((vectors + group - 1) / group);
    if (threads > items)
        threads = items;
    pthread_t ids[MAX_THREADS];
    struct worker workers[MAX_THREADS];
    int64_t started = 1;
    for (int64_t t = 0; t < threads; ++t)
        workers[t] = (struct worker){a, t, threads, group};
    for (int64_t t = 1; t < threads; ++t, ++started)
        if (pthread_create(&ids[t], NULL, run_worker, &workers[t]) != 0)
            break;
    /* items of threads that could not start run here */
    for (int64_t t = started; t < threads; ++t)
        run_worker(&workers[t]);
    run_worker(&workers[0]);
    for (int64_t t = 1; t < started; ++t)
        pthread_join(ids[t], NULL);
    return 0;
}
