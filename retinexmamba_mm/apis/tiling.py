"""Tiled inference with overlap and smooth blending, so any image size runs in bounded memory.

RetinexMamba is not a local operator: the selective scans run along whole rows and columns and
the channel attention pools over the whole image. A tile therefore sees less context than the
whole image and its output differs slightly, most near its borders. Tiles overlap; on each side
it shares with a neighbour, a tile's output gets weight 0 over the first quarter of the overlap
(the pixels its border disturbs most) and a raised-cosine ramp up to 1 over the rest; at the
image border the weight stays 1. The separable 2-D weights are summed and divided out, so every
pixel is a convex blend and no seam is a hard cut. Tile starts are multiples of 4, so every tile
sees the whole image's stride-2 grid, and the local parts of the network (the illumination
estimator, any convolution whose reach is within the dropped margin) are reproduced exactly.

How close tiles come to whole-image inference (default model, random weights, LOL-v1 test image
493, 600x400, fp32, differences in 8-bit levels): tiles of 256 with overlap 64 differ by at most
0.28 levels before rounding (mean 0.02), so the 8-bit outputs differ by at most 1 level at 1% of
the pixels (PSNR 68 dB between them); overlap 16: 0.84 (66 dB); tiles of 128, overlap 32: 0.92
(64 dB). A trained model leans more on global context and may differ more; re-measure it with
``tiled_forward`` against a whole-image pass.

Memory: ``auto_tile_size`` keeps one tile's peak under a share of the free memory, using
``BYTES_PER_PIXEL``, the model's measured peak per input pixel.
"""
import math
import os
from typing import Callable, List, Optional, Tuple

import torch

from ..utils import get_logger

# Peak memory of one forward pass per input pixel: fp32, batch 1, inference mode, the default
# model (n_feat 40, blocks [1, 2, 2]). Measured on the CPU with the torch scan (commit 64ba0d1) as
# the growth of a fresh process's ru_maxrss over its level after building the model and a 64x64
# warm-up: 8.6 kB/px at 256x256, 8.2 at 400x600, 7.8 at 600x800 (slope 7.7 kB/px plus 62 MB).
# On CUDA the authors' path measured 8.1 kB/px (torch.cuda.max_memory_allocated, H100); ours
# was not measured on a GPU yet, so the same bound serves there. Re-measure when the scan changes.
BYTES_PER_PIXEL = 9_000
# Whole-image buffers beside the tiles: float32 input, output and illumination sums and weights
# (40 bytes), and the copies made when the weights are divided out and the output is converted to
# 8 bits.
ACCUMULATOR_BYTES_PER_PIXEL = 80
# Share of the free memory a tile may use: the rest is headroom for the allocator, the OS and
# other processes (CPU), and fragmentation (CUDA).
MEMORY_SHARE = {'cpu': 0.6, 'cuda': 0.8}
MULTIPLE = 4  # two stride-2 downsamplings


def tile_spans(length: int, tile: int, overlap: int) -> List[Tuple[int, int]]:
    """``(start, end)`` spans covering ``range(length)`` with tiles of about ``tile`` pixels.

    Starts are multiples of 4, consecutive spans overlap by at least ``overlap`` pixels, and the
    last span ends at ``length`` (it may be up to 3 pixels longer than ``tile`` for that).
    """
    if length <= tile:
        return [(0, length)]
    last_start = (length - tile) // MULTIPLE * MULTIPLE
    count = math.ceil((length - overlap) / (tile - overlap))
    while True:
        starts = [round(i * last_start / (count - 1) / MULTIPLE) * MULTIPLE for i in range(count)]
        ends = [start + tile for start in starts[:-1]] + [length]
        if all(end - next_start >= overlap for end, next_start in zip(ends, starts[1:])):
            return list(zip(starts, ends))
        count += 1


def blend_window(span: Tuple[int, int], length: int, overlap: int) -> torch.Tensor:
    """1-D weights of a span; 1 except on the sides it shares with a neighbouring tile, where the
    first ``overlap // 4`` pixels get 0 (the ones a tile border disturbs most, and which the
    neighbour sees with full context) and the rest of the overlap a raised-cosine ramp to 1.

    Neighbours overlap by at least ``overlap``, so their zero margins never meet and every
    pixel keeps a positive total weight.
    """
    start, end = span
    weights = torch.ones(end - start)
    margin = overlap // 4
    ramp_length = overlap - margin
    if ramp_length == 0:
        return weights
    steps = (torch.arange(ramp_length, dtype=torch.float32) + 0.5) / ramp_length
    ramp = torch.cat([torch.zeros(margin), 0.5 - 0.5 * torch.cos(math.pi * steps)])
    if start > 0:
        weights[:overlap] = ramp
    if end < length:
        weights[-overlap:] = ramp.flip(0)
    return weights


