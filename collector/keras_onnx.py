"""Repairs of Keras 3's ONNX export (TensorFlow backend) that keep a model servable.

``model.export(format="onnx")`` traces the model with ``tf.function`` and converts it with
``tf2onnx.convert.from_function``. tf2onnx freezes captured *variables* but leaves captured
constant tensors as graph inputs: an adapted ``Normalization`` layer (its mean and variance are
plain tensors after ``adapt``) comes out as a model with three inputs, ``keras_tensor`` plus
``.../normalization/Sub/y:0`` and ``.../Sqrt/x:0``, which no caller can feed. Here those inputs
are turned back into initializers holding the captured values; the parity check that follows
the export proves the result against Keras.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXPORT_LOG = "onnx_export.log"
"""The converter's own output for a failed export, kept in the bundle instead of on the console."""


def fold_captured_constants(onnx_path: Path, model: Any) -> list[str]:
    """Make the ONNX inputs that are the model's captured constants into initializers.

    Returns the names folded (empty when the export had no such inputs). Uses Keras' own tracing
    helpers, so the placeholder names match the exported graph's.
    """
    import onnx
    from onnx import numpy_helper

    exported = onnx.load(str(onnx_path))
    initialized = {init.name for init in exported.graph.initializer}
    # A capture's placeholder is named after the op that reads it ("seq/normalization/Sub/y:0");
    # Keras names the model's own inputs after its Input layers ("keras_tensor", "input_layer").
    extra = [
        i
        for i in exported.graph.input
        if i.name not in initialized and "/" in i.name and i.name.endswith(":0")
    ]
    if not extra:
        return []
    captured = _captured_constants(model)
    consumed = {name for node in exported.graph.node for name in node.input}
    folded = []
    for graph_input in extra:
        value = captured.get(graph_input.name)
        if value is None:
            continue
        if (
            graph_input.name in consumed
        ):  # else tf2onnx folded it already and left the input dangling
            exported.graph.initializer.append(numpy_helper.from_array(value, graph_input.name))
        exported.graph.input.remove(graph_input)
        folded.append(graph_input.name)
    if folded:
        onnx.save(exported, str(onnx_path))
    return folded


def _captured_constants(model: Any) -> dict[str, Any]:
    """Placeholder name -> value of each non-variable tensor the traced model captures."""
    import keras
    import tensorflow as tf
    from keras.src.export.export_utils import get_input_signature, make_tf_tensor_spec
    from keras.src.export.onnx import get_concrete_fn

    signature = keras.tree.map_structure(make_tf_tensor_spec, get_input_signature(model))
    concrete = get_concrete_fn(model, signature).get_concrete_function(*signature)
    return {
        internal.name: external.numpy()
        for external, internal in concrete.graph.captures
        if external.dtype != tf.resource and hasattr(external, "numpy")
    }


class ConverterLog:
    """Collects what tf2onnx and TensorFlow log while a model is converted, instead of the console.

    tf2onnx reports an unconvertible op with ~30 lines and two tracebacks on the user's terminal;
    inside this context they are kept (``lines``) for the bundle's ``onnx_export.log``.
    """

    _LOGGERS = ("tf2onnx", "tensorflow", "absl")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._saved: list[tuple[Any, list[Any], bool, int]] = []

    def __enter__(self) -> ConverterLog:
        import logging

        collector = self

        class _Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                try:
                    collector.lines.append(f"{record.name}: {self.format(record)}")
                except Exception:
                    pass

        handler = _Keep()
        for name in self._LOGGERS:
            log = logging.getLogger(name)
            self._saved.append((log, list(log.handlers), log.propagate, log.level))
            log.handlers = [handler]
            log.propagate = False
            log.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        for log, handlers, propagate, level in self._saved:
            log.handlers, log.propagate = handlers, propagate
            log.setLevel(level)
        self._saved.clear()

    @property
    def unconvertible_ops(self) -> list[str]:
        """Op types the converter could not map (``LookupTableFindV2``), in order of first mention."""
        import re

        found = re.findall(r"No Op registered for (\w+)|OP=(\w+)", "\n".join(self.lines))
        return list(dict.fromkeys(a or b for a, b in found))


def text_vectorization_head(model: Any) -> tuple[Any, Any] | None:
    """``(layer, rest)`` for a model that starts with a ``TextVectorization`` (the keras.io
    end-to-end text recipe): ``rest`` is the model after that layer, taking its token ids.

    tf2onnx cannot convert the layer's string ops and lookup table, so ``model.onnx`` is exported
    from ``rest`` and the handler replays the layer from its recorded vocabulary. Only a chain is
    split (a Sequential model, or a functional one whose every layer feeds the next); ``None``
    for any other model.
    """
    import keras

    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if len(layers) < 2 or type(layers[0]).__name__ != "TextVectorization":
        return None
    try:  # a subclassed model has no symbolic inputs: not a chain this can split
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            return None
    except (AttributeError, ValueError):
        return None
    vectorizer, rest = layers[0], layers[1:]
    if vectorizer.get_config().get("output_mode", "int") != "int":
        return None
    if not isinstance(model, keras.Sequential):
        previous = vectorizer
        for layer in rest:
            try:
                if layer.input is not previous.output:
                    return None
            except (AttributeError, ValueError):  # a layer called more than once
                return None
            previous = layer
        if previous.output is not model.outputs[0]:
            return None
    length = vectorizer.get_config().get("output_sequence_length")
    token_ids = keras.Input(shape=(length,), dtype="int64", name="token_ids")
    x = token_ids
    for layer in rest:
        x = layer(x)
    after = keras.Model(token_ids, x, name=f"{model.name}_after_{vectorizer.name}")
    after(keras.ops.zeros((1, length or 1), dtype="int64"))  # Keras exports only a called model
    return vectorizer, after
