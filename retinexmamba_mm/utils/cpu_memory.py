"""Keep freed CPU memory in the process, so large tensors reuse it instead of faulting in new pages.

glibc serves every allocation above 32 MB (a level-0 feature map of a 400x600 image is 38-154 MB)
with a fresh ``mmap`` and returns it on ``free``; the next tensor of that size then pays one page
fault per 4 KiB page. On the project's 2-core VM that costs ~0.5 ms per MB (a fresh 42 MB tensor:
20 ms to fill, against 1 ms for a reused one), and the 400x600 forward spent 15 s of system time
per forward in it. Serving large blocks from the heap and never trimming it keeps them in the
process: the 400x600 forward went from 35.4 s to 27-31 s, system time from 46 s to 16 s over
three forwards, peak RSS 3.0 -> 3.2 GB (README, Benchmarks).

The tools call ``keep_freed_memory()`` for CPU runs; ``RETINEXMAMBA_KEEP_FREED_MEMORY=0`` turns it
off. Other glibc programs get the same with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...``.
"""
import ctypes
import ctypes.util
import os

from .logging import log_once

__all__ = ['keep_freed_memory']

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 1 << 30   # bytes of free heap top kept before any is returned


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as above (once per process); False where it does not apply (not
    glibc, or turned off by the environment variable)."""
    if os.environ.get('RETINEXMAMBA_KEEP_FREED_MEMORY', '1') == '0':
        return False
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    if not (mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)):
        return False
    log_once('cpu_memory', 'CPU memory: freed blocks are kept for reuse (glibc mallopt; '
             'RETINEXMAMBA_KEEP_FREED_MEMORY=0 turns this off)')
    return True
