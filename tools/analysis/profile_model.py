"""Where RetinexMamba's time goes: torch.profiler over the forward (or a training step).

    python tools/analysis/profile_model.py --device cuda --size 400x600 --backend triton
    python tools/analysis/profile_model.py --device cuda --train --dtype bf16

Prints two tables: time per layer type (inclusive; IFA, SS2D, the scan, FFN, ... each summed
over all its instances, marked with ``record_function`` ranges by forward hooks) and the top
operators/kernels by self time. On CUDA the times are device (kernel) times; on CPU, CPU times.
Use it before optimising; ``benchmark.py`` is the tool for the numbers quoted in the README.
"""
import argparse
import os
import sys
from functools import partial

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

from retinexmamba_mm.models import RetinexMamba
from retinexmamba_mm.models.layers import (
    IFA,
    SS2D,
    ChannelLayerNorm,
    FeedForward,
    IlluminationEstimator,
)
from retinexmamba_mm.utils import keep_freed_memory

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark import DTYPES, compiled, run_forward, train_step  # noqa: E402

# layer types whose instances get a profiler range (summed per type in the first table)
MARKED = (IlluminationEstimator, IFA, SS2D, FeedForward, ChannelLayerNorm, torch.nn.LayerNorm)


def mark_layers(model):
    """Wrap every MARKED module's forward in a ``layer:<Type>`` profiler range."""
    def enter(module, args):
        module._profile_range = record_function(f'layer:{type(module).__name__}')
        module._profile_range.__enter__()

    def leave(module, args, output):
        module._profile_range.__exit__(None, None, None)

    for module in model.modules():
        if isinstance(module, MARKED):
            module.register_forward_pre_hook(enter)
            module.register_forward_hook(leave)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='profile RetinexMamba by layer and kernel')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--backend', default='auto', help='scan backend')
    parser.add_argument('--size', default='400x600', help='HxW (inference) or crop (training)')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--train', action='store_true', help='profile a training step')
    parser.add_argument('--dtype', default='fp32', choices=sorted(DTYPES))
    parser.add_argument('--compile', action='store_true', help='wrap the model in torch.compile')
    parser.add_argument('--channels-last', action='store_true',
                        help='model and input in channels-last memory format')
    parser.add_argument('--top', type=int, default=30)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cpu':
        keep_freed_memory()
    height, width = (int(v) for v in args.size.split('x'))
    torch.manual_seed(0)
    plain = RetinexMamba(scan_backend=args.backend).to(device).train(args.train)
    mark_layers(plain)
    x = torch.rand(args.batch, 3, height, width, device=device)
    if args.channels_last:
        plain, x = (t.to(memory_format=torch.channels_last) for t in (plain, x))
    model = compiled(plain) if args.compile else plain
    if args.train:   # the benchmark's step: L1, Adam, clipping
        optimizer = torch.optim.Adam(plain.parameters(), lr=2e-4)
        run = partial(train_step, model, optimizer, x, torch.rand_like(x), args.dtype)
    else:
        run = partial(run_forward, model, x, args.dtype)
    for _ in range(1 if device.type == 'cpu' else 3):
        run()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda'
                                           else [])
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    with profile(activities=activities) as prof:
        run()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    events = prof.key_averages()
    on_device = device.type == 'cuda'
    total_key = 'device_time_total' if on_device else 'cpu_time_total'
    self_key = 'self_device_time_total' if on_device else 'self_cpu_time_total'
    # CUDA: kernels only (operators would count their kernels' time again); CPU: operators
    work = [e for e in events if (e.device_type == DeviceType.CUDA) == on_device
            and not e.key.startswith('layer:')]
    wall = sum(getattr(e, self_key) for e in work) / 1e3
    what = 'training step' if args.train else 'forward'
    print(f'{what} {args.batch}x3x{height}x{width}, {args.dtype}, backend {args.backend}, '
          f'{device}: {wall:.1f} ms of {"kernel" if on_device else "CPU operator"} time')
    print(f'\n{"layer type (inclusive)":<40}{"ms":>9}{"share":>8}{"calls":>7}')
    layers = [e for e in events if e.key.startswith('layer:') and e.device_type == DeviceType.CPU]
    for e in sorted(layers, key=lambda e: -getattr(e, total_key)):
        ms = getattr(e, total_key) / 1e3
        print(f'{e.key[6:]:<40}{ms:>9.2f}{ms / wall:>8.1%}{e.count:>7}')
    print(f'\n{"kernel" if on_device else "operator":<72}{"ms":>9}{"share":>8}{"calls":>7}')
    for e in sorted(work, key=lambda e: -getattr(e, self_key))[:args.top]:
        ms = getattr(e, self_key) / 1e3
        print(f'{e.key[:70]:<72}{ms:>9.2f}{ms / wall:>8.1%}{e.count:>7}')


if __name__ == '__main__':
    main()
