from .logging import get_logger, log_once

__all__ = ['get_logger', 'log_once']
