"""Export Keras models whose ``StringLookup``/``IntegerLookup`` layers read named inputs.

tf2onnx cannot convert Keras' lookup tables (``LookupTableFindV2``), so the keras.io structured-data
recipe (dict inputs through ``Normalization``, ``StringLookup`` and ``IntegerLookup``) had no
``model.onnx``. Here the model is split: the part after the lookups is exported by Keras as usual,
and each lookup is then written in front of it in ONNX itself, as ``ai.onnx.ml`` ``LabelEncoder``
(token -> index, unseen tokens -> the OOV index) followed by ``OneHot`` and a reduction for the
``one_hot``/``multi_hot``/``count`` modes. The result takes the model's raw named inputs (strings,
integers, floats) like the Keras model does, runs in onnxruntime and onnxruntime-web, and is checked
against the whole Keras model on raw inputs (an unseen token included) before it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkb.collector.onnx_check import OnnxExportError

LOOKUP_LAYERS = ("StringLookup", "IntegerLookup")
OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count")
"""The lookup output modes written in ONNX (``tf_idf`` needs the IDF weights in the graph: not yet)."""
UNSEEN_TOKEN = "\x00modelkb-unseen"
"""A string no vocabulary holds: the parity check's out-of-vocabulary value."""


@dataclass
class LookupSplit:
    """A model cut after its lookup layers.

    Attributes:
        rest: The Keras model after the lookups: it takes each lookup's output, then the model
            inputs that something other than a lookup reads.
        lookups: ``(model input, lookup layer)`` in the order of ``rest``'s first inputs.
        kept: The model inputs ``rest`` takes as they are, after the lookups' outputs.
        order: The model's input names, in the order the ONNX graph takes them.
    """

    rest: Any
    lookups: list[tuple[Any, Any]]
    kept: list[Any]
    order: list[str] = field(default_factory=list)

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for _, layer in self.lookups]


def lookup_split(model: Any) -> LookupSplit | None:
    """The split of a functional model whose lookup layers each read one model input; ``None``
    when the model has no lookup layer.

    Raises:
        OnnxExportError: The model has lookups this export cannot write (named, with why).
    """
    import keras
    import numpy as np

    lookups = [layer for layer in model.layers if type(layer).__name__ in LOOKUP_LAYERS]
    if not lookups:
        return None
    try:
        inputs = list(model.inputs)
        outputs = list(model.outputs)
    except (AttributeError, ValueError):
        inputs = outputs = []
    if not inputs or (isinstance(model, keras.Sequential) and len(model.layers) < 2):
        raise _unsupported(lookups[0], "the model has no symbolic inputs (a subclassed model)")
    by_id = {id(tensor): tensor for tensor in inputs}
    pairs = []
    for layer in lookups:
        _check_settings(layer)
        nodes = getattr(layer, "_inbound_nodes", [])
        read = [t for node in nodes for t in node.input_tensors]
        if len(nodes) != 1 or len(read) != 1 or id(read[0]) not in by_id:
            raise _unsupported(layer, "it does not read one model input directly")
        pairs.append((read[0], layer))
    looked_up = {id(tensor) for tensor, _ in pairs}
    read_by_others = {
        id(tensor)
        for layer in model.layers
        if type(layer).__name__ not in LOOKUP_LAYERS
        for node in getattr(layer, "_inbound_nodes", [])
        for tensor in node.input_tensors
    }
    kept = [t for t in inputs if id(t) not in looked_up or id(t) in read_by_others]
    rest = keras.Model(
        [layer.output for _, layer in pairs] + kept,
        outputs[0] if len(outputs) == 1 else outputs,
        name=f"{model.name}_after_lookups",
    )
    zeros = [
        np.zeros((1, *[d or 1 for d in t.shape[1:]]), dtype=_numpy_dtype(t.dtype))
        for t in rest.inputs
    ]
    rest(zeros)  # Keras exports only a called model
    return LookupSplit(rest, pairs, kept, order=[t.name for t in inputs])


def _check_settings(layer: Any) -> None:
    config = layer.get_config()
    if config.get("invert"):
        raise _unsupported(layer, "invert=True")
    if config.get("sparse"):
        raise _unsupported(layer, "sparse=True")
    if config.get("output_mode", "int") not in OUTPUT_MODES:
        raise _unsupported(layer, f"output_mode={config.get('output_mode')!r}")
    if config.get("num_oov_indices", 1) != 1:
        raise _unsupported(layer, f"num_oov_indices={config.get('num_oov_indices')}")


