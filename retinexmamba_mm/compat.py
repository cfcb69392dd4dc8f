"""Every workaround for the frozen OpenMMLab stack, in one place.

MMagic 1.2.0 (Dec 2023) and mmengine 0.10.7 are the last releases; both predate torch >= 2.6 and
numpy 2. Each patch below names the upstream problem it covers and when it can go. Nothing else in
the package patches third-party behaviour. Importing this module applies every patch; each patch
is idempotent and does nothing where the problem is absent.
"""
import importlib
import importlib.machinery
import importlib.util
import sys
import types
import warnings

MMAGIC_AVAILABLE = importlib.util.find_spec('mmagic') is not None


# --- 1. mmcv-lite has no compiled ops -------------------------------------------------------------
# `import mmagic.models` imports every editor; five of them (edvr, tdan, basicvsr++, stylegan1/2)
# import `mmcv.ops` at module level, which needs the compiled `mmcv._ext`. mmcv-lite (our default
# install) has none. We register a placeholder `mmcv._ext` so those unrelated editors import; any
# attribute access on it (i.e. a real call into an mmcv op) raises a clear error. The placeholder
# needs a loader-less ModuleSpec: mmengine's `mmcv_full_available()` (Runner.wrap_model) calls
# `importlib.util.find_spec('mmcv._ext')`, which raises on a module without `__spec__`.
# Goes away when: mmagic stops importing mmcv.ops eagerly (never: it is frozen), or the user
# installs full mmcv, in which case this does nothing.
MMCV_EXT_PLACEHOLDER = 'retinexmamba_mm placeholder'


class MMCVOpsUnavailable(ImportError):
    """Raised when code calls an mmcv op while only mmcv-lite is installed."""


class _MissingMMCVExt(types.ModuleType):
    """Stands in for `mmcv._ext`. mmcv's ext_loader checks `hasattr(ext, op)` for every op at
    import time, so each attribute is a stub; calling the stub is the error."""

    def __getattr__(self, name):
        if name.startswith('__') and name.endswith('__'):
            raise AttributeError(name)

        def missing_op(*args, **kwargs):
            raise MMCVOpsUnavailable(
                f'mmcv op {name!r} needs full mmcv (compiled ops), but only mmcv-lite is '
                'installed. RetinexMamba never calls mmcv ops; this comes from another '
                'OpenMMLab model. Install full mmcv 2.1.0 (README, "Install into an existing '
                'OpenMMLab setup") to use it.')

        missing_op.__name__ = name
        return missing_op


def _patch_mmcv_ext():
    if 'mmcv._ext' in sys.modules or importlib.util.find_spec('mmcv') is None:
        return
    try:
        if importlib.util.find_spec('mmcv._ext') is not None:
            return  # full mmcv: nothing to do
    except (ImportError, ValueError):
        pass
    module = _MissingMMCVExt('mmcv._ext', MMCV_EXT_PLACEHOLDER)
    module.__spec__ = importlib.machinery.ModuleSpec('mmcv._ext', None)
    module.__file__ = None
    sys.modules['mmcv._ext'] = module


def mmcv_full_installed():
    """True when the compiled mmcv ops are present (not our placeholder)."""
    ext = sys.modules.get('mmcv._ext')
    if ext is None:
        try:
            return importlib.util.find_spec('mmcv._ext') is not None
        except (ImportError, ValueError):
            return False
    return not isinstance(ext, _MissingMMCVExt)


# --- 2. torch >= 2.6 loads with weights_only=True by default -------------------------------------
# mmengine 0.10.7 saves checkpoints holding its `HistoryBuffer`, numpy arrays and scalars (message
# hub, meta) and loads them with a bare `torch.load`, so `load_from`, `--resume` and `test.py` fail
# with "Weights only load failed". We keep the safety check and allow-list exactly the types such
# checkpoints hold. Arbitrary pickled objects in other files are still refused.
# Goes away when: mmengine passes weights_only itself or stores only plain types (never: frozen).
def _mmengine_checkpoint_safe_globals():
    import numpy as np
    numpy2 = int(np.__version__.split('.')[0]) >= 2
    multiarray = importlib.import_module(
        'numpy._core.multiarray' if numpy2 else 'numpy.core.multiarray')
    safe = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    safe += [type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int8, np.int16,
                                         np.int32, np.int64, np.uint8, np.bool_)]
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
        safe.append(HistoryBuffer)
    except ImportError:
        pass
    try:
        from mmengine.config import ConfigDict
        safe.append(ConfigDict)
    except ImportError:
        pass
    return safe


