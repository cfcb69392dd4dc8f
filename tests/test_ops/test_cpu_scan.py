"""The ``cpu`` scan backend (compiled C kernel) against independent references: the naive
float64 scans of ``naive_scan.py``, and for its own exp2 and softplus, values from Python's
``math`` module. Skipped with the reason where no C compiler can build the kernel."""
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from retinexmamba_mm.ops import cross_selective_scan, selective_scan
from retinexmamba_mm.ops.selective_scan import BackendUnavailable, cpu_scan, dispatch

from .naive_scan import naive_cross_selective_scan, naive_selective_scan
from .test_torch_scan import grads_of, random_scan_inputs

AVAILABLE = cpu_scan.is_available()
pytestmark = [pytest.mark.usefixtures('single_thread'),
              pytest.mark.skipif(not AVAILABLE, reason='' if AVAILABLE else
                                 f'cpu scan backend: {cpu_scan.unavailable_reason()}')]

F64 = torch.float64


def relative_error(ours, reference):
    return ((ours.double() - reference).abs().max() / reference.abs().max()).item()


@pytest.mark.parametrize('state', [1, 4, 5, 16, 32, 64])
@pytest.mark.parametrize('channels', [8, 13])      # 13: a partial vector of channels
def test_flat_scan_matches_naive(state, channels):
    inputs = random_scan_inputs(2, 3, channels, state, 37, seed=state)
    reference = naive_selective_scan(**inputs, delta_softplus=True)
    ours = selective_scan(**{k: v.float() for k, v in inputs.items()}, delta_softplus=True,
                          backend='cpu')
    assert ours.dtype == torch.float32 and ours.is_contiguous()
    assert relative_error(ours, reference) < 2e-6


@pytest.mark.parametrize('use_d,use_bias,softplus', [(False, False, False), (True, False, True),
                                                     (False, True, False)])
def test_flat_scan_options(use_d, use_bias, softplus):
    inputs = random_scan_inputs(1, 2, 9, 4, 23, seed=1)
    if not softplus:
        inputs['delta'] = inputs['delta'].abs()
    inputs['D'] = inputs['D'] if use_d else None
    inputs['delta_bias'] = inputs['delta_bias'] if use_bias else None
    reference = naive_selective_scan(**inputs, delta_softplus=softplus)
    ours = selective_scan(**{k: v if v is None else v.float() for k, v in inputs.items()},
                          delta_softplus=softplus, backend='cpu')
    assert relative_error(ours, reference) < 2e-6


def ss2d_layout(x, delta, B, C):
    """The layouts SS2D hands over: x channels-last, delta pixel-major (b, H, W, 4, D), B and C
    slices of one pixel-major projection (b, H, W, 4, R + 2N)."""
    batch, channels, height, width = x.shape
    state = B.shape[2]
    x = x.contiguous(memory_format=torch.channels_last)
    delta = delta.permute(0, 3, 4, 1, 2).contiguous().permute(0, 3, 4, 1, 2)
    projection = torch.cat([torch.zeros(batch, 4, 3, height, width, dtype=B.dtype), B, C], 2)
    projection = projection.permute(0, 3, 4, 1, 2).contiguous().permute(0, 3, 4, 1, 2)
    return x, delta, projection[:, :, 3:3 + state], projection[:, :, 3 + state:]


def cross_inputs(batch, channels, state, height, width, seed):
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=F64)

    return dict(x=r(batch, channels, height, width),
                delta=r(batch, 4, channels, height, width) * 0.5,
                A=-torch.exp(r(4 * channels, state) * 0.5), B=r(batch, 4, state, height, width),
                C=r(batch, 4, state, height, width), D=r(4 * channels),
                delta_bias=r(4 * channels) * 0.3 - 1.0)


@pytest.mark.parametrize('layout', ['contiguous', 'ss2d'])
@pytest.mark.parametrize('batch,channels,state,height,width', [
    (1, 16, 16, 5, 7), (2, 13, 5, 4, 9), (1, 40, 32, 3, 3), (1, 8, 4, 1, 6)])
def test_cross_scan_matches_naive(layout, batch, channels, state, height, width):
    inputs = cross_inputs(batch, channels, state, height, width, seed=channels)
    reference = naive_cross_selective_scan(**inputs)
    ours = {k: v.float() for k, v in inputs.items()}
    if layout == 'ss2d':
        ours['x'], ours['delta'], ours['B'], ours['C'] = ss2d_layout(
            ours['x'], ours['delta'], ours['B'], ours['C'])
    out = cross_selective_scan(**ours, backend='cpu')
    assert out.shape == (batch, channels, height, width) and out.dtype == torch.float32
    assert relative_error(out, reference) < 2e-6


