from .cpu_memory import keep_freed_memory
from .logging import get_logger, log_once

__all__ = ['get_logger', 'keep_freed_memory', 'log_once']
