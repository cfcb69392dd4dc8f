"""Speed of RetinexMamba and its selective scan, as one table with ratios, in one run.

    python tools/analysis/benchmark.py                      # CPU: scan vs per-step loops,
                                                            # model forward 400x600 and 256x256
    python tools/analysis/benchmark.py --device cuda --backends torch,mamba_ssm,triton \\
        --dtypes fp32,bf16 --sections scan,infer,train

Sections (``--sections``):
  scan   the selective scan alone. CPU: the ``cpu`` and ``torch`` backends against two
         per-step loops at sequence length 16,384 (``--scan-length``), side by side: the
         algorithm of mamba_ssm's
         ``selective_scan_ref`` (what a per-step PyTorch scan of the authors' code path does:
         decays materialised as (b, D, L, N), one einsum per step) and the fastest per-step loop
         we could write (time-major slabs, one fused multiply-add per step). Two shapes: the
         model's first SS2D at 128x128 (4 x 80 channels, 16 states) and a small one (4 x 4
         channels) where per-step overhead dominates. CUDA: the level-0 SS2D scan of a
         ``--sizes`` image per backend, with the achieved memory bandwidth.
  infer  the whole model's forward (random weights, eval, no_grad) per backend, dtype, size;
         on CUDA also the peak memory.
  train  one training step (batch 8 of 128x128, L1, Adam lr 2e-4, gradient clipping 0.01) per
         backend and dtype; on CUDA also the peak memory.

Times are medians over ``--repeats`` runs after ``--warmup`` runs (CUDA synchronised). Runs on a
CPU-only machine without mmengine/mmagic. Threads: torch's default (``torch.get_num_threads()``).

``--thp`` turns on PyTorch's transparent-huge-page CPU allocator (``THP_MEM_ALLOC_ENABLE=1``,
read once when torch loads, so it is set here before the import). On a VM, first-touch page
faults of fresh large tensors can cost more than the arithmetic of many elementwise ops; huge
pages are the knob for that (on the 2-core CI machine the 400x600 forward showed no difference
beyond its run-to-run noise). Users get the same by exporting the variable.

``--variants compile,channels_last,graph`` adds, per backend, rows for the model wrapped in
``torch.compile`` (infer and train), in channels-last memory format (model and input), and, for
inference on CUDA, replayed as a CUDA graph (no per-kernel launch cost on the host), so each is
measured in the same run as the plain model.
"""
import os
import sys

if '--thp' in sys.argv:  # before torch is imported: PyTorch reads it once
    os.environ['THP_MEM_ALLOC_ENABLE'] = '1'

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from retinexmamba_mm.apis.cuda_graph import CudaGraphForward  # noqa: E402
from retinexmamba_mm.models import RetinexMamba  # noqa: E402
from retinexmamba_mm.ops import (  # noqa: E402
    available_backends,
    cross_selective_scan,
    selective_scan,
)
from retinexmamba_mm.ops.selective_scan import resolve_backend  # noqa: E402
from retinexmamba_mm.ops.selective_scan.triton_scan import dense_pixel_major  # noqa: E402
from retinexmamba_mm.utils import keep_freed_memory  # noqa: E402

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16}


# ------------------------------------------------------------------------------------- timing
def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(fn, device, warmup, repeats):
    """Median wall time of ``fn()`` in seconds (and the CUDA peak memory in bytes, else None)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) if device.type == 'cuda' else None
    return statistics.median(times), peak


# ------------------------------------------------------------------------------ per-step loops
def loop_like_mamba_ref(u, delta, A, B, C, D, delta_bias):
    """Per-step scan with the algorithm of mamba_ssm's ``selective_scan_ref``."""
    per_group = u.shape[1] // B.shape[1]
    delta = F.softplus(delta + delta_bias[:, None])
    b_full = B.repeat_interleave(per_group, 1)
    c_full = C.repeat_interleave(per_group, 1)
    decay = torch.exp(torch.einsum('bdl,dn->bdln', delta, A))
    inputs = torch.einsum('bdl,bdnl,bdl->bdln', delta, b_full, u)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[2]):
        h = decay[:, :, t] * h + inputs[:, :, t]
        ys.append(torch.einsum('bdn,bdn->bd', h, c_full[:, :, :, t]))
    return torch.stack(ys, dim=2) + u * D[:, None]


