"""Enhance your own images: ``init_model`` and ``enhance``, in the style of MMagic's inferencers.

    model = init_model(checkpoint='best_PSNR.pth', device='cuda')   # LOL-v1 config by default
    output = enhance(model, 'photo.jpg')                             # uint8 H x W x 3, RGB
    output, illumination = enhance(model, array, return_illumination=True)

No target image is needed. Inputs are read by ``datasets.read_image_rgb``, the loader of training
and testing: EXIF orientation applied, 16-bit files keep their high byte, grayscale is repeated to
three channels, alpha is dropped. Outputs are 8-bit RGB (the model's [0, 1] output clamped,
scaled by 255 and rounded); pixel values stay in the input's colour space (no ICC conversion).

Memory: images too large for the free memory are enhanced in overlapping tiles (``tiling.py``,
which states how close tiles come to whole-image inference: within 1 level of 8 bits with
random weights).
"""
import contextlib
import copy
import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

from ..datasets import read_image_rgb
from ..utils import get_logger
from .checkpoint import generator_state_dict
from .cuda_graph import CudaGraphForward
from .tiling import auto_tile_size, check_tile, tiled_forward

DEFAULT_CONFIG = 'retinexmamba_lol_v1.py'
DEFAULT_OVERLAP = 64

ImageLike = Union[str, os.PathLike, np.ndarray]


def default_config_path() -> Path:
    """configs/retinexmamba_lol_v1.py of the repository, or of the installed package (mim)."""
    package = Path(__file__).resolve().parents[1]
    candidates = [package / '.mim' / 'configs' / DEFAULT_CONFIG,
                  package.parent / 'configs' / DEFAULT_CONFIG]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f'default config {DEFAULT_CONFIG} not found in '
                            f'{[str(c) for c in candidates]}; pass a config path')


def init_model(config=None,
               checkpoint: Optional[str] = None,
               device: Union[str, torch.device] = 'cpu',
               scan_backend: str = 'auto') -> torch.nn.Module:
    """Build the editor of a config, load a checkpoint, move it to ``device``, eval mode.

    Args:
        config (str | Path | mmengine.Config, optional): A model config whose ``model`` is a
            ``LowLightEnhancer`` (or another editor holding the network as ``generator``).
            Default: ``configs/retinexmamba_lol_v1.py``.
        checkpoint (str, optional): Our checkpoint (mmengine) or the authors' ``.pth``; loaded
            strictly into the generator. None leaves the weights random (tests only; warned).
        device (str | torch.device): ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        scan_backend (str): ``'auto'``, ``'torch'``, ``'cpu'``, ``'mamba_ssm'`` or
            ``'triton'``; ``'auto'`` picks per device at the first forward and logs the choice.

    Returns:
        The editor in eval mode; ``model.cfg`` holds the config it was built from.
    """
    try:
        from mmagic.registry import MODELS
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
    except ImportError as error:
        raise ImportError('init_model builds models from MMagic configs and needs mmengine and '
                          'mmagic (see the README install); without them, build '
                          'retinexmamba_mm.models.RetinexMamba yourself and pass it to '
                          'enhance()') from error
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'device {device} was asked for, but CUDA is not available here; '
                           "use device='cpu'")
    config = default_config_path() if config is None else config
    cfg = config if isinstance(config, Config) else Config.fromfile(str(config))
    if 'generator' not in cfg.get('model', {}):
        raise ValueError(f'{config}: expected `model = dict(type=..., generator=dict(...))`, '
                         'an editor holding the network as its generator')
    init_default_scope(cfg.get('default_scope', 'mmagic'))
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.cfg = cfg

    logger = get_logger()
    if checkpoint is None:
        logger.warning('init_model: no checkpoint given, the weights are RANDOM and the outputs '
                       'meaningless; pass a checkpoint (this is for tests only)')
    else:
        state = generator_state_dict(checkpoint)
        try:
            model.generator.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ValueError(f'{checkpoint} does not fit the generator of {config} (another '
                             f'n_feat, num_blocks or ablation?):\n{error}') from error
    if hasattr(model.generator, 'set_scan_backend'):
        model.generator.set_scan_backend(scan_backend)
    elif scan_backend != 'auto':
        raise ValueError(f'{type(model.generator).__name__} has no selective scan; '
                         f'scan_backend={scan_backend!r} does not apply')
    model.to(device).eval()
    logger.info(f'init_model: {type(model.generator).__name__} from {config} on {device}, '
                f'scan backend {scan_backend!r}, weights '
                f'{checkpoint if checkpoint else "random"}')
    return model


