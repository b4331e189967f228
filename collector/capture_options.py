"""What every framework callback may be told to capture, in one options object.

The Keras callback, the PyTorch callbacks and recorder, and the Lightning callback take the same
keyword arguments (``export_onnx=``, ``save_weights=``, ``sample_inputs=``, ``dataset=``, and for
PyTorch ``init_args=``); each builds a :class:`CaptureOptions` from them, so a default or a check
is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SAMPLE_ROWS", "CaptureOptions"]

SAMPLE_ROWS = 8
"""Rows of input kept (from ``sample_inputs`` or the first batch) to export and check the ONNX model."""


@dataclass(frozen=True, kw_only=True)
class CaptureOptions:
    """The optional work a callback does at the end of training, and what it is given to do it.

    Attributes:
        export_onnx: Export ``model.onnx`` and check it against the framework's own outputs.
        save_weights: Save the framework's native weights (``model.keras``, ``model.safetensors``).
        sample_inputs: Input rows for the ONNX export and check (at most :data:`SAMPLE_ROWS` are
            used); ``None``: rows of the training data. The first checked rows are kept in the
            bundle as its example inputs (``examples.json``, :mod:`modelkb.example_inputs`).
        dataset: Dataset fields (``name``, ``classes``, ``preprocessing``, ...) laid over what is
            inferred.
        init_args: Constructor arguments of a PyTorch module, recorded so the bundle can rebuild
            it from the captured code (Keras rebuilds from ``model.keras`` and never sets it).

    Raises:
        TypeError: ``dataset`` is not a mapping.
    """

    export_onnx: bool = True
    save_weights: bool = True
    sample_inputs: Any = None
    dataset: Mapping[str, Any] = field(default_factory=dict)
    init_args: Any = None

    def __post_init__(self) -> None:
        if self.dataset is None:
            object.__setattr__(self, "dataset", {})
        elif not isinstance(self.dataset, Mapping):
            raise TypeError(
                f"Expected a dict of dataset fields or None. Received: dataset={self.dataset!r}"
            )
        else:  # a copy: the caller's dict may change after the callback is created
            object.__setattr__(self, "dataset", dict(self.dataset))