def _unsupported(layer: Any, why: str) -> OnnxExportError:
    return OnnxExportError(
        f"the {type(layer).__name__} layer {layer.name!r} cannot be exported to ONNX: {why} "
        "(supported: a lookup reading one named model input, output_mode "
        f"{'/'.join(OUTPUT_MODES)}, one OOV index)"
    )


def _numpy_dtype(dtype: Any) -> Any:
    import numpy as np

    name = str(dtype)
    return object if name == "string" else np.dtype(name)


def lookup_table(layer: Any) -> tuple[list[Any], list[int], int, int]:
    """``(keys, indices, oov_index, depth)``: what the layer maps each known token to.

    The indices are the tokens' positions in ``get_vocabulary()`` (in ``int`` mode the mask token
    first when set, then the OOV token, then the vocabulary); any other token gets the OOV index.
    In the other modes Keras drops the mask token: it maps to ``depth``, which ``OneHot`` encodes
    as all zeros.
    """
    config = layer.get_config()
    vocabulary = list(layer.get_vocabulary())
    oov_token, mask_token = config.get("oov_token"), config.get("mask_token")
    int_mode = config.get("output_mode", "int") == "int"
    oov_index = 1 if mask_token is not None and int_mode else 0
    depth = int(layer.vocabulary_size())
    if config.get("pad_to_max_tokens") and config.get("max_tokens"):
        depth = int(config["max_tokens"])
    keys, indices = [], []
    for index, token in enumerate(vocabulary):
        if index == oov_index and token == oov_token:
            continue
        keys.append(token)
        indices.append(index)
    if mask_token is not None and not int_mode and mask_token not in keys:
        keys.append(mask_token)
        indices.append(depth)
    return keys, indices, oov_index, depth


def prepend_lookups(onnx_path: Path, split: LookupSplit) -> None:
    """Rewrite ``rest``'s exported graph so that it takes the model's raw named inputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    initialized = {init.name for init in graph.initializer}
    fed = [i for i in graph.input if i.name not in initialized]
    if len(fed) != len(split.lookups) + len(split.kept):
        raise OnnxExportError(
            f"the exported graph has {len(fed)} inputs; expected {len(split.lookups)} lookup "
            f"outputs and {len(split.kept)} model inputs"
        )
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    ml = next((o for o in model.opset_import if o.domain == "ai.onnx.ml"), None)
    if ml is None:
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 2))
    elif ml.version < 2:
        ml.version = 2
    new_inputs: dict[str, Any] = {}
    nodes: list[Any] = []
    for (tensor, layer), graph_input in zip(split.lookups, fed, strict=False):
        name = str(tensor.name)
        string = str(tensor.dtype) == "string"
        elem = TensorProto.STRING if string else TensorProto.INT64
        shape = [
            "N",
            *[d if d is not None else f"{name}_{i}" for i, d in enumerate(tensor.shape[1:])],
        ]
        new_inputs.setdefault(name, helper.make_tensor_value_info(name, elem, shape))
        keys, indices, oov_index, depth = lookup_table(layer)
        prefix = f"modelkb_{layer.name}"
        encoder = {
            "keys_strings" if string else "keys_int64s": [
                str(k) if string else int(k) for k in keys
            ],
            "values_int64s": indices,
            "default_int64": oov_index,
        }
        source = name
        if not string and str(tensor.dtype) != "int64":
            nodes.append(
                helper.make_node("Cast", [name], [f"{prefix}_int64"], to=TensorProto.INT64)
            )
            source = f"{prefix}_int64"
        nodes.append(
            helper.make_node(
                "LabelEncoder", [source], [f"{prefix}_index"], domain="ai.onnx.ml", **encoder
            )
        )
        result = f"{prefix}_index"
        mode = layer.get_config().get("output_mode", "int")
        if mode != "int":
            graph.initializer.extend(
                [
                    numpy_helper.from_array(_int64([depth], scalar=True), f"{prefix}_depth"),
                    numpy_helper.from_array(_float32([0.0, 1.0]), f"{prefix}_on_off"),
                ]
            )
            indices_in = result
            if mode == "one_hot" and tensor.shape[-1] == 1:
                indices_in = _squeeze_last(nodes, graph, result, prefix, opset, len(tensor.shape))
            nodes.append(
                helper.make_node(
                    "OneHot",
                    [indices_in, f"{prefix}_depth", f"{prefix}_on_off"],
                    [f"{prefix}_onehot"],
                    axis=-1,
                )
            )
            result = f"{prefix}_onehot"
            if mode in ("multi_hot", "count"):
                if len(tensor.shape) != 2:
                    raise _unsupported(
                        layer, f"output_mode={mode!r} on a rank-{len(tensor.shape)} input"
                    )
                result = _reduce(
                    nodes,
                    graph,
                    result,
                    prefix,
                    opset,
                    "ReduceMax" if mode == "multi_hot" else "ReduceSum",
                )
        target = graph_input.type.tensor_type.elem_type
        nodes.append(helper.make_node("Cast", [result], [graph_input.name], to=target))
    for tensor, graph_input in zip(split.kept, fed[len(split.lookups) :], strict=True):
        name = str(tensor.name)
        if graph_input.name != name:
            _rename(graph, graph_input.name, name)
        new_inputs[name] = graph_input
    for graph_input in fed:
        graph.input.remove(graph_input)
    ordered = [new_inputs[name] for name in split.order if name in new_inputs]
    for position, graph_input in enumerate(ordered):
        graph.input.insert(position, graph_input)
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))


def _squeeze_last(
    nodes: list[Any], graph: Any, name: str, prefix: str, opset: int, rank: int
) -> str:
    """Keras' one-hot drops a trailing axis of size 1 before encoding: ``(N, 1)`` -> ``(N, depth)``."""
    from onnx import helper, numpy_helper

    out = f"{prefix}_squeezed"
    if opset >= 13:
        graph.initializer.append(numpy_helper.from_array(_int64([rank - 1]), f"{prefix}_last_axis"))
        nodes.append(helper.make_node("Squeeze", [name, f"{prefix}_last_axis"], [out]))
    else:
        nodes.append(helper.make_node("Squeeze", [name], [out], axes=[rank - 1]))
    return out


