"""The seed's logger (``celline.job``), imported on first use.

``import logging`` costs a short command about 5 ms (its regexes, traceback, string, textwrap):
more than `celline-jobs list` spends on its own work. Modules on the CLI's hot path take their logger
from here; the first message (or any other attribute) loads logging and the real logger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import logging


class _LazyLogger:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import logging

        return getattr(logging.getLogger(self._name), attr)


def get_logger(name: str = "celline.job") -> logging.Logger:
    """``logging.getLogger(name)``, resolved when first used."""
    return cast("logging.Logger", _LazyLogger(name))
