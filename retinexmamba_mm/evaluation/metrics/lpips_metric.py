"""LPIPS (AlexNet, v0.1) with AlexNet weights from a local file: nothing is ever downloaded."""
import os
from typing import Optional

import lpips
import numpy as np
import torch
from mmagic.registry import METRICS

from ...utils import get_logger
from .base import LowLightMetric

ALEXNET_FILE = 'alexnet-owt-7be5be79.pth'
ALEXNET_URL = f'https://download.pytorch.org/models/{ALEXNET_FILE}'
ALEXNET_ENV = 'RETINEXMAMBA_LPIPS_ALEXNET'


def default_alexnet_path():
    """Where torchvision itself would cache the weights: ``$TORCH_HOME/hub/checkpoints``."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints', ALEXNET_FILE)


def resolve_alexnet_weights(alexnet_weights: Optional[str] = None) -> str:
    """The AlexNet weights file to use: the option, else ``$RETINEXMAMBA_LPIPS_ALEXNET``, else
    the torch hub cache. Raises FileNotFoundError that says how to provide the file."""
    if alexnet_weights is not None:
        path, given_by = alexnet_weights, f'alexnet_weights={alexnet_weights!r}'
    elif os.environ.get(ALEXNET_ENV):
        path, given_by = os.environ[ALEXNET_ENV], f'${ALEXNET_ENV}={os.environ[ALEXNET_ENV]!r}'
    else:
        path, given_by = default_alexnet_path(), 'the torch hub cache (no option set)'
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'LPIPS needs the ImageNet AlexNet weights {ALEXNET_FILE} (about 233 MB), and '
            f'there is no such file at {path!r}, given by {given_by}. Nothing is downloaded. '
            f'Fetch {ALEXNET_URL} where you have internet, then either set the metric option '
            f"alexnet_weights='/path/to/{ALEXNET_FILE}' (in a config: dict(type='LPIPS', "
            f"alexnet_weights=...)), or export {ALEXNET_ENV}=/path/to/{ALEXNET_FILE}, or "
            f'put the file at {default_alexnet_path()!r} (torch hub cache, $TORCH_HOME).')
    return path


def build_lpips_alex(alexnet_weights: Optional[str]) -> torch.nn.Module:
    """``lpips.LPIPS(net='alex', version='0.1')`` in eval mode.

    Args:
        alexnet_weights (str, optional): A torchvision AlexNet state dict file
            (``features.*`` keys). None keeps the random backbone (tests only).
    """
    # pnet_rand=True stops lpips from asking torchvision to download; the package's own learned
    # linear heads (weights/v0.1/alex.pth) still load.
    net = lpips.LPIPS(net='alex', version='0.1', pnet_rand=True, verbose=False)
    if alexnet_weights is not None:
        state = torch.load(alexnet_weights, map_location='cpu', weights_only=True)
        features = {k[len('features.'):]: v for k, v in state.items()
                    if isinstance(k, str) and k.startswith('features.')}
        for i in range(1, net.net.N_slices + 1):
            layer_slice = getattr(net.net, f'slice{i}')
            missing = [k for k in layer_slice.state_dict() if k not in features]
            if missing:
                raise ValueError(f'{alexnet_weights} is not a torchvision AlexNet state dict: '
                                 f'it lacks features.{missing[0]}')
            layer_slice.load_state_dict({k: features[k] for k in layer_slice.state_dict()})
    return net.eval()


@METRICS.register_module()
class LPIPS(LowLightMetric):
    """LPIPS (Zhang et al. 2018), ``lpips`` package, AlexNet trunk, v0.1; lower is better.

    Reported as ``LPIPS`` (``LPIPS_GTmean`` with GT-mean). Inputs: the clamped float output and
    the target as RGB scaled to [-1, 1], as ``lpips`` expects (not quantised to uint8 first).
    The AlexNet weights come from a local file (see :func:`resolve_alexnet_weights`); if none is
    found, building the metric fails and the error says where to put it.

    Args:
        alexnet_weights (str, optional): Path of ``alexnet-owt-7be5be79.pth``. Default: the
            environment variable ``RETINEXMAMBA_LPIPS_ALEXNET``, else
            ``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``.
        pretrained_backbone (bool): False keeps a random AlexNet (``pnet_rand``): meaningless
            values, for tests only. Defaults to True.
        device (str): Device the network runs on. Defaults to ``'cpu'``.
        Others: see :class:`~.base.LowLightMetric`.
    """

    metric = 'LPIPS'

    def __init__(self,
                 alexnet_weights: Optional[str] = None,
                 pretrained_backbone: bool = True,
                 device: str = 'cpu',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if pretrained_backbone:
            weights = resolve_alexnet_weights(alexnet_weights)
        else:
            weights = None
            get_logger().warning('LPIPS with a random AlexNet (pretrained_backbone=False): '
                                 'its values are meaningless outside tests.')
        self.device = device
        self.net = build_lpips_alex(weights).to(device)

    def score(self, pred, gt):
        with torch.no_grad():
            return float(self.net(self._to_input(pred), self._to_input(gt)))

    def _to_input(self, img: np.ndarray) -> torch.Tensor:
        chw = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))
        return (chw[None] * 2 - 1).to(self.device)
