"""The ``torch`` scan backend against the naive float64 references of ``naive_scan.py``.

Block sizes are shrunk (``BLOCK_ELEMENTS``) so that short test sequences cross many block
boundaries, including a partial last block, which is where a block-sequential scan can go wrong.
"""
import pytest
import torch

from retinexmamba_mm.ops import cross_selective_scan, selective_scan
from retinexmamba_mm.ops.selective_scan import torch_scan

from .naive_scan import naive_cross_selective_scan, naive_selective_scan

pytestmark = pytest.mark.usefixtures('single_thread')

F64 = torch.float64


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few steps, so every test sequence spans several of them."""
    def use(steps, slab):
        monkeypatch.setattr(torch_scan, 'BLOCK_ELEMENTS', steps * slab)
    return use


def random_scan_inputs(batch, groups, channels, state, length, seed, dtype=F64):
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=F64).to(dtype)

    kd = groups * channels
    return dict(u=r(batch, kd, length), delta=r(batch, kd, length) * 0.5,
                A=-torch.exp(r(kd, state) * 0.5), B=r(batch, groups, state, length),
                C=r(batch, groups, state, length), D=r(kd), delta_bias=r(kd) * 0.3 - 1.0)


def grads_of(fn, inputs, grad_out):
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in inputs.items()
              if v is not None}
    args = {k: leaves.get(k) for k in inputs}
    y = fn(**args)
    y.backward(grad_out)
    return y.detach(), {k: v.grad for k, v in leaves.items()}


@pytest.mark.parametrize('use_d,use_bias,softplus', [(True, True, True), (False, False, False),
                                                     (True, False, True), (False, True, False)])
def test_selective_scan_matches_naive(small_blocks, use_d, use_bias, softplus):
    batch, groups, channels, state, length = 2, 3, 2, 5, 29
    small_blocks(4, batch * groups * channels * state)   # 29 = 7 blocks of 4 + 1
    inputs = random_scan_inputs(batch, groups, channels, state, length, seed=0)
    if not softplus:
        inputs['delta'] = inputs['delta'].abs()  # step sizes given directly must be >= 0
    if not use_d:
        inputs['D'] = None
    if not use_bias:
        inputs['delta_bias'] = None
    grad_out = torch.randn(batch, groups * channels, length, dtype=F64)

    def ours(**kw):
        return selective_scan(**kw, delta_softplus=softplus, backend='torch')

    def ref(**kw):
        return naive_selective_scan(**kw, delta_softplus=softplus)

    y, g = grads_of(ours, inputs, grad_out)
    y_ref, g_ref = grads_of(ref, inputs, grad_out)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    assert g.keys() == g_ref.keys()
    for name in g:
        torch.testing.assert_close(g[name], g_ref[name], rtol=1e-9, atol=1e-9, msg=name)


@pytest.mark.parametrize('recur', ['_recur_pairs', '_recur_segments'])
@pytest.mark.parametrize('steps', [*range(1, 10), 16, 17, 31])
@pytest.mark.parametrize('with_carry', [False, True])
def test_fast_recurrences_match_step_by_step(recur, steps, with_carry):
    """The recurrences used for small slabs, against h_t = a_t h_{t-1} + x_t."""
    gen = torch.Generator().manual_seed(steps)
    x = torch.randn(steps, 3, 5, generator=gen, dtype=F64)
    a = torch.rand(steps, 3, 5, generator=gen, dtype=F64)
    h = torch.randn(3, 5, generator=gen, dtype=F64) if with_carry else None
    expected, state = [], torch.zeros(3, 5, dtype=F64) if h is None else h
    for t in range(steps):
        state = a[t] * state + x[t]
        expected.append(state)
    ours = x.clone()
    getattr(torch_scan, recur)(ours, a.clone(), h, torch_scan._StepViews())
    torch.testing.assert_close(ours, torch.stack(expected), rtol=1e-12, atol=1e-12)


def test_cpu_steps_run_as_one_in_order_foreach_call():
    """The fast CPU recurrence relies on foreach ops running their list in order; if a PyTorch
    release changes that, the scan falls back to the Python loop, and this test says so."""
    assert torch_scan._foreach_runs_in_order()
    states = torch.arange(1.0, 6.0, dtype=F64)[:, None].repeat(1, 2)
    steps = list(states.unbind(0))
    torch_scan._in_order_multiply(steps[1:], steps[:-1])   # running product: 1, 2, 6, 24, 120
    assert states[:, 1].tolist() == [1.0, 2.0, 6.0, 24.0, 120.0]


@pytest.mark.parametrize('segmented,paired', [(0, 0), (0, 1 << 30), (1 << 30, 0)])
def test_every_recurrence_path(monkeypatch, small_blocks, segmented, paired):
    """Step by step, in pairs and in segments (chosen by slab size) give the same scan."""
    monkeypatch.setattr(torch_scan, 'SEGMENTED_BELOW', segmented)
    monkeypatch.setattr(torch_scan, 'PAIRED_BELOW', paired)
    small_blocks(11, 2 * 3 * 2 * 4)
    inputs = random_scan_inputs(2, 3, 2, 4, 23, seed=9)
    torch.testing.assert_close(selective_scan(**inputs, delta_softplus=True, backend='torch'),
                               naive_selective_scan(**inputs, delta_softplus=True),
                               rtol=1e-10, atol=1e-10)


def test_selective_scan_gradcheck(small_blocks):
    batch, groups, channels, state, length = 1, 2, 2, 3, 9
    small_blocks(2, batch * groups * channels * state)
    inputs = random_scan_inputs(batch, groups, channels, state, length, seed=1)
    leaves = [v.requires_grad_(True) for v in inputs.values()]
    assert torch.autograd.gradcheck(
        lambda *a: selective_scan(*a, delta_softplus=True, backend='torch'), leaves)


def random_cross_inputs(batch, channels, state, height, width, seed):
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=F64)

    return dict(x=r(batch, channels, height, width), delta=r(batch, 4, channels, height, width),
                A=-torch.exp(r(4 * channels, state) * 0.5), B=r(batch, 4, state, height, width),
                C=r(batch, 4, state, height, width), D=r(4 * channels),
                delta_bias=r(4 * channels) * 0.3 - 1.0)


@pytest.mark.parametrize('height,width', [(5, 7), (6, 1), (1, 4)])
def test_cross_selective_scan_matches_explicit_copies(small_blocks, height, width):
    batch, channels, state = 2, 3, 4
    small_blocks(3, batch * 4 * channels * state)
    inputs = random_cross_inputs(batch, channels, state, height, width, seed=2)
    grad_out = torch.randn(batch, channels, height, width, dtype=F64)

    def ours(**kw):
        return cross_selective_scan(**kw, backend='torch')

    y, g = grads_of(ours, inputs, grad_out)
    y_ref, g_ref = grads_of(naive_cross_selective_scan, inputs, grad_out)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    for name in g:
        torch.testing.assert_close(g[name], g_ref[name], rtol=1e-9, atol=1e-9, msg=name)


def test_cross_selective_scan_gradcheck(small_blocks):
    small_blocks(2, 4 * 2 * 2)
    inputs = random_cross_inputs(1, 2, 2, 3, 4, seed=3)
    leaves = [v.requires_grad_(True) for v in inputs.values()]
    assert torch.autograd.gradcheck(
        lambda *a: cross_selective_scan(*a, delta_softplus=True, backend='torch'), leaves)


@pytest.mark.parametrize('grad', [False, True])
def test_cross_selective_scan_in_pieces(monkeypatch, grad):
    """Flips and the merge run piece by piece on large maps (here forced to 2 rows/columns)."""
    monkeypatch.setattr(torch_scan, '_chunk', lambda *shape: 2)
    inputs = random_cross_inputs(2, 3, 4, 5, 7, seed=8)
    leaves = {k: v.clone().requires_grad_(grad) for k, v in inputs.items()}
    y = cross_selective_scan(**leaves, backend='torch')
    torch.testing.assert_close(y, naive_cross_selective_scan(**inputs), rtol=1e-10, atol=1e-10)


def test_cross_selective_scan_accepts_strided_inputs():
    """SS2D hands over channels-last views; any strides must give the same result."""
    inputs = random_cross_inputs(2, 3, 4, 4, 5, seed=4)
    strided = dict(inputs)
    strided['x'] = inputs['x'].contiguous(memory_format=torch.channels_last)
    strided['delta'] = inputs['delta'].permute(0, 3, 4, 1, 2).contiguous().permute(0, 3, 4, 1, 2)
    strided['B'] = inputs['B'].transpose(-1, -2).contiguous().transpose(-1, -2)
    y = cross_selective_scan(**strided, backend='torch')
    torch.testing.assert_close(y, naive_cross_selective_scan(**inputs), rtol=1e-10, atol=1e-10)


def test_long_sequence_fp32_stays_accurate():
    """Thousands of steps in fp32 (the model's precision) against the float64 reference."""
    inputs = random_scan_inputs(1, 2, 4, 8, 3000, seed=5)
    ours = selective_scan(**{k: v.float() for k, v in inputs.items()}, delta_softplus=True,
                          backend='torch')
    ref = naive_selective_scan(**inputs, delta_softplus=True)
    assert ours.dtype == torch.float32
    assert ((ours.double() - ref).norm() / ref.norm()).item() < 1e-5


@pytest.mark.parametrize('scale_delta,scale_a', [(1e3, 1.0), (1e-6, 1.0), (10.0, 1e3),
                                                 (1e-3, 1e-6)])
def test_extreme_delta_and_A(small_blocks, scale_delta, scale_a):
    """Huge decays underflow to exactly 0 and tiny ones stay at 1: no inf, no nan, and the
    values still match the float64 reference (in fp32, forward and gradients)."""
    batch, groups, channels, state, length = 1, 2, 3, 4, 40
    small_blocks(6, batch * groups * channels * state)
    inputs = random_scan_inputs(batch, groups, channels, state, length, seed=6)
    inputs['delta'] = inputs['delta'].abs() * scale_delta
    inputs['A'] = inputs['A'] * scale_a
    inputs['delta_bias'] = None
    grad_out = torch.randn(batch, groups * channels, length, dtype=F64)

    def ours(**kw):
        kw = {k: None if v is None else v.float() for k, v in kw.items()}
        return selective_scan(**kw, backend='torch')

    y, g = grads_of(ours, inputs, grad_out.float())
    y_ref, g_ref = grads_of(naive_selective_scan, inputs, grad_out)
    assert torch.isfinite(y).all() and all(torch.isfinite(v).all() for v in g.values())
    scale = y_ref.abs().max()
    torch.testing.assert_close(y.double(), y_ref, rtol=1e-4, atol=1e-5 * scale)
    for name in g:
        ref = g_ref[name]
        torch.testing.assert_close(g[name].double(), ref, rtol=1e-3,
                                   atol=1e-5 * ref.abs().max() + 1e-30, msg=name)


@pytest.mark.parametrize('length', [1, 6])
def test_inputs_are_left_unchanged(length):
    """The no-grad path works in place on its own copies, never on the caller's tensors."""
    inputs = random_scan_inputs(1, 2, 3, 4, length, seed=10)
    before = {k: v.clone() for k, v in inputs.items()}
    with torch.no_grad():
        selective_scan(**inputs, delta_softplus=True, backend='torch')
    cross = random_cross_inputs(1, 3, 4, 1, length, seed=11)
    cross_before = {k: v.clone() for k, v in cross.items()}
    with torch.no_grad():
        cross_selective_scan(**cross, backend='torch')
    for given, kept in ((inputs, before), (cross, cross_before)):
        for name in given:
            assert torch.equal(given[name], kept[name]), name


def test_no_grad_path_matches_and_keeps_dtype():
    inputs = random_scan_inputs(2, 2, 3, 4, 17, seed=7)
    with torch.no_grad():
        y16 = selective_scan(**{k: v.to(torch.bfloat16) for k, v in inputs.items()},
                             backend='torch')
        y32 = selective_scan(**{k: v.float() for k, v in inputs.items()}, backend='torch')
    assert y16.dtype == torch.bfloat16 and y32.dtype == torch.float32
    ref = naive_selective_scan(**inputs)
    torch.testing.assert_close(y32.double(), ref, rtol=1e-5, atol=1e-5)
