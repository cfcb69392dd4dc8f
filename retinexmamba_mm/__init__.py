"""retinexmamba_mm: RetinexMamba low-light enhancement as an OpenMMLab/MMagic plugin.

Import order matters: ``compat`` patches the frozen OpenMMLab stack before anything imports it.
The network (``models``) and the scan (``ops``) need only torch and einops; the MMagic-facing
modules (datasets, metrics, the editor, schedulers) are imported and registered into MMagic's
registries only when MMagic is installed.
"""
from . import compat  # noqa: F401  (must stay first)
from .models import RetinexMamba, convert_official_state_dict
from .ops import selective_scan
from .version import __version__

__all__ = ['RetinexMamba', 'convert_official_state_dict', 'selective_scan', '__version__']

if compat.MMAGIC_AVAILABLE:
    from . import registry  # noqa: F401  (registers every module into MMagic's registries)
