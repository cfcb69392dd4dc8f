"""One logger for the package that works with and without mmengine.

Under an mmengine Runner the messages go to the Runner's log (MMLogger's current instance); in a
plain script they go to the standard ``logging`` logger ``retinexmamba_mm``.
"""
import logging

_seen = set()


def get_logger():
    try:
        from mmengine.logging import MMLogger
        return MMLogger.get_current_instance()
    except ImportError:
        pass
    logger = logging.getLogger('retinexmamba_mm')
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter('%(asctime)s - retinexmamba_mm - %(levelname)s - %(message)s'))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return logger


def log_once(key, message, level=logging.INFO):
    """Log ``message`` the first time ``key`` is seen (e.g. which scan backend ran)."""
    if key in _seen:
        return
    _seen.add(key)
    get_logger().log(level, message)