def _patch_torch_safe_globals():
    import torch
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch >= 2.4
        add(_mmengine_checkpoint_safe_globals())


# HistoryBuffer.__getstate__ also pickles its class-level table of statistics functions, which
# pickle encodes as `getattr(HistoryBuffer, 'min')`. Allow-listing `getattr` would reopen the
# door weights_only closes (getattr chains reach eval), so instead we save buffers without that
# table: it is rebuilt on load by `_set_default_statistics` and by whoever registered custom
# statistics at import. Checkpoints saved before this patch (by plain mmengine) still hold the
# references; re-save them once with `weights_only=False` if you trust them.
def _patch_history_buffer_pickling():
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
    except ImportError:
        return
    if getattr(HistoryBuffer.__getstate__, '_retinexmamba_compat', False):
        return

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop('statistics_methods', None)
        state.pop('_statistics_methods', None)
        return state

    __getstate__._retinexmamba_compat = True
    HistoryBuffer.__getstate__ = __getstate__


# --- 3. diffusers 0.24 (pinned for mmagic) warns on every import under torch >= 2.2 ---------------
# "`torch.utils._pytree._register_pytree_node` is deprecated": harmless, but it is the first line a
# user sees on every command. Goes away when: mmagic works with a newer diffusers (never: frozen).
def _silence_diffusers_pytree_warning():
    warnings.filterwarnings('ignore', message=r'`torch\.utils\._pytree\._register_pytree_node`',
                            category=FutureWarning)


# --- 4. numpy 2 removed `np.bool8` ---------------------------------------------------------------
# mmagic 1.2 names it at import time (mmagic/utils/trans_utils.py). Our pinned install keeps
# numpy < 2, but machines that come with numpy 2 (the GPU machine: 2.5) need the alias.
# Goes away when: mmagic drops np.bool8 (never: frozen).
def _patch_numpy2_aliases():
    import numpy as np
    if not hasattr(np, 'bool8'):
        np.bool8 = np.bool_


# --- 5. distributed runs without a GPU (gloo on CPUs) ---------------------------------------------
# mmengine 0.10.7 assumes every `--launcher pytorch` job has a GPU per process: `_init_dist_pytorch`
# calls `torch.cuda.set_device(LOCAL_RANK)` ("Found no NVIDIA driver" on a CPU machine) before
# `init_process_group`, and `Runner.wrap_model` always passes `device_ids=[LOCAL_RANK]` to
# MMDistributedDataParallel, which torch's DDP refuses for a module on the CPU. So
# `torchrun ... tools/train.py --launcher pytorch --cfg-options env_cfg.dist_cfg.backend=gloo`
# could not run on CPUs (our CI's multi-process test). Where no accelerator is in use, we skip
# set_device and drop device_ids; with a GPU (or NPU/MLU/MUSA) mmengine's own code runs unchanged.
# Goes away when: mmengine handles CPU-only distributed jobs (never: frozen).
def _patch_cpu_distributed():
    try:
        import torch
        from mmengine.device import get_device
        from mmengine.dist import utils as dist_utils
        from mmengine.model import MMDistributedDataParallel
    except ImportError:
        return

    init_dist_pytorch = dist_utils._init_dist_pytorch
    if not getattr(init_dist_pytorch, '_retinexmamba_compat', False):

        def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
            if init_backend != 'torch' or get_device() != 'cpu':
                return init_dist_pytorch(backend, init_backend=init_backend, **kwargs)
            torch.distributed.init_process_group(backend=backend, **kwargs)

        _init_dist_pytorch._retinexmamba_compat = True
        dist_utils._init_dist_pytorch = _init_dist_pytorch

    ddp_init = MMDistributedDataParallel.__init__
    if not getattr(ddp_init, '_retinexmamba_compat', False):

        def __init__(self, module, *args, **kwargs):
            devices = {p.device.type for p in module.parameters()}
            if devices == {'cpu'}:
                kwargs.pop('device_ids', None)
                kwargs.pop('output_device', None)
            ddp_init(self, module, *args, **kwargs)

        __init__._retinexmamba_compat = True
        MMDistributedDataParallel.__init__ = __init__


_patch_mmcv_ext()
_patch_numpy2_aliases()
_patch_torch_safe_globals()
_patch_history_buffer_pickling()
_silence_diffusers_pytree_warning()
_patch_cpu_distributed()