def test_cross_scan_keeps_the_input_dtype():
    inputs = {k: v.to(torch.bfloat16) for k, v in cross_inputs(1, 8, 4, 3, 4, seed=0).items()}
    reference = naive_cross_selective_scan(**{k: v.double() for k, v in inputs.items()})
    out = cross_selective_scan(**inputs, backend='cpu')
    assert out.dtype == torch.bfloat16 and relative_error(out, reference) < 1e-2


# fp32 holds an exponent x to a relative 2^-24, and turning it into base 2 rounds once more, so
# exp(x) in fp32 carries a relative error of ~|x| 2^-23 however it is computed: the bounds
# below are the kernel's own error (3e-7) plus that.
def exp_bound(x):
    return 3e-7 + x.abs() * 2.0 ** -23


def test_decays_follow_exp_over_the_whole_range():
    """Two steps, one state: with delta_0 = u_0 = B = C = 1 and u_1 = 0, y_1 = exp(delta_1 A):
    the kernel's own exp2 against math.exp, from 1 down past float underflow."""
    exponents = torch.cat([-torch.logspace(-6, math.log10(87.0), 200, dtype=F64),
                           torch.tensor([0.0, -90.0, -200.0, -1e4], dtype=F64)])
    exponents = exponents.float().double()          # what the kernel is given
    count = exponents.numel()
    delta = torch.stack([torch.ones(count, dtype=F64), -exponents], -1)[None]   # A = -1
    u = torch.tensor([1.0, 0.0], dtype=F64).expand(1, count, 2)
    ones = torch.ones(1, 1, 1, 2)
    y = selective_scan(u.float(), delta.float(), -torch.ones(count, 1), ones, ones,
                       backend='cpu')[0, :, 1].double()
    expected = torch.tensor([math.exp(e) for e in exponents.tolist()], dtype=F64)
    normal = expected > 2.0 ** -126
    error = (y - expected).abs() / expected
    assert (error[normal] < exp_bound(exponents[normal])).all()
    assert (y[~normal] <= 2.0 ** -125).all() and (y[~normal] >= 0).all()


def test_softplus_matches_the_formula():
    """One step, one state, B = C = u = 1, A = 0: y = softplus(delta + bias), against
    log1p(exp(x)) in float64 (x itself above PyTorch's threshold of 20)."""
    values = torch.linspace(-40.0, 40.0, 1601, dtype=F64)
    count = values.numel()
    ones = torch.ones(1, 1, 1, 1)
    y = selective_scan(torch.ones(1, count, 1), values.float().view(1, count, 1),
                       torch.zeros(count, 1), ones, ones, delta_softplus=True,
                       backend='cpu')[0, :, 0].double()
    values = values.float().double()                # what the kernel is given
    expected = torch.tensor([x if x > 20 else math.log1p(math.exp(x)) for x in values.tolist()],
                            dtype=F64)
    assert ((y - expected).abs() / expected < exp_bound(values.clamp(max=0))).all()


@pytest.mark.parametrize('state,channels,length', [(4, 8, 37), (5, 13, 300), (16, 9, 20),
                                                   (64, 3, 40)])
@pytest.mark.parametrize('softplus', [True, False])
def test_flat_gradients_match_naive(state, channels, length, softplus):
    """Sequences of several backward segments (~sqrt(L) steps, at least 16)."""
    inputs = random_scan_inputs(2, 2, channels, state, length, seed=length)
    if not softplus:   # step sizes given directly must be >= 0
        inputs['delta'], inputs['delta_bias'] = inputs['delta'].abs(), None
    grad_out = torch.randn(2, 2 * channels, length, dtype=F64)
    y_ref, g_ref = grads_of(lambda **kw: naive_selective_scan(**kw, delta_softplus=softplus),
                            inputs, grad_out)
    y, grads = grads_of(lambda **kw: selective_scan(**kw, delta_softplus=softplus,
                                                    backend='cpu'),
                        {k: v if v is None else v.float() for k, v in inputs.items()},
                        grad_out.float())
    assert relative_error(y, y_ref) < 2e-6
    for name, reference in g_ref.items():
        assert relative_error(grads[name], reference) < 1e-5, name