def enhance(model: torch.nn.Module,
            image: ImageLike,
            tile: Union[None, str, int] = 'auto',
            overlap: int = DEFAULT_OVERLAP,
            self_ensemble: bool = False,
            dtype: Optional[torch.dtype] = None,
            return_illumination: bool = False,
            progress: Optional[Callable[[int, int], None]] = None,
            cuda_graph: bool = False):
    """Enhance one image; no target needed.

    Args:
        model: From ``init_model`` (an editor with ``.enhance``), or a bare network such as
            ``RetinexMamba`` (then without self-ensemble).
        image: A file path, or a ``uint8`` RGB array ``H x W x 3``.
        tile: ``'auto'`` (default): whole image when it fits the free memory of the model's
            device, else tiles sized to fit; an int: tiles of that side (a multiple of 4) for
            images larger than it; None: always the whole image.
        overlap: Minimum overlap of neighbouring tiles in pixels.
        self_ensemble: Average the 8 flip/rotation variants (x8 time); overrides the config's
            ``test_cfg``.
        dtype: None (fp32) or ``torch.bfloat16`` (autocast; meant for CUDA, the scan still
            accumulates in fp32).
        return_illumination: Also return the estimated illumination map ``L``.
        progress: Called as ``progress(done, total)`` after each tile.
        cuda_graph: Replay the forward as a CUDA graph, captured once per input (or tile) size
            and kept on the model for later calls (``cuda_graph.py``): faster for many images
            of one size, a capture's cost for each new size. CUDA only.

    Returns:
        The enhanced ``uint8`` RGB array ``H x W x 3`` of the input's size; with
        ``return_illumination`` a tuple with the raw illumination map, float32 ``H x W x 3``
        (unbounded; see ``illumination_to_image`` to view it).
    """
    array = _as_rgb_array(image)
    height, width = array.shape[:2]
    device = next(model.parameters()).device
    forward = _forward_function(model, self_ensemble, _autocast(device, dtype),
                                return_illumination)
    if cuda_graph:
        forward = _graphed(model, forward, device, (self_ensemble, dtype, return_illumination))
    pixels = torch.tensor(array).permute(2, 0, 1)[None].float().div_(255)  # copies: read-only OK
    tile_size = _resolve_tile(tile, height, width, device, overlap)
    with torch.inference_mode():
        while True:
            try:
                if tile_size is None:
                    outputs = [out.float().cpu() for out in forward(pixels.to(device))]
                else:
                    outputs = tiled_forward(forward, pixels, tile_size, overlap, device, progress)
                break
            except torch.OutOfMemoryError:
                if tile != 'auto':
                    raise
                tile_size = _smaller_tile(tile_size, height, width, overlap, device)
        output = outputs[0][0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0)
    output = np.ascontiguousarray(output.numpy())
    if not return_illumination:
        return output
    return output, np.ascontiguousarray(outputs[1][0].permute(1, 2, 0).numpy())


def illumination_to_image(illumination: np.ndarray) -> np.ndarray:
    """The raw illumination map stretched to ``uint8`` over its own min..max, for display
    (one range for all channels, so colour differences stay visible)."""
    low, high = float(illumination.min()), float(illumination.max())
    scaled = (illumination - low) / max(high - low, 1e-8)
    return np.round(scaled * 255).astype(np.uint8)


