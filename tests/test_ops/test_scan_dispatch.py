"""Backend choice and argument checks of ``retinexmamba_mm.ops`` (independent of any backend's
numerics)."""
import pytest
import torch

from retinexmamba_mm.ops import available_backends, cross_selective_scan, selective_scan
from retinexmamba_mm.ops.selective_scan import BackendUnavailable, dispatch, torch_scan

pytestmark = pytest.mark.usefixtures('single_thread')

HAS_CUDA = torch.cuda.is_available()


def tiny_inputs(batch=1, groups=2, channels=3, state=4, length=5):
    kd = groups * channels
    return dict(u=torch.randn(batch, kd, length), delta=torch.rand(batch, kd, length),
                A=-torch.rand(kd, state), B=torch.randn(batch, groups, state, length),
                C=torch.randn(batch, groups, state, length))


def test_cpu_tensors_get_the_torch_backend_without_a_compiler_and_it_is_logged_once(
        monkeypatch):
    monkeypatch.setattr(dispatch, '_module', lambda name: torch_scan if name == 'torch'
                        else 'not installed')
    logged = []
    monkeypatch.setattr(dispatch, 'log_once', lambda key, msg: logged.append((key, msg)))
    assert dispatch.resolve_backend('auto', 'cpu') is torch_scan
    assert dispatch.resolve_backend('auto', 'cpu', training=True) is torch_scan
    assert logged and 'torch' in logged[0][1]
    assert available_backends('cpu') == ['torch']


def test_auto_on_the_cpu_prefers_the_compiled_kernels(monkeypatch):
    fake = object()
    monkeypatch.setattr(dispatch, '_module', lambda name: torch_scan if name == 'torch'
                        else fake if name == 'cpu' else 'not installed')
    assert dispatch.resolve_backend('auto', 'cpu') is fake
    assert dispatch.resolve_backend('auto', 'cpu', training=True) is fake
    assert available_backends('cpu') == ['torch', 'cpu']


def test_auto_on_cuda_picks_the_faster_backend_for_inference_and_for_training(monkeypatch):
    """As measured on an H100: triton's forward, mamba_ssm's backward; each choice logged once
    per mode. (Both CUDA backends faked as installed; nothing runs.)"""
    fake = {name: object() for name in ('mamba_ssm', 'triton')}
    monkeypatch.setattr(dispatch, '_module', lambda name: torch_scan if name == 'torch'
                        else fake.get(name, 'not installed'))
    logged = []
    monkeypatch.setattr(dispatch, 'log_once', lambda key, msg: logged.append(msg))
    assert dispatch.resolve_backend('auto', 'cuda') is fake['triton']
    assert dispatch.resolve_backend('auto', 'cuda', training=True) is fake['mamba_ssm']
    assert 'inference' in logged[0] and 'training' in logged[1]
    del fake['mamba_ssm']
    assert dispatch.resolve_backend('auto', 'cuda', training=True) is fake['triton']


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match="'auto', 'torch', 'cpu', 'mamba_ssm', 'triton'"):
        selective_scan(**tiny_inputs(), backend='cuda_magic')


@pytest.mark.skipif(HAS_CUDA, reason='on a CUDA machine the CUDA backends may be available')
@pytest.mark.parametrize('backend,hint', [
    ('mamba_ssm', 'MAMBA_FORCE_BUILD=TRUE pip install --no-build-isolation mamba_ssm'),
    ('triton', 'pip install triton')])
def test_missing_backend_says_how_to_get_it(backend, hint):
    with pytest.raises(BackendUnavailable) as info:
        selective_scan(**tiny_inputs(), backend=backend)
    assert hint in str(info.value)
    assert isinstance(info.value, RuntimeError)


@pytest.mark.skipif(not HAS_CUDA, reason='needs CUDA for a CUDA backend to be available')
@pytest.mark.parametrize('backend', ['mamba_ssm', 'triton'])
def test_cuda_backend_refuses_cpu_tensors(backend):
    if backend not in available_backends('cuda'):
        pytest.skip(f'{backend} is not installed here')
    with pytest.raises(BackendUnavailable, match='CUDA tensors only'):
        selective_scan(**tiny_inputs(), backend=backend)


@pytest.mark.parametrize('name,bad,message', [
    ('delta', torch.rand(1, 6, 4), r'delta must have shape \(1, 6, 5\)'),
    ('A', torch.rand(6, 3), r'A must have shape \(6, 4\)'),
    ('C', torch.rand(1, 2, 4, 6), r'C must have shape \(1, 2, 4, 5\)'),
])
def test_bad_shapes_name_the_argument(name, bad, message):
    inputs = tiny_inputs()
    inputs[name] = bad
    with pytest.raises(ValueError, match=message):
        selective_scan(**inputs, backend='torch')


def test_channels_must_split_into_groups():
    inputs = tiny_inputs()
    inputs['B'] = torch.randn(1, 4, 4, 5)
    inputs['C'] = torch.randn(1, 4, 4, 5)
    with pytest.raises(ValueError, match='do not split into the 4 groups'):
        selective_scan(**inputs, backend='torch')


def test_cross_scan_checks_shapes():
    x = torch.randn(1, 3, 4, 5)
    with pytest.raises(ValueError, match=r'delta must have shape \(1, 4, 3, 4, 5\)'):
        cross_selective_scan(x, torch.rand(1, 4, 3, 5, 4), -torch.rand(12, 2),
                             torch.randn(1, 4, 2, 4, 5), torch.randn(1, 4, 2, 4, 5), None, None)


@pytest.mark.parametrize('backend', available_backends('cpu'))
@pytest.mark.parametrize('batch,height,width', [(0, 4, 5), (1, 0, 5), (2, 3, 0)])
def test_empty_inputs_give_empty_outputs_and_gradients(backend, batch, height, width):
    x = torch.randn(batch, 3, height, width, requires_grad=True)
    delta = torch.rand(batch, 4, 3, height, width, requires_grad=True)
    A = (-torch.rand(12, 2)).requires_grad_()
    y = cross_selective_scan(x, delta, A, torch.randn(batch, 4, 2, height, width),
                             torch.randn(batch, 4, 2, height, width), None, None,
                             backend=backend)
    y.sum().backward()
    assert y.shape == x.shape and x.grad.shape == x.shape
    assert A.grad is None or not A.grad.any()   # no gradient, or a zero one
    inputs = tiny_inputs(batch=batch, length=height * width)
    assert selective_scan(**inputs, backend=backend).shape == inputs['u'].shape