def loop_time_major(u, delta, A, B, C, D, delta_bias):
    """The fastest per-step loop we could write: precomputed contiguous time-major slabs, one
    fused multiply-add and one small matmul per step."""
    batch, kd, length = u.shape
    groups, state = B.shape[1], B.shape[2]
    delta = F.softplus(delta + delta_bias[:, None])
    dt = delta.permute(2, 0, 1).reshape(length, batch, groups, kd // groups)
    ut = u.permute(2, 0, 1).reshape(length, batch, groups, kd // groups)
    a = A.view(groups, kd // groups, state)
    decay = torch.exp(dt[..., None] * a)                                  # (L, b, K, D, N)
    inputs = (dt * ut)[..., None] * B.permute(3, 0, 1, 2)[:, :, :, None, :]
    c_t = C.permute(3, 0, 1, 2)[..., None]                                # (L, b, K, N, 1)
    y = u.new_empty(length, batch, groups, kd // groups, 1)
    h = u.new_zeros(batch, groups, kd // groups, state)
    for t in range(length):
        h = torch.addcmul(inputs[t], decay[t], h)
        torch.matmul(h, c_t[t], out=y[t])
    return y.reshape(length, batch, kd).permute(1, 2, 0) + u * D[:, None]


def scan_inputs(batch, groups, channels, state, length, device, seed=0):
    gen = torch.Generator(device='cpu').manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    kd = groups * channels
    return dict(u=r(batch, kd, length), delta=r(batch, kd, length) * 0.5,
                A=-torch.exp(r(kd, state) * 0.5), B=r(batch, groups, state, length),
                C=r(batch, groups, state, length), D=r(kd), delta_bias=r(kd) * 0.3 - 2.0)


# ----------------------------------------------------------------------------------- sections
def scan_cpu(args, device, rows):
    shapes = [('model level-0 SS2D @128x128', 4, 80, 16),
              ('small: 4 x 4 channels', 4, 4, 16)]
    backends = [b for b in args.backends if b in available_backends(device)]
    with torch.no_grad():
        for name, groups, channels, state in shapes:
            inputs = scan_inputs(1, groups, channels, state, args.scan_length, device)
            case = f'{name}, L={args.scan_length}'
            ours = {}
            for backend in backends:
                ours[backend], _ = measure(partial(selective_scan, **inputs, delta_softplus=True,
                                                   backend=backend),
                                           device, args.warmup, args.repeats)
                rows.append(dict(section='scan', case=case, backend=f'{backend} scan',
                                 dtype='fp32', seconds=ours[backend], note=''))
            for label, loop in (('per-step loop (selective_scan_ref)', loop_like_mamba_ref),
                                ('per-step loop (time-major)', loop_time_major)):
                seconds, _ = measure(partial(loop, **inputs), device, 0, 1)
                note = ', '.join(f'{b} scan {seconds / t:.1f}x faster' for b, t in ours.items())
                rows.append(dict(section='scan', case=case, backend=label, dtype='fp32',
                                 seconds=seconds, note=note))


def scan_cuda(args, device, rows):
    for height, width in args.sizes:
        channels, state = 2 * args.n_feat, 16
        flat = scan_inputs(1, 4, channels, state, height * width, device)
        inputs = dict(x=flat['u'][:, :channels].reshape(1, channels, height, width),
                      delta=flat['delta'].reshape(1, 4, channels, height, width),
                      A=flat['A'], B=flat['B'].reshape(1, 4, state, height, width),
                      C=flat['C'].reshape(1, 4, state, height, width), D=flat['D'],
                      delta_bias=flat['delta_bias'])
        pixels = height * width
        moved = 4 * pixels * (channels + 4 * channels + 8 * state + channels)  # fp32 in + out
        base = None
        for backend in args.backends:
            if backend not in available_backends(device):
                continue
            laid_out = _as_ss2d_gives(inputs, resolve_backend(backend, device))
            with torch.no_grad():
                seconds, _ = measure(partial(cross_selective_scan, **laid_out, backend=backend),
                                     device, args.warmup, args.repeats)
            base = base or seconds
            rows.append(dict(section='scan', case=f'level-0 SS2D scan {height}x{width}',
                             backend=backend, dtype='fp32', seconds=seconds,
                             note=f'{moved / seconds / 1e9:.0f} GB/s, {base / seconds:.2f}x'))


def _as_ss2d_gives(inputs, backend):
    """The scan's inputs in the layout SS2D hands this backend (``prefers_channels_last``:
    x channels-last, delta pixel-major, B and C slices of one pixel-major projection)."""
    if not getattr(backend, 'prefers_channels_last', False):
        return inputs

    state = inputs['B'].shape[2]
    bc = dense_pixel_major(torch.cat([inputs['B'], inputs['C']], dim=2))
    return dict(inputs, x=inputs['x'].contiguous(memory_format=torch.channels_last),
                delta=dense_pixel_major(inputs['delta']), B=bc[:, :, :state], C=bc[:, :, state:])


def _model(args, backend, device):
    torch.manual_seed(0)
    return RetinexMamba(n_feat=args.n_feat, scan_backend=backend).to(device)


def _variants(args, device, section):
    """(label, backend, options) per available backend: the model as is, and with each
    variant asked for -- ``compile`` (torch.compile; the scan stays the backend's own kernel),
    ``channels_last`` (model and input in channels-last memory format) and, for inference on
    CUDA, ``graph`` (the forward captured once as a CUDA graph and replayed)."""
    extra = [v for v in args.variants if section == 'infer' or v != 'graph']
    for backend in args.backends:
        if backend in available_backends(device):
            yield backend, backend, ()
            for variant in extra:
                yield f'{backend}+{variant}', backend, (variant, )


def _prepared(model, x, options):
    if 'channels_last' in options:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return (compiled(model) if 'compile' in options else model), x


def compiled(model):
    """torch.compile, with room for one compiled frame per layer shape: Dynamo breaks the graph
    at the scan (a custom kernel), so SS2D's and its neighbours' frames are compiled per level
    and per state size -- more than its default recompile limit of 8."""
    import torch._dynamo
    for name in ('recompile_limit', 'cache_size_limit'):   # renamed in newer torch
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(64, getattr(torch._dynamo.config, name)))
    return torch.compile(model)


def _note(label, seconds, peak, baseline):
    """Speed-up against ``baseline`` (label, seconds), the first variant of the case, and the
    peak memory when measured (CUDA)."""
    note = '' if baseline[0] == label else f'{baseline[1] / seconds:.2f}x vs {baseline[0]}'
    return note if peak is None else f'{note}, peak {peak / 2**30:.2f} GiB'


def run_forward(model, x, dtype_name):
    with torch.no_grad(), torch.autocast(x.device.type, DTYPES[dtype_name],
                                         enabled=dtype_name != 'fp32'):
        model(x)


def train_step(model, optimizer, x, target, dtype_name):
    with torch.autocast(x.device.type, DTYPES[dtype_name], enabled=dtype_name != 'fp32'):
        loss = F.l1_loss(model(x), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01)
    optimizer.step()


def infer(args, device, rows):
    for height, width in args.sizes:
        for dtype_name in args.dtypes:
            baseline = None
            for label, backend, options in _variants(args, device, 'infer'):
                model, x = _prepared(_model(args, backend, device).eval(),
                                     torch.rand(1, 3, height, width, device=device), options)
                if 'graph' in options:  # what enhance(cuda_graph=True) does
                    model = CudaGraphForward(model)
                run = partial(run_forward, model, x, dtype_name)
                seconds, peak = measure(run, device, args.warmup, args.repeats)
                baseline = baseline or (label, seconds)
                rows.append(dict(section='infer', case=f'forward 1x3x{height}x{width}',
                                 backend=label, dtype=dtype_name, seconds=seconds,
                                 note=_note(label, seconds, peak, baseline)))


def train(args, device, rows):
    for dtype_name in args.dtypes:
        baseline = None
        for label, backend, options in _variants(args, device, 'train'):
            plain = _model(args, backend, device).train()
            model, x = _prepared(plain, torch.rand(args.train_batch, 3, args.train_size,
                                                   args.train_size, device=device), options)
            optimizer = torch.optim.Adam(plain.parameters(), lr=2e-4, betas=(0.9, 0.999))
            seconds, peak = measure(partial(train_step, model, optimizer, x,
                                            torch.rand_like(x), dtype_name),
                                    device, args.warmup, args.repeats)
            baseline = baseline or (label, seconds)
            rows.append(dict(section='train', backend=label, dtype=dtype_name,
                             case=f'step, batch {args.train_batch}x3x{args.train_size}'
                                  f'x{args.train_size}, Adam, clip 0.01',
                             seconds=seconds, note=_note(label, seconds, peak, baseline)))


SECTIONS = {'scan': {'cpu': scan_cpu, 'cuda': scan_cuda}, 'infer': infer, 'train': train}


# --------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='RetinexMamba speed table')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:index]')
    parser.add_argument('--sections', default=None,
                        help='comma list of scan,infer,train (default: scan,infer on the CPU, '
                             'all three on CUDA)')
    parser.add_argument('--backends', default=None,
                        help='comma list (default: cpu,torch on the CPU; torch,mamba_ssm,triton '
                             'on CUDA; unavailable ones are skipped)')
    parser.add_argument('--dtypes', default=None, help='comma list of fp32,bf16 (default fp32 '
                        'on the CPU, fp32,bf16 on CUDA)')
    parser.add_argument('--sizes', default='400x600,256x256', help='HxW list for infer/scan')
    parser.add_argument('--n-feat', type=int, default=40)
    parser.add_argument('--scan-length', type=int, default=16384)
    parser.add_argument('--train-batch', type=int, default=8)
    parser.add_argument('--train-size', type=int, default=128)
    parser.add_argument('--warmup', type=int, default=None, help='default 1 (CPU) / 3 (CUDA)')
    parser.add_argument('--repeats', type=int, default=None, help='default 3 (CPU) / 10 (CUDA)')
    parser.add_argument('--variants', default='',
                        help='comma list of compile,channels_last,graph: also time each backend '
                             'with the model under torch.compile, in channels-last memory format, '
                             'or (inference, CUDA) replayed as a CUDA graph')
    parser.add_argument('--json', help='also write the rows to this JSON file')
    parser.add_argument('--thp', action='store_true',
                        help='PyTorch\'s huge-page CPU allocator (THP_MEM_ALLOC_ENABLE=1)')
    args = parser.parse_args(argv)
    cuda = args.device.startswith('cuda')
    args.sections = (args.sections or ('scan,infer,train' if cuda else 'scan,infer')).split(',')
    default_backends = 'torch,mamba_ssm,triton' if cuda else 'cpu,torch'
    args.backends = (args.backends or default_backends).split(',')
    args.dtypes = (args.dtypes or ('fp32,bf16' if cuda else 'fp32')).split(',')
    args.sizes = [tuple(int(v) for v in s.split('x')) for s in args.sizes.split(',')]
    args.variants = [v for v in args.variants.split(',') if v]
    if set(args.variants) - {'compile', 'channels_last', 'graph'}:
        parser.error(f'unknown variants in {args.variants}')
    if 'graph' in args.variants and not cuda:
        parser.error('the graph variant needs a CUDA device')
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    args.repeats = args.repeats if args.repeats is not None else (10 if cuda else 3)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f'unknown sections {sorted(unknown)}; choose from {sorted(SECTIONS)}')
    return args


def format_table(rows, device, kept_freed_memory=False):
    header = ('section', 'case', 'backend', 'dtype', 'time', 'note')
    table = [header] + [(r['section'], r['case'], r['backend'], r['dtype'],
                         f'{r["seconds"] * 1e3:.1f} ms' if r['seconds'] < 1
                         else f'{r["seconds"]:.2f} s', r['note']) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    thp = os.environ.get('THP_MEM_ALLOC_ENABLE', '0')
    lines = [f'device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, '
             f'THP_MEM_ALLOC_ENABLE={thp}, freed memory kept: {bool(kept_freed_memory)}']
    for index, row in enumerate(table):
        lines.append(' | '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if index == 0:
            lines.append('-+-'.join('-' * w for w in widths))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    kept = device.type == 'cpu' and keep_freed_memory()
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    rows = []
    for section in args.sections:
        fn = SECTIONS[section]
        fn = fn[device.type] if isinstance(fn, dict) else fn
        done = len(rows)
        fn(args, device, rows)
        for row in rows[done:]:  # progress on stderr; the table comes at the end
            print(f'{row["section"]}: {row["case"]}, {row["backend"]}, {row["dtype"]}: '
                  f'{row["seconds"]:.3f} s', file=sys.stderr, flush=True)
    print(format_table(rows, name, kept))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(device=name, rows=rows), f, indent=1)
    return rows


if __name__ == '__main__':
    main()