def _reduce(nodes: list[Any], graph: Any, name: str, prefix: str, opset: int, op: str) -> str:
    """Fold the token axis of ``(N, k, depth)`` one-hots: any (``multi_hot``) or how many (``count``)."""
    from onnx import helper, numpy_helper

    out = f"{prefix}_{op.lower()}"
    axes_as_input = opset >= (18 if op == "ReduceMax" else 13)
    if axes_as_input:
        graph.initializer.append(numpy_helper.from_array(_int64([1]), f"{prefix}_token_axis"))
        nodes.append(helper.make_node(op, [name, f"{prefix}_token_axis"], [out], keepdims=0))
    else:
        nodes.append(helper.make_node(op, [name], [out], axes=[1], keepdims=0))
    return out


def _rename(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        for index, value in enumerate(node.input):
            if value == old:
                node.input[index] = new


def _int64(values: list[int], *, scalar: bool = False) -> Any:
    import numpy as np

    array = np.asarray(values, dtype=np.int64)
    return array.reshape(()) if scalar else array


def _float32(values: list[float]) -> Any:
    import numpy as np

    return np.asarray(values, dtype=np.float32)


def with_unseen_row(sample: Any, split: LookupSplit) -> Any:
    """``sample`` (a dict of arrays) plus one row holding an unseen value in every looked-up input,
    so the parity check covers the OOV path as well as the vocabulary."""
    import numpy as np

    if not isinstance(sample, dict):
        return sample
    out = {}
    unseen = {str(tensor.name): layer for tensor, layer in split.lookups}
    for name, values in sample.items():
        array = np.asarray(values)
        if array.ndim == 0 or not len(array):
            return sample
        extra = array[:1].copy()
        if name in unseen:
            if array.dtype.kind in "OSU":
                array = as_texts(array)
                extra = np.full(extra.shape, UNSEEN_TOKEN, dtype=object)
            else:
                keys, _, _, _ = lookup_table(unseen[name])
                known = [int(k) for k in keys] or [0]
                extra = np.full(extra.shape, max(known) + 1, dtype=array.dtype)
        out[name] = np.concatenate([array, extra])
    return out


def as_texts(array: Any) -> Any:
    """An object array of ``str`` (``tf.data`` yields UTF-8 ``bytes``; Keras and onnxruntime take both,
    but not mixed)."""
    import numpy as np

    flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.ravel(array)]
    return np.asarray(flat, dtype=object).reshape(np.shape(array))
