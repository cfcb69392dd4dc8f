"""Time the triton SS2D scan (cross_selective_scan) on the model's shapes; run on a CUDA machine.

    python tools/gpu/bench_scan.py                 # all shapes, default sizes, then a sweep
    python tools/gpu/bench_scan.py --warm 0/4      # compile a quarter of the jobs, no timing
    ncu --clock-control none -k regex:_bwd_walk -s 4 -c 1 --section WarpStateStats \\
        python tools/gpu/bench_scan.py --once trn-L0-enc   # one warm-up, then one fwd+bwd call

Reports per shape: forward (no grad) and forward+backward medians (CUDA events, after warm-up),
the bytes each must at least move (every input read once, every output written once; the
backward re-reads x, delta, B, C and dy and writes dx, ddelta, dB, dC) and the bandwidth that
time implies against the H100's 3.35 TB/s. The mamba_ssm column is the notes' number for the
authors' path on the same card (../shared/notes/gpu.md); for a side-by-side measurement with
mamba_ssm installed, use tools/analysis/benchmark.py (its scan section).
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_only import bootstrap  # noqa: E402

IMPORT_MODE = bootstrap()

import torch  # noqa: E402

from retinexmamba_mm.ops.selective_scan import triton_scan  # noqa: E402

PEAK = 3.35e12
# name: (batch, D, N, H, W); inference at 400x600 and training crops at 128x128 (batch 8)
SHAPES = {
    'inf-L0-enc': (1, 80, 16, 400, 600),
    'inf-L0-dec': (1, 80, 32, 400, 600),
    'inf-L1-enc': (1, 160, 32, 200, 300),
    'inf-L1-dec': (1, 160, 64, 200, 300),
    'inf-bottle': (1, 320, 64, 100, 150),
    'trn-L0-enc': (8, 80, 16, 128, 128),
    'trn-L0-dec': (8, 80, 32, 128, 128),
    'trn-L1-enc': (8, 160, 32, 64, 64),
    'trn-L1-dec': (8, 160, 64, 64, 64),
    'trn-bottle': (8, 320, 64, 32, 32),
}
MAMBA_MS = {'inf-L0-enc': 3.9}  # per call, fp32, ../shared/notes/gpu.md
FWD_SWEEP_SHAPES = ('inf-L0-enc', 'inf-L1-dec', 'trn-L0-dec')
BWD_SWEEP_SHAPES = ('trn-L0-enc', 'trn-L1-dec')
# The sweeps that set today's defaults; what else was tried is in tools/gpu/README.md. On
# pixel-major maps a lane reads BD channels (BD * 4 bytes) of one pixel per step.
FWD_SWEEP = [
    dict(col_bd=16),
    dict(col_bd=16, col_tl=8),
    dict(col_bd=4, col_tl=32),
    dict(col_nb=8),
    dict(col_nb=8, col_bd=16),
    dict(col_warps=8),
    dict(col_warps=2),
    dict(waves=4),
    dict(waves=2),
    dict(waves=16),
]
# The line walks' pass 3b is the Gluon kernel (gluon_*); bwd_* sizes set the summary pass and
# the Triton kernel of pass 3b (gluon=False).
BWD_SWEEP = [
    dict(gluon=False),
    dict(gluon_bd=2, gluon_nb=8),
    dict(gluon_bd=8, gluon_nb=4),
    dict(gluon_bd=2, gluon_nb=4),
    dict(gluon_max_warps=2),
    dict(bwd_waves=8),
    dict(bwd_waves=2),
    dict(bwd_nb=16),
    dict(bwd_nb=4),
]


def inputs(shape, dtype=torch.float32, grad=False, seed=0):
    """(leaves, args): random tensors and the cross-scan's arguments laid out as SS2D hands
    them over (x channels-last, delta pixel-major, B and C slices of one pixel-major tensor)."""
    batch, ch, state, height, width = shape
    gen = torch.Generator(device='cuda').manual_seed(seed)
    kw = dict(device='cuda', generator=gen)

    def r(*s, scale=1.0, shift=0.0):
        return (torch.randn(*s, **kw) * scale + shift)

    pixel_major = triton_scan.dense_pixel_major
    leaves = [r(batch, ch, height, width).to(dtype).contiguous(memory_format=torch.channels_last),
              pixel_major(r(batch, 4, ch, height, width, scale=0.5, shift=-2).to(dtype)),
              -torch.exp(r(4 * ch, state, scale=0.5)),
              pixel_major(r(batch, 4, 2 * state, height, width).to(dtype)),
              r(4 * ch), r(4 * ch, scale=0.3)]
    for t in leaves:
        t.requires_grad_(grad)
    x, delta, A, bc, D, bias = leaves
    return leaves, [x, delta, A, bc[:, :, :state], bc[:, :, state:], D, bias]


def min_bytes(shape, dtype, backward):
    batch, ch, state, height, width = shape
    size = torch.tensor([], dtype=dtype).element_size()
    plane = height * width
    x = batch * ch * plane
    ins = (x + 4 * x + 2 * batch * 4 * state * plane) * size
    fwd = ins + x * size
    return fwd + 2 * ins + x * size if backward else fwd  # bwd: re-read ins and dy, write grads


def cuda_time(fn, reps=None, budget_s=0.3):
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    one = time.perf_counter() - t0
    reps = reps or max(5, min(50, int(budget_s / max(one, 1e-5))))
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), min(times), max(times)


def make_fns(shape, dtype=torch.float32):
    with torch.no_grad():
        xs = inputs(shape, dtype)[1]

    def fwd():
        with torch.no_grad():
            triton_scan.cross_selective_scan(*xs)

    leaves, xg = inputs(shape, dtype, grad=True)
    gy = torch.randn(shape[0], shape[1], shape[3], shape[4], device='cuda', dtype=dtype)
    gy = gy.contiguous(memory_format=torch.channels_last)   # as the layers after SS2D give it

    def fwd_bwd():
        for t in leaves:
            t.grad = None
        triton_scan.cross_selective_scan(*xg).backward(gy)

    return fwd, fwd_bwd


def jobs():
    out = [(name, {}, 'both') for name in SHAPES]
    out += [(name, v, 'fwd') for name in FWD_SWEEP_SHAPES for v in FWD_SWEEP]
    out += [(name, v, 'both') for name in BWD_SWEEP_SHAPES for v in BWD_SWEEP]
    out += [('inf-L0-enc', {}, 'bf16'), ('inf-L0-dec', {}, 'bf16')]
    return out


def run_job(name, variant, mode, timed):
    shape = SHAPES[name]
    dtype = torch.bfloat16 if mode == 'bf16' else torch.float32
    with triton_scan._override(**variant):
        fwd, fwd_bwd = make_fns(shape, dtype)
        if not timed:
            fwd()
            if mode == 'both':
                fwd_bwd()
            torch.cuda.synchronize()
            return None
        res = dict(shape=name, variant=variant, dtype=str(dtype).split('.')[-1])
        res['fwd_ms'] = cuda_time(fwd)[0]
        res['fwd_GBps'] = min_bytes(shape, dtype, False) / res['fwd_ms'] / 1e6
        if mode == 'both':
            res['fwdbwd_ms'] = cuda_time(fwd_bwd)[0]
            res['fwdbwd_GBps'] = min_bytes(shape, dtype, True) / res['fwdbwd_ms'] / 1e6
    del fwd, fwd_bwd
    torch.cuda.empty_cache()
    return res


def profile(name, backward):
    fwd, fwd_bwd = make_fns(SHAPES[name])
    fn = fwd_bwd if backward else fwd
    fn()
    torch.cuda.synchronize()
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof
    with prof(activities=[ProfilerActivity.CUDA]) as p:
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
    rows = []
    for e in p.key_averages():
        t = getattr(e, 'device_time_total', None) or getattr(e, 'cuda_time_total', 0)
        if t > 0:
            rows.append((t / 3 / 1e3, e.count // 3, e.key[:70]))
    rows.sort(reverse=True)
    print(f'\n-- profile {name} {"fwd+bwd" if backward else "fwd"} (ms per call, launches)')
    for t, c, k in rows[:16]:
        print(f'   {t:8.3f} {c:4d}  {k}')
    return rows


def parity_vs_torch():
    """Forward and gradients against the other backend, fp32, moderate size."""
    try:
        from retinexmamba_mm.ops.selective_scan import torch_scan
    except ImportError as error:
        print('torch backend not importable:', error)
        return None
    shape = (2, 16, 32, 48, 80)
    leaves_a, a = inputs(shape, grad=True, seed=3)
    leaves_b, b = inputs(shape, grad=True, seed=3)
    ya = triton_scan.cross_selective_scan(*a)
    yb = torch_scan.cross_selective_scan(*b)
    gy = torch.randn_like(ya)
    ya.backward(gy)
    yb.backward(gy)
    names = ['y', 'dx', 'ddelta', 'dA', 'dBC', 'dD', 'ddelta_bias']
    pairs = [(ya, yb)] + [(s.grad, t.grad) for s, t in zip(leaves_a, leaves_b)]
    errs = {n: ((p - q).norm() / q.norm()).item() for n, (p, q) in zip(names, pairs)}
    print('\nparity triton vs torch backend (fp32, ||a-b||/||b||):',
          {k: f'{v:.2e}' for k, v in errs.items()})
    return errs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--warm', default='', help='i/n: compile the i-th of n slices of the jobs')
    ap.add_argument('--out', default=os.environ.get('OUT', '.'))
    ap.add_argument('--quick', action='store_true', help='default sizes only, no sweep')
    ap.add_argument('--once', choices=sorted(SHAPES), help='for a kernel profiler: one warm-up '
                    'and one forward+backward call of this shape, nothing else')
    args = ap.parse_args()
    if args.once:
        fwd_bwd = make_fns(SHAPES[args.once])[1]
        for _ in range(2):
            fwd_bwd()
        torch.cuda.synchronize()
        return
    all_jobs = jobs()
    if args.quick:
        all_jobs = [j for j in all_jobs if not j[1]]
    if args.warm:
        i, n = map(int, args.warm.split('/'))
        t0 = time.time()
        for job in all_jobs[i::n]:
            run_job(*job, timed=False)
        print(f'warm {args.warm}: {len(all_jobs[i::n])} jobs in {time.time() - t0:.0f} s')
        return
    print(f'{torch.cuda.get_device_name()} torch {torch.__version__}, import: {IMPORT_MODE}')
    import triton
    print('triton', triton.__version__)
    results = []
    for job in all_jobs:
        t0 = time.time()
        res = run_job(*job, timed=True)
        res['wall_s'] = time.time() - t0
        results.append(res)
        print(json.dumps(res), flush=True)
    parity = parity_vs_torch()
    prof = {}
    for name, bwd in (('inf-L0-enc', False), ('inf-L1-dec', False), ('trn-L1-dec', True)):
        prof[f'{name}-{bwd}'] = profile(name, bwd)
    with open(os.path.join(args.out, 'bench_scan.json'), 'w') as f:
        json.dump(dict(results=results, parity=parity, profile=prof), f, indent=1)
    print('\n| shape | B,D,N,H,W | fwd ms | fwd GB/s | % of 3.35 TB/s | fwd+bwd ms | fwd+bwd GB/s |'
          ' vs mamba_ssm fwd |')
    print('|---|---|---|---|---|---|---|---|')
    for r in results:
        if r['variant'] or r['dtype'] != 'float32':
            continue
        mamba = MAMBA_MS.get(r['shape'])
        ratio = '' if mamba is None else f'{mamba / r["fwd_ms"]:.1f}x'
        dims = ','.join(map(str, SHAPES[r['shape']]))
        print(f"| {r['shape']} | {dims} | {r['fwd_ms']:.3f} | {r['fwd_GBps']:.0f} | "
              f"{100 * r['fwd_GBps'] * 1e9 / PEAK:.0f}% | {r.get('fwdbwd_ms', float('nan')):.3f} | "
              f"{r.get('fwdbwd_GBps', 0):.0f} | {ratio} |")
    print('\nsweep (variant: fwd ms / fwd+bwd ms):')
    for r in results:
        if r['variant'] or r['dtype'] != 'float32':
            print(f"  {r['shape']:11s} {r['dtype']:8s} {str(r['variant']):40s} "
                  f"{r['fwd_ms']:.3f} / {r.get('fwdbwd_ms', float('nan')):.3f}")


if __name__ == '__main__':
    main()
