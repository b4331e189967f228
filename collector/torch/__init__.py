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

This package's face is the names below; the code lives in one module per job:

* :mod:`~modelkb.collector.torch.tensors`: tensor plumbing (JSON-safe values, shapes, devices).
* :mod:`~modelkb.collector.torch.describe`: reading the optimizer, criterion, module and data.
* :mod:`~modelkb.collector.torch.source_findings`: what the training source adds to the dataset.
* :mod:`~modelkb.collector.torch.export`: ``model.safetensors`` and the verified ``model.onnx``.
* :mod:`~modelkb.collector.torch.capture`: :class:`TorchCapture`, shared with the Lightning callback.
* :mod:`~modelkb.collector.torch.callbacks`: :class:`PytorchCallbacks` and :class:`TorchRecorder`.
* :mod:`~modelkb.collector.torch.trainer`: the Keras-style trainer :class:`Model` and its
  :class:`History` (progress display in :mod:`~modelkb.collector.torch.progress`).

Torch is imported (framework code stays at the edge), but only ``PytorchCallbacks``, ``Model`` and
``TorchRecorder`` need it: a missing ``[torch]`` extra fails when one of them is created, naming the pip
line.
"""

from __future__ import annotations

from modelkb.collector.torch.callbacks import PytorchCallbacks, TorchRecorder
from modelkb.collector.torch.capture import TorchCapture
from modelkb.collector.torch.trainer import History, Model

__all__ = ["History", "Model", "PytorchCallbacks", "TorchCapture", "TorchRecorder"]
