"""Optional dependencies: checked in one place, failing early with the exact install line."""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from types import ModuleType

from modelkb.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install 'modelkb[extra]'``."""
    if importlib.util.find_spec(module.split(".")[0]) is None:
        raise MissingExtraError(module.split(".")[0], extra)
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(module.split(".")[0], extra) from err


@cache
def available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it); remembered per process, since
    the catalog asks once per bundle."""
    return importlib.util.find_spec(module) is not None
