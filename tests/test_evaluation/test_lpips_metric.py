"""LPIPS: local AlexNet weights (never downloaded), the error that says where to put them, and the
value against the ``lpips`` package fed by hand."""
import lpips
import numpy as np
import pytest
import torch
import torchvision

from retinexmamba_mm.evaluation import LPIPS
from retinexmamba_mm.evaluation.metrics.lpips_metric import ALEXNET_ENV, ALEXNET_FILE


@pytest.fixture(scope='module')
def fake_alexnet(tmp_path_factory):
    """Random weights under torchvision's AlexNet keys. Only ``features.*`` (the LPIPS trunk)
    is kept, which makes the file 10 MB instead of 233; the real file's classifier is ignored."""
    torch.manual_seed(0)
    state = {k: v for k, v in torchvision.models.alexnet().state_dict().items()
             if k.startswith('features.')}
    path = tmp_path_factory.mktemp('weights') / ALEXNET_FILE
    torch.save(state, path)
    return path, state


@pytest.fixture
def no_weights_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv(ALEXNET_ENV, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))


def reference_lpips(state, pred_rgb01, gt_rgb01):
    """lpips.LPIPS with its trunk filled by position: its 12 trunk layers are AlexNet's
    ``features[0..11]``."""
    net = lpips.LPIPS(net='alex', version='0.1', pnet_rand=True, verbose=False).eval()
    trunk_layers = [m for s in (net.net.slice1, net.net.slice2, net.net.slice3, net.net.slice4,
                                net.net.slice5) for m in s]
    assert len(trunk_layers) == 12
    with torch.no_grad():
        for index, layer in enumerate(trunk_layers):
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.copy_(state[f'features.{index}.weight'])
                layer.bias.copy_(state[f'features.{index}.bias'])

    def to_input(img):
        return torch.from_numpy(img.transpose(2, 0, 1)).float()[None] * 2 - 1

    with torch.no_grad():
        return float(net(to_input(pred_rgb01), to_input(gt_rgb01)))


def test_lpips_with_local_weights_matches_the_lpips_package(fake_alexnet, make_sample):
    path, state = fake_alexnet
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    pred = np.clip(gt * 0.6 + rng.normal(0, 10, gt.shape), 0, 255)
    metric = LPIPS(alexnet_weights=str(path))
    metric.process(None, [make_sample(pred, gt), make_sample(gt.astype(np.float64), gt)])
    expected = reference_lpips(state, pred / 255.0, gt / 255.0) / 2  # the second pair scores 0
    assert metric.evaluate()['LPIPS'] == pytest.approx(expected, rel=1e-5)


def test_weights_from_env_and_torch_home(fake_alexnet, monkeypatch, tmp_path):
    path, state = fake_alexnet
    monkeypatch.setenv(ALEXNET_ENV, str(path))
    conv = LPIPS().net.net.slice1[0]
    assert torch.equal(conv.weight, state['features.0.weight'])

    monkeypatch.delenv(ALEXNET_ENV)
    hub = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    hub.mkdir(parents=True)
    (hub / ALEXNET_FILE).write_bytes(path.read_bytes())
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    conv = LPIPS().net.net.slice5[0]  # AlexNet's features[10]
    assert torch.equal(conv.weight, state['features.10.weight'])


def test_missing_weights_error_says_where_to_put_them(no_weights_anywhere, tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        LPIPS()
    message = str(error.value)
    for hint in ('alexnet_weights=', ALEXNET_ENV, str(tmp_path / 'torch_home' / 'hub' /
                                                      'checkpoints' / ALEXNET_FILE),
                 'download.pytorch.org/models/' + ALEXNET_FILE):
        assert hint in message
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        LPIPS(alexnet_weights=str(tmp_path / 'nowhere.pth'))


def test_wrong_weights_file_is_named(tmp_path):
    path = tmp_path / 'not_alexnet.pth'
    torch.save({'conv.weight': torch.zeros(1)}, path)
    with pytest.raises(ValueError, match='not a torchvision AlexNet'):
        LPIPS(alexnet_weights=str(path))


def test_random_backbone_for_tests_and_gt_mean_name(no_weights_anywhere, make_sample):
    metric = LPIPS(pretrained_backbone=False, gt_mean=True)
    gt = np.full((32, 32, 3), 90, np.uint8)
    metric.process(None, [make_sample(gt.astype(np.float64) / 2, gt)])  # GT-mean: identical
    assert metric.evaluate() == {'LPIPS_GTmean': pytest.approx(0.0, abs=1e-7)}
    with pytest.raises(RuntimeError, match='no image was evaluated'):
        LPIPS(pretrained_backbone=False).evaluate()