def _as_rgb_array(image: ImageLike) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        return read_image_rgb(image)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        description = (f'{image.dtype} array of shape {image.shape}'
                       if isinstance(image, np.ndarray) else type(image).__name__)
        raise ValueError(f'enhance: expected a file path or a uint8 RGB array H x W x 3, got '
                         f'{description}')
    return image


def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext
    if dtype != torch.bfloat16:
        raise ValueError(f'enhance: dtype must be None, torch.float32 or torch.bfloat16, '
                         f'got {dtype}')
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def _graphed(model, forward, device, options):
    """The model's CUDA-graph replayer for these options, made on first use and kept on it."""
    if device.type != 'cuda':
        raise ValueError(f'enhance: cuda_graph needs the model on a CUDA device, it is on {device}')
    cache = model.__dict__.setdefault('_cuda_graph_forwards', {})
    if options not in cache:
        cache[options] = CudaGraphForward(forward)
    return cache[options]


def _forward_function(model, self_ensemble, autocast, return_illumination):
    """``tile -> (output,) or (output, illumination)`` for an editor or a bare network."""
    if hasattr(model, 'enhance'):
        _check_unit_range_inputs(model)

        def run(inputs):
            with _test_cfg(model, self_ensemble=self_ensemble):
                return model.enhance(inputs)
    elif self_ensemble:
        raise ValueError('enhance: self_ensemble needs the editor from init_model (its '
                         'test_cfg holds the ensemble); a bare network has none')
    else:
        def run(inputs):
            return model(inputs, return_illumination=True)

    def forward(inputs):
        with autocast():
            output, illumination = run(inputs)
        if not return_illumination:
            return (output, )
        if illumination is None:
            raise ValueError(f'{type(model).__name__} gives no illumination map; '
                             'call enhance without return_illumination')
        return output, illumination

    return forward


@contextlib.contextmanager
def _test_cfg(model, **overrides):
    saved = dict(model.test_cfg)
    model.test_cfg.update(overrides)
    try:
        yield
    finally:
        model.test_cfg.clear()
        model.test_cfg.update(saved)


def _check_unit_range_inputs(model):
    """The network is fed RGB in [0, 1]: the data preprocessor must map 0..255 to 0..1."""
    preprocessor = getattr(model, 'data_preprocessor', None)
    mean, std = getattr(preprocessor, 'mean', None), getattr(preprocessor, 'std', None)
    if mean is None or std is None:
        return
    if not (torch.all(mean == 0) and torch.all(std == 255)):
        raise ValueError('enhance feeds the network RGB in [0, 1]; this model\'s data '
                         f'preprocessor normalises with mean {mean.flatten().tolist()} and std '
                         f'{std.flatten().tolist()} (expected 0 and 255)')


def _resolve_tile(tile, height, width, device, overlap):
    if tile is None:
        return None
    if tile == 'auto':
        return auto_tile_size(height, width, device, overlap)
    if isinstance(tile, bool) or not isinstance(tile, int):
        raise ValueError(f"enhance: tile must be None, 'auto' or an int, got {tile!r}")
    check_tile(tile, overlap)
    return None if height <= tile and width <= tile else tile


def _smaller_tile(tile_size, height, width, overlap, device):
    """After running out of memory under tile='auto': half the side, as long as it is valid."""
    side = max(height, width) if tile_size is None else tile_size
    smaller = side // 2 // 4 * 4
    if smaller < max(2 * overlap, 4):
        raise torch.OutOfMemoryError(f'out of memory on {device} even with {side}-pixel tiles')
    torch.cuda.empty_cache()
    get_logger().warning(f'out of memory on {device} with '
                         f'{"the whole image" if tile_size is None else f"{side}-pixel tiles"}; '
                         f'retrying with {smaller}-pixel tiles')
    return smaller
