"""``from modelkb.keras import KerasCallback`` — the Keras/TensorFlow collector (extra ``[keras]``)."""

from __future__ import annotations

from modelkb.collector.keras import KerasCallback, KerasCallbacks

__all__ = ["KerasCallback", "KerasCallbacks"]
