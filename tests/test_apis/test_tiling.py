"""Tiling: spans, blending windows, tiled vs whole-image output of local operators, auto size."""
import math

import pytest
import torch
import torch.nn.functional as F

from retinexmamba_mm.apis.tiling import (
    ACCUMULATOR_BYTES_PER_PIXEL,
    BYTES_PER_PIXEL,
    MEMORY_SHARE,
    auto_tile_size,
    blend_window,
    check_tile,
    tile_spans,
    tiled_forward,
)

CASES = [(length, tile, overlap) for length in (5, 37, 64, 65, 100, 257, 1001)
         for tile, overlap in ((16, 4), (32, 16), (48, 8), (64, 0), (256, 64))]


@pytest.mark.parametrize('length, tile, overlap', CASES)
def test_spans_cover_the_axis_with_aligned_overlapping_tiles(length, tile, overlap):
    spans = tile_spans(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    covered = torch.zeros(length, dtype=torch.bool)
    for start, end in spans:
        covered[start:end] = True
        assert start % 4 == 0
        assert min(length, tile) <= end - start <= tile + 3
    assert covered.all()
    for (_, end), (next_start, _) in zip(spans, spans[1:]):
        assert end - next_start >= overlap
    if length <= tile:
        assert spans == [(0, length)]
    else:  # no more tiles than needed, give or take the 4-pixel alignment
        assert len(spans) <= math.ceil((length - overlap) / (tile - overlap - 4)) + 1


@pytest.mark.parametrize('length, tile, overlap', CASES)
def test_windows_are_positive_in_sum_and_one_at_image_borders(length, tile, overlap):
    spans = tile_spans(length, tile, overlap)
    total = torch.zeros(length)
    for span in spans:
        window = blend_window(span, length, overlap)
        assert window.shape == (span[1] - span[0], )
        assert (window >= 0).all() and (window <= 1).all()
        total[span[0]:span[1]] += window
    assert (total > 0.5).all()
    assert blend_window(spans[0], length, overlap)[0] == 1
    assert blend_window(spans[-1], length, overlap)[-1] == 1


def test_window_drops_a_quarter_of_the_overlap_and_ramps_up_smoothly():
    window = blend_window((40, 104), 200, overlap=16)
    assert torch.equal(window[:4], torch.zeros(4))
    assert torch.equal(window[-4:], torch.zeros(4))
    assert torch.equal(window[16:48], torch.ones(32))
    ramp = window[4:16]
    assert (ramp[1:] > ramp[:-1]).all()
    assert torch.allclose(ramp + ramp.flip(0), torch.ones(12))  # a symmetric raised cosine


def _local_network(image):
    """A local operator the shape of the network: pad to 4, 3x3 convs, a stride-2 grid (average
    4x4 blocks and spread them back), crop back. Its receptive field reaches 2 pixels plus the
    4x4 block, so with tiles aligned to 4 and a margin of >= 2 it is reproduced exactly."""
    height, width = image.shape[-2:]
    padded = F.pad(image, (0, -width % 4, 0, -height % 4), mode='reflect')
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 3, 3, 3, generator=generator) / 9
    features = F.conv2d(F.conv2d(padded, weight, padding=1).tanh(), weight, padding=1)
    blocks = F.interpolate(F.avg_pool2d(padded, 4), scale_factor=4, mode='nearest')
    return ((features + blocks)[..., :height, :width], padded[:, :1, :height, :width] * 2)


@pytest.mark.parametrize('height, width, tile, overlap', [(37, 53, 16, 8), (64, 96, 32, 8),
                                                          (101, 67, 48, 16)])
def test_tiled_local_operator_equals_whole_image(height, width, tile, overlap):
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1))
    expected = _local_network(image)
    progress = []
    outputs = tiled_forward(_local_network, image, tile, overlap, torch.device('cpu'),
                            progress=lambda done, total: progress.append((done, total)))
    assert len(outputs) == 2
    for out, want in zip(outputs, expected):
        assert out.shape == want.shape
        torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    total = len(tile_spans(height, tile, overlap)) * len(tile_spans(width, tile, overlap))
    assert progress == [(i + 1, total) for i in range(total)]


def test_tiled_forward_never_sees_more_than_a_tile():
    sizes = []

    def record(tile):
        sizes.append(tile.shape[-2:])
        return (tile, )

    tiled_forward(record, torch.rand(1, 3, 70, 90), 32, 8, torch.device('cpu'))
    assert max(h for h, _ in sizes) <= 35 and max(w for _, w in sizes) <= 35


@pytest.mark.parametrize('tile, overlap', [(30, 4), (0, 0), (32, 17), (32, -4)])
def test_invalid_tiles_are_refused(tile, overlap):
    with pytest.raises(ValueError, match='tile|overlap'):
        check_tile(tile, overlap)


def test_auto_tile_size_from_free_memory():
    cpu = torch.device('cpu')
    share, bpp = MEMORY_SHARE['cpu'], BYTES_PER_PIXEL
    # Plenty of memory: the whole image.
    assert auto_tile_size(400, 600, cpu, 64, free_bytes=10 * 400 * 600 * bpp) is None
    # 1 Mpixel of budget for a 12 Mpixel photo: tiles of about 1000 pixels, with room for the
    # 3 extra pixels of the last tile.
    buffers = ACCUMULATOR_BYTES_PER_PIXEL * 4000 * 3000
    free = int((1000 * 1000 * bpp + buffers) / share)
    tile = auto_tile_size(3000, 4000, cpu, 64, free_bytes=free)
    assert tile % 4 == 0 and 980 <= tile <= 996 and (tile + 4)**2 * bpp <= 1000**2 * bpp
    with pytest.raises(MemoryError, match='not enough'):
        auto_tile_size(3000, 4000, cpu, 64, free_bytes=int(buffers / share))