def tiled_forward(forward: Callable[[torch.Tensor], Tuple[torch.Tensor, ...]],
                  image: torch.Tensor,
                  tile: int,
                  overlap: int,
                  device: torch.device,
                  progress: Optional[Callable[[int, int], None]] = None) -> List[torch.Tensor]:
    """Run ``forward`` tile by tile over ``image`` and blend the outputs.

    Args:
        forward: Maps a ``(1, 3, h, w)`` tile on ``device`` to a tuple of ``(1, c, h, w)``
            float tensors (e.g. the enhanced tile and its illumination map).
        image: The whole ``(1, 3, H, W)`` float image; it stays where it is (the CPU for large
            photos) and only one tile at a time moves to ``device``.
        tile: Tile side, a multiple of 4, at least ``2 * overlap``.
        overlap: Minimum overlap of neighbouring tiles in pixels.
        device: Where ``forward`` runs.
        progress: Called as ``progress(done, total)`` after each tile.

    Returns:
        The blended outputs, one ``(1, c, H, W)`` float32 tensor per output of ``forward``, on
        ``image``'s device.
    """
    check_tile(tile, overlap)
    height, width = image.shape[-2:]
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    weight_sum = torch.zeros(height, width, device=image.device)
    sums = None
    for index, (row, col) in enumerate((row, col) for row in rows for col in cols):
        window = torch.outer(blend_window(row, height, overlap), blend_window(col, width, overlap))
        window = window.to(image.device)
        outputs = forward(image[..., row[0]:row[1], col[0]:col[1]].to(device))
        if sums is None:
            sums = [image.new_zeros(1, out.shape[1], height, width, dtype=torch.float32)
                    for out in outputs]
        for total, out in zip(sums, outputs):
            total[..., row[0]:row[1], col[0]:col[1]] += out.float().to(image.device) * window
        weight_sum[row[0]:row[1], col[0]:col[1]] += window
        if progress is not None:
            progress(index + 1, len(rows) * len(cols))
    return [total / weight_sum for total in sums]


def check_tile(tile: int, overlap: int) -> None:
    if tile % MULTIPLE or tile <= 0:
        raise ValueError(f'tile must be a positive multiple of {MULTIPLE}, got {tile}')
    if overlap < 0 or 2 * overlap > tile:
        raise ValueError(f'overlap must be in [0, tile / 2] so that the blending ramps of a '
                         f'tile do not cross, got overlap={overlap} for tile={tile}')


def available_memory(device: torch.device) -> int:
    """Bytes free for a new tensor on ``device``: CUDA's free memory plus what PyTorch's caching
    allocator holds but does not use; on the CPU psutil's ``available`` or, without psutil,
    ``MemAvailable`` from /proc/meminfo."""
    if device.type == 'cuda':
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type != 'cpu':
        raise ValueError(f"tile='auto' knows the memory of 'cpu' and 'cuda' devices, not "
                         f"{device.type!r}; pass a tile size")
    try:
        import psutil
        return psutil.virtual_memory().available
    except ImportError:
        pass
    if not os.path.exists('/proc/meminfo'):
        raise RuntimeError("tile='auto' needs psutil (pip install psutil) or /proc/meminfo to "
                           'read the free memory; install psutil or pass a tile size')
    with open('/proc/meminfo') as meminfo:
        for line in meminfo:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('/proc/meminfo has no MemAvailable line; pass a tile size')


def auto_tile_size(height: int, width: int, device: torch.device, overlap: int,
                   free_bytes: Optional[int] = None) -> Optional[int]:
    """The tile side for an image on ``device``; None when the whole image fits.

    Budget: ``MEMORY_SHARE`` of the free memory (``free_bytes`` or ``available_memory``), less
    the whole-image buffers; a tile of ``t x t`` pixels needs ``BYTES_PER_PIXEL * t**2``.

    Raises:
        MemoryError: even a tile of ``2 * overlap`` pixels does not fit.
    """
    kind = 'cuda' if device.type == 'cuda' else 'cpu'
    free = available_memory(device) if free_bytes is None else free_bytes
    budget = MEMORY_SHARE[kind] * free
    if kind == 'cpu':  # the whole-image buffers share the CPU's memory with the tiles
        budget -= ACCUMULATOR_BYTES_PER_PIXEL * height * width
    padded_pixels = math.ceil(height / MULTIPLE) * MULTIPLE * math.ceil(width / MULTIPLE) * MULTIPLE
    if padded_pixels * BYTES_PER_PIXEL <= budget:
        return None
    side = math.isqrt(max(int(budget / BYTES_PER_PIXEL), 0))
    tile = (side - MULTIPLE) // MULTIPLE * MULTIPLE  # the last tile may be 3 pixels longer
    if tile < max(2 * overlap, MULTIPLE):
        raise MemoryError(
            f'{free / 2**30:.1f} GiB free on {device}: not enough for a {2 * overlap}-pixel tile '
            f'of a {width}x{height} image at ~{BYTES_PER_PIXEL} bytes per pixel; free '
            'memory, or pass a smaller --tile/--overlap')
    get_logger().info(f'{width}x{height} image on {device}: {free / 2**30:.1f} GiB free, '
                      f'tiles of {tile}x{tile} (overlap {overlap})')
    return tile