@pytest.mark.parametrize('layout', ['contiguous', 'ss2d'])
@pytest.mark.parametrize('batch,channels,state,height,width', [
    (1, 9, 4, 3, 5), (2, 16, 16, 6, 7), (1, 13, 32, 5, 4)])
def test_cross_gradients_match_naive(layout, batch, channels, state, height, width):
    inputs = cross_inputs(batch, channels, state, height, width, seed=3)
    grad_out = torch.randn(batch, channels, height, width, dtype=F64)
    y_ref, g_ref = grads_of(naive_cross_selective_scan, inputs, grad_out)
    ours = {k: v.float() for k, v in inputs.items()}
    if layout == 'ss2d':
        ours['x'], ours['delta'], ours['B'], ours['C'] = ss2d_layout(
            ours['x'], ours['delta'], ours['B'], ours['C'])
    y, grads = grads_of(lambda **kw: cross_selective_scan(**kw, backend='cpu'), ours,
                        grad_out.float())
    assert relative_error(y, y_ref) < 2e-6
    for name, reference in g_ref.items():
        assert relative_error(grads[name], reference) < 1e-5, name


def test_auto_uses_it_on_the_cpu():
    assert dispatch.resolve_backend('auto', 'cpu') is cpu_scan
    assert dispatch.resolve_backend('auto', 'cpu', training=True) is cpu_scan


def test_it_refuses_cuda_tensors():
    with pytest.raises(BackendUnavailable, match='CPU tensors only'):
        dispatch.resolve_backend('cpu', 'cuda')


def test_it_compiles_into_an_empty_cache_and_reports_a_missing_compiler(tmp_path):
    """Fresh interpreters: a build into an empty cache directory; one with a compiler that
    rejects -march=native (it retries without); then a compiler that does not exist, which
    must be named, with how to get the backend."""
    code = textwrap.dedent('''
        import torch
        from retinexmamba_mm.ops import selective_scan
        from retinexmamba_mm.ops.selective_scan import BackendUnavailable
        ones = torch.ones(1, 1, 1, 3)
        try:
            y = selective_scan(torch.ones(1, 2, 3), torch.ones(1, 2, 3), -torch.ones(2, 1),
                               ones, ones, backend='cpu')
            print('ran', y.shape[-1])
        except BackendUnavailable as error:
            print('unavailable', error)
    ''')
    env = dict(os.environ, RETINEXMAMBA_CACHE_DIR=str(tmp_path / 'cache'))
    built = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                           timeout=300)
    assert built.stdout.strip().splitlines()[-1] == 'ran 3', built.stderr[-2000:]
    # logged (to stdout by mmengine's logger, to stderr by logging's where mmengine is absent)
    assert 'compiling cpu_kernels.c' in built.stdout + built.stderr
    assert list((tmp_path / 'cache').glob('cpu_kernels-*.so'))
    picky = tmp_path / 'picky-cc'
    picky.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = -march=native ] && exit 1; done\n'
                     f'exec {os.environ.get("CC") or "cc"} "$@"\n')
    picky.chmod(0o755)
    env.update(CC=str(picky), RETINEXMAMBA_CACHE_DIR=str(tmp_path / 'portable'))
    portable = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                              text=True, timeout=300)
    assert portable.stdout.strip().splitlines()[-1] == 'ran 3', portable.stderr[-2000:]
    env.update(CC='no-such-compiler', RETINEXMAMBA_CACHE_DIR=str(tmp_path / 'other'))
    missing = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                             text=True, timeout=300)
    assert 'unavailable' in missing.stdout and "'no-such-compiler'" in missing.stdout
    assert 'install a C compiler' in missing.stdout


def test_results_do_not_depend_on_the_thread_count():
    """The kernels split their work by channel groups and directions, never inside a sum, so
    their results are bitwise the same on any number of threads (at this size PyTorch's own
    reductions around them, for dD, the bias and A, run in one piece too)."""
    inputs = {k: v.float() for k, v in cross_inputs(2, 24, 16, 6, 7, seed=5).items()}
    grad_out = torch.randn(2, 24, 6, 7)
    results = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        results.append(grads_of(lambda **kw: cross_selective_scan(**kw, backend='cpu'), inputs,
                                grad_out))
    torch.set_num_threads(1)
    for y, grads in results[1:]:
        assert torch.equal(y, results[0][0])
        assert all(torch.equal(grads[k], results[0][1][k]) for k in grads)
