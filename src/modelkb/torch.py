"""``from modelkb.torch import Model, PytorchCallbacks`` — the PyTorch collector (extra ``[torch]``)."""

from __future__ import annotations

from modelkb.collector.torch import Model, PytorchCallbacks, TorchRecorder

__all__ = ["Model", "PytorchCallbacks", "TorchRecorder"]
