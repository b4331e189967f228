"""PyTorch collector: ``Model.fit`` with :class:`PytorchCallbacks`, or :class:`TorchRecorder` for hand-written loops.

The paper's Listing 3 works as written::

    from modelkb.torch import Model, PytorchCallbacks
    model = Model(my_nn_module)
    model.fit(train_loader, epochs, optimizer, criterion, callbacks=[PytorchCallbacks(exp)])

What a run records comes from the objects the user already has: the optimizer (class, ``param_groups``),
the criterion, the module (leaf layers, parameter counts, output shapes seen by forward hooks on the
first batch) and the data (arrays or the first batch of a ``DataLoader``). At the end the trained module
is saved as ``model.safetensors`` (never a pickle) and exported to ``model.onnx`` with a dynamic batch
axis, then checked against the module's own output. Every step of that is optional work: a failure
becomes a warning in the bundle, never an exception in the user's training.

This module is the public face; the code lives in one module per job:

* :mod:`~modelkb.collector.torch_tensors`: tensor plumbing (JSON-safe values, shapes, devices).
* :mod:`~modelkb.collector.torch_describe`: reading the optimizer, criterion, module and data.
* :mod:`~modelkb.collector.torch_export`: ``model.safetensors`` and the verified ``model.onnx``.
* :mod:`~modelkb.collector.torch_capture`: :class:`TorchCapture`, shared with ``lightning.py``.
* :mod:`~modelkb.collector.torch_callbacks`: :class:`PytorchCallbacks` and :class:`TorchRecorder`.
* :mod:`~modelkb.collector.torch_training`: :class:`Model` and :class:`History`
  (progress display in :mod:`~modelkb.collector.torch_progress`).

Torch is imported (framework code stays at the edge), but only ``PytorchCallbacks``, ``Model`` and
``TorchRecorder`` need it: a missing ``[torch]`` extra fails when one of them is created, naming the pip
line.
"""

from __future__ import annotations

from modelkb.collector.torch_callbacks import PytorchCallbacks, TorchRecorder
from modelkb.collector.torch_capture import TorchCapture
from modelkb.collector.torch_describe import (  # noqa: F401 - importable from here, as before the split
    ShapeProbe,
    current_lr,
    describe_architecture,
    describe_loader,
    describe_tensors,
    loss_summary,
    module_reference,
    optimizer_summary,
    parse_extra_repr,
)
from modelkb.collector.torch_export import (  # noqa: F401 - importable from here, as before the split
    ONNX_FILE,
    WEIGHTS_FILE,
    export_onnx_file,
    save_trained_model,
    save_weights_file,
)
from modelkb.collector.torch_tensors import SAMPLE_ROWS, preserved_modes, torch  # noqa: F401
from modelkb.collector.torch_training import History, Model

__all__ = [
    "History",
    "Model",
    "PytorchCallbacks",
    "TorchCapture",
    "TorchRecorder",
    "describe_architecture",
    "optimizer_summary",
    "parse_extra_repr",
    "save_trained_model",
]
