"""ModelKB: capture every deep-learning run with one callback; catalog, serve and share the models.

Importing ``modelkb`` loads no ML framework, cloud SDK or site generator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Experiment", "Store", "__version__"]

if TYPE_CHECKING:
    from modelkb.experiment import Experiment
    from modelkb.store import Store


def __getattr__(name: str) -> Any:
    if name == "Experiment":
        from modelkb.experiment import Experiment

        return Experiment
    if name == "Store":
        from modelkb.store import Store

        return Store
    raise AttributeError(f"module 'modelkb' has no attribute {name!r}")
