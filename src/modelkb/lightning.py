"""``from modelkb.lightning import LightningCallback`` — the Lightning collector (extra ``[lightning]``)."""

from __future__ import annotations

from modelkb.collector.lightning import LightningCallback

__all__ = ["LightningCallback"]
