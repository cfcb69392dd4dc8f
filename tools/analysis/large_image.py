"""Time and peak memory of enhancing one large photo (default 4000x3000) with tiled inference.

    python tools/analysis/large_image.py [--size 4000x3000] [--device cpu|cuda] [--tile auto|N]
        [--checkpoint CKPT] [--bf16] [--memory-limit GIB]

``--memory-limit 8`` emulates a smaller card: tiles are sized for 8 GiB of free memory and, on
CUDA, the process is capped at 8 GiB (torch.cuda.set_per_process_memory_fraction), so going over
it fails instead of passing unnoticed.

Random weights unless a checkpoint is given (time and memory do not depend on the weights).
CPU peak memory is the process's maximum resident set size; CUDA's is torch's peak allocation.
"""
import argparse
import resource
import time

import numpy as np
import torch

from retinexmamba_mm.apis.inference import DEFAULT_OVERLAP, enhance
from retinexmamba_mm.apis.tiling import auto_tile_size
from retinexmamba_mm.models import RetinexMamba
from retinexmamba_mm.utils import keep_freed_memory


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='4000x3000', help='WxH')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--tile', default='auto')
    parser.add_argument('--checkpoint')
    parser.add_argument('--bf16', action='store_true')
    parser.add_argument('--memory-limit', type=float, help='GiB: size tiles for this much free '
                        'memory and, on CUDA, cap the process at it')
    args = parser.parse_args()
    width, height = map(int, args.size.split('x'))
    device = torch.device(args.device)
    if device.type == 'cpu':
        keep_freed_memory()
    model = RetinexMamba().eval().to(device)
    if args.checkpoint:
        from retinexmamba_mm.apis.checkpoint import generator_state_dict
        model.load_state_dict(generator_state_dict(args.checkpoint))
    image = np.random.default_rng(0).integers(0, 60, (height, width, 3), dtype=np.uint8)
    tile = args.tile if args.tile == 'auto' else int(args.tile)
    if args.memory_limit:
        limit = int(args.memory_limit * 2**30)
        if tile == 'auto':
            tile = auto_tile_size(height, width, device, DEFAULT_OVERLAP, free_bytes=limit)
        if device.type == 'cuda':
            total = torch.cuda.get_device_properties(device).total_memory
            torch.cuda.set_per_process_memory_fraction(limit / total, device.index or 0)
    elif tile == 'auto':
        print(f'auto tile for {width}x{height} on {device}: '
              f'{auto_tile_size(height, width, device, DEFAULT_OVERLAP)}')
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    out = enhance(model, image, tile=tile, dtype=torch.bfloat16 if args.bf16 else None)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        where = 'GPU peak allocated'
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        where = 'process max RSS'
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'
    seconds = time.perf_counter() - start
    limit = f', limit {args.memory_limit} GiB' if args.memory_limit else ''
    print(f'{width}x{height} on {device} ({name}), tile={tile}{limit}: {seconds:.1f} s, '
          f'{where} {peak:.2f} GiB, output {out.shape} {out.dtype}')


if __name__ == '__main__':
    main()
