"""What a Keras ``fit`` trains: read from the model, its compile config and ``fit``'s own arguments.

The helpers of :mod:`modelkb.collector.keras`, kept apart so the callback stays a thin translation of
hooks into :class:`~modelkb.experiment.Experiment` calls. Nothing here reads a batch of data before
training (that could consume random state and change what the model learns): what costs a read is
deferred to the end of training (:meth:`DataSource.late_batch`).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping
from typing import Any

from modelkb.collector.capture_options import SAMPLE_ROWS
from modelkb.collector.dataset_info import describe_arrays

try:  # only called once KerasCallback has checked that the [keras] extra is installed
    import keras as _keras
except ImportError:  # pragma: no cover
    _keras = None

logger = logging.getLogger(__name__)

_PREPROCESSING_OPS = frozenset({"CategoryEncoding", "Discretization", "Hashing"})
"""Keras preprocessing layers recorded as plain ``transform`` steps (the others have own ops)."""
_AUGMENT_KEYS = (
    "mode",
    "factor",
    "height_factor",
    "width_factor",
    "value_range",
    "height",
    "width",
    "fill_mode",
)


# -- reading fit() --------------------------------------------------------------------------------


def fit_arguments(model: Any) -> dict[str, Any]:
    """The arguments ``Model.fit`` was called with, read from its frame.

    Keras 3 gives callbacks neither the batch size nor the data; ``fit``'s own parameters (public
    API names: ``x``, ``y``, ``batch_size``, ``validation_data``) and its ``epoch_iterator`` hold
    both. When the frame is not found (a custom loop calling the hooks), nothing is inferred.
    """
    frame = sys._getframe(1)
    try:
        for _ in range(40):
            if frame is None:
                break
            if frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model:
                names = (
                    "x",
                    "y",
                    "batch_size",
                    "validation_data",
                    "val_x",
                    "val_y",
                    "epoch_iterator",
                )
                return {name: frame.f_locals.get(name) for name in names}
            frame = frame.f_back
    finally:
        del frame
    logger.info("Keras fit() frame not found; batch size and data are not inferred")
    return {}


class DataSource:
    """What fit() trains on, seen without consuming a batch before training."""

    def __init__(self, fit: Mapping[str, Any]) -> None:
        iterator = fit.get("epoch_iterator")
        self.adapter = getattr(iterator, "data_adapter", None)
        self.iterator = iterator
        self.x, self.y = fit.get("x"), fit.get("y")
        self.fit_batch_size = fit.get("batch_size")
        self.val_x = fit.get("val_x")
        self.kind = _source_kind(self.x, self.adapter)
        self._late_batch: Any = None

    @classmethod
    def from_fit(cls, fit: Mapping[str, Any]) -> DataSource | None:
        return cls(fit) if fit else None

    # free: known before training
    def early_batch(self) -> Any:
        """A batch obtainable without touching the data (arrays, a generator's peeked batches)."""
        if self.kind == "arrays":
            return (
                head(self.x, SAMPLE_ROWS),
                head(self.y, SAMPLE_ROWS) if self.y is not None else None,
            )
        if self.kind == "generator":
            first = (getattr(self.adapter, "_first_batches", None) or [None])[0]
            return _unpack(first) if first is not None else None
        return None

    def late_batch(self) -> Any:
        """A batch read from the data after training (tf.data, PyDataset, DataLoader)."""
        if self._late_batch is None:
            try:
                if self.kind == "tf_dataset":
                    batch = next(iter(self.x.take(1)))
                elif self.kind == "py_dataset":
                    batch = self.x[0]
                elif self.kind == "torch_loader":
                    batch = next(iter(self.x))
                else:
                    return None
            except Exception as err:
                logger.info("could not read a batch of %s: %s", type(self.x).__name__, err)
                return None
            self._late_batch = _unpack(batch)
        return self._late_batch

    def batch_size(self, *, late: bool = False) -> int | None:
        size = _positive_int(getattr(self.adapter, "batch_size", None))
        if size is None and self.kind == "arrays":
            size = _positive_int(self.fit_batch_size)
        if size is None and self.kind == "tf_dataset":
            size = _tf_batch_size(self.x)
        if size is None and self.kind == "py_dataset":
            size = _positive_int(getattr(self.x, "batch_size", None))
        if size is None:
            batch = self.early_batch() or (self.late_batch() if late else None)
            if batch is not None:
                size = _leading_dim(batch[0])
        return size

    def steps_seen(self) -> int | None:
        return _positive_int(getattr(self.iterator, "num_batches", None))

    def sample(self) -> tuple[Any, Any]:
        """``(inputs, labels)`` of a batch of the data (``None`` for what it does not give)."""
        return self.early_batch() or self.late_batch() or (None, None)

    def describe(self, *, late: bool) -> dict[str, Any] | None:
        if late:
            batch = self.late_batch() if self.kind in ("py_dataset", "torch_loader") else None
        elif self.kind == "arrays":
            info = describe_arrays(self.x, self.y, split="train")
            if _source_kind(self.val_x, None) == "arrays":
                info.setdefault("samples", {})["val"] = _leading_dim(self.val_x)
            return info
        elif self.kind == "tf_dataset":
            return _describe_spec(self.x.element_spec)
        else:
            batch = self.early_batch()
        if batch is None:
            return None
        info = describe_arrays(batch[0], batch[1], split="train")
        # one batch says nothing about sample counts, value ranges or the full set of classes
        for key in ("samples", "x_range", "classes", "num_classes"):
            info.pop(key, None)
        return info


def _source_kind(x: Any, adapter: Any) -> str:
    adapter_name = type(adapter).__name__
    if adapter_name == "ArrayDataAdapter":
        return "arrays"
    if adapter_name == "GeneratorDataAdapter":
        return "generator"
    if adapter_name == "PyDatasetAdapter":
        return "py_dataset"
    if adapter_name == "TFDatasetAdapter" or hasattr(x, "element_spec"):
        return "tf_dataset"
    if adapter_name == "TorchDataLoaderAdapter":
        return "torch_loader"
    if adapter is None:
        first = _keras.tree.flatten(x)[0] if isinstance(x, (Mapping, list, tuple)) and x else x
        if (
            hasattr(first, "shape")
            and hasattr(first, "dtype")
            and not hasattr(first, "element_spec")
        ):
            return "arrays"
    return "other"


def _tf_batch_size(dataset: Any) -> int | None:
    """The ``batch(n)`` of a tf.data pipeline, from its graph of datasets (no element is read)."""
    node = dataset
    for _ in range(50):
        if node is None:
            return None
        size = getattr(node, "_batch_size", None)
        if size is not None:
            try:
                return _positive_int(int(size.numpy() if hasattr(size, "numpy") else size))
            except (TypeError, ValueError):
                return None
        node = getattr(node, "_input_dataset", None)
    return None


def _describe_spec(spec: Any) -> dict[str, Any]:
    from modelkb.collector.dataset_info import infer_kind

    if isinstance(spec, tuple) and spec:
        x_spec, y_spec = spec[0], (spec[1] if len(spec) > 1 else None)
    else:
        x_spec, y_spec = spec, None

    def shape_of(s: Any) -> Any:
        if isinstance(s, Mapping):
            return {str(k): shape_of(v) for k, v in s.items()}
        dims = getattr(s, "shape", None)
        return None if dims is None or dims.rank is None else [None, *list(dims)[1:]]

    info: dict[str, Any] = {"shapes": {"x": shape_of(x_spec)}}
    if y_spec is not None:
        info["shapes"]["y"] = shape_of(y_spec)
    if not isinstance(x_spec, Mapping) and getattr(x_spec, "dtype", None) is not None:
        dtype = x_spec.dtype.name
        info["dtype"] = "str" if dtype == "string" else dtype
        shape = info["shapes"]["x"]
        info["kind"] = infer_kind(shape[1:], info["dtype"]) if shape else "other"
    return info


# -- hyperparameters and architecture ---------------------------------------------------------------


def hyperparameters(
    model: Any, params: Mapping[str, Any], source: DataSource | None
) -> dict[str, Any]:
    hyper: dict[str, Any] = {
        "epochs": _positive_int(params.get("epochs")),
        "steps_per_epoch": _positive_int(params.get("steps")),
        "batch_size": source.batch_size() if source is not None else None,
    }
    optimizer = getattr(model, "optimizer", None)
    inner = getattr(optimizer, "inner_optimizer", None) or optimizer  # LossScaleOptimizer
    if inner is not None:
        hyper["optimizer"] = {"name": type(inner).__name__, "config": _compact(_safe_config(inner))}
        hyper["learning_rate"] = current_learning_rate(model)
    try:
        compile_config = model.get_compile_config() or {}
    except Exception:
        compile_config = {"loss": getattr(model, "loss", None)}
    loss = compile_config.get("loss", getattr(model, "loss", None))
    if loss is not None:
        hyper["loss"] = _loss_names(loss)
    metrics = _names(compile_config.get("metrics")) + _names(compile_config.get("weighted_metrics"))
    if metrics:
        hyper["metrics"] = metrics
    if (
        source is not None
        and source.kind == "arrays"
        and hyper["batch_size"]
        and hyper["steps_per_epoch"] is None
    ):
        samples = _leading_dim(source.x)
        if samples:
            hyper["steps_per_epoch"] = math.ceil(samples / hyper["batch_size"])
    return {k: v for k, v in hyper.items() if v is not None}


def current_learning_rate(model: Any) -> float | None:
    """The learning rate now (a schedule evaluated at the current step)."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", None) or optimizer
    try:
        value = float(optimizer.learning_rate)  # a backend scalar tensor (schedules are evaluated)
    except Exception:
        return None
    return value if math.isfinite(value) else None


def architecture(model: Any, source: DataSource | None, *, late: bool = False) -> dict[str, Any]:
    """Layers, parameter counts, inputs and outputs. A subclassed model may be unbuilt before
    training (counts ``None``) and has no symbolic inputs: its inputs are taken from the data."""
    layers = []
    for layer in model.layers:
        entry: dict[str, Any] = {"name": layer.name, "type": type(layer).__name__}
        config = _safe_config(layer)
        config.pop("name", None)
        entry["config"] = _compact(config)
        try:
            entry["params"] = int(layer.count_params())
        except Exception:
            entry["params"] = None
        entry["output_shape"] = _output_shape(layer)
        layers.append(entry)
    built = bool(getattr(model, "built", True))
    arch: dict[str, Any] = {
        "layers": layers,
        "parameter_count": int(model.count_params()) if built else None,
        "trainable_parameter_count": sum(_size(w) for w in model.trainable_weights)
        if built
        else None,
    }
    arch["inputs"] = tensor_specs(model, "inputs")
    arch["outputs"] = tensor_specs(model, "outputs")
    if not arch["inputs"] and source is not None:  # subclassed model: describe what it is fed
        batch = source.early_batch() or (source.late_batch() if late else None)
        if batch is not None and not isinstance(batch[0], (Mapping, list, tuple)):
            shape = getattr(batch[0], "shape", None)
            if shape is not None:
                arch["inputs"] = [
                    {
                        "name": None,
                        "shape": [None, *[int(d) for d in shape[1:]]],
                        "dtype": _dtype_name(batch[0].dtype),
                    }
                ]
    return arch


def architecture_complete(arch: Mapping[str, Any]) -> bool:
    """Whether nothing is left to learn by looking again after training."""
    return arch.get("parameter_count") is not None and bool(arch.get("inputs"))


def tensor_specs(model: Any, attr: str) -> list[dict[str, Any]]:
    try:
        tensors = getattr(model, attr)
    except (AttributeError, ValueError):  # subclassed models have no symbolic inputs
        return []
    out = []
    for tensor in _keras.tree.flatten(tensors or []):
        history = getattr(tensor, "_keras_history", None)
        name = getattr(history[0], "name", None) if history else None
        shape = getattr(tensor, "shape", None)
        out.append(
            {
                "name": name or getattr(tensor, "name", None),
                "shape": [None if d is None else int(d) for d in shape]
                if shape is not None
                else None,
                "dtype": str(getattr(tensor, "dtype", None)),
            }
        )
    return out


def _output_shape(layer: Any) -> Any:
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(output, (list, tuple)):
        return [_shape_list(o) for o in output]
    return _shape_list(output)


def model_preprocessing(model: Any) -> list[dict[str, Any]]:
    """Preprocessing and augmentation layers inside the model, as dataset preprocessing steps.

    Steps follow :mod:`modelkb.collector.preprocessing_steps` and carry ``in_model: true``: they are
    part of the saved model and of its ONNX export, so inference must not apply them again.
    """
    steps = []
    for layer in _walk_layers(model):
        cls = type(layer).__name__
        config = _safe_config(layer)
        step: dict[str, Any] | None = None
        if cls == "Rescaling":
            step = {
                "op": "rescale",
                "scale": _compact(config.get("scale")),
                "offset": _compact(config.get("offset", 0.0)),
            }
        elif cls == "Normalization":
            step = {"op": "normalize", **_normalization_stats(layer)}
        elif cls in ("Resizing", "CenterCrop"):
            step = {
                "op": "resize" if cls == "Resizing" else "center_crop",
                "height": config.get("height"),
                "width": config.get("width"),
            }
            if "interpolation" in config:
                step["interpolation"] = config["interpolation"]
        elif cls == "TextVectorization":
            step = {"op": "tokenize", "tokenizer": cls, **text_vectorization_settings(layer)}
        elif cls in ("StringLookup", "IntegerLookup"):
            step = {"op": "lookup", "layer": cls, **lookup_settings(layer)}
        elif cls.startswith("Random") and "preprocessing" in type(layer).__module__:
            kwargs = {k: _compact(config[k]) for k in _AUGMENT_KEYS if k in config}
            step = {"op": "augment", "layer": cls, "args": [], "kwargs": kwargs, "train_only": True}
        elif cls in _PREPROCESSING_OPS:
            step = {
                "op": "transform",
                "name": cls,
                "args": [],
                "kwargs": _compact(_scalars(config)),
            }
        if step is not None:
            steps.append({**step, "in_model": True, "model_layer": layer.name})
    return steps


def merge_model_steps(
    found: list[dict[str, Any]], model_steps: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Source steps first; a source step for a layer of the model gives way to the model's own
    (which knows adapted values, e.g. a Normalization's mean).

    A layer built into a variable first (``norm = Normalization(); norm.adapt(x);
    Sequential([Input(...), norm, ...])``) is not seen as in the model by the source analysis; its
    step is still a Keras layer (it has ``in_model``), and when it was fitted and the model holds a
    layer of the same op, it is that layer.
    """
    model_ops = {step["op"] for step in model_steps}
    model_layers = {step.get("layer") for step in model_steps if step.get("layer")}

    def is_model_layer(step: Any) -> bool:
        if not isinstance(step, Mapping) or "in_model" not in step:
            return False
        if step.get("op") == "transform" and step.get("name") in model_layers:
            return True  # `sl = StringLookup(); sl.adapt(...)` then called in the model: that layer
        if step.get("op") not in model_ops:
            return False
        return bool(step["in_model"] or step.get("fitted"))

    return [s for s in found if not is_model_layer(s)] + model_steps


def _walk_layers(model: Any, depth: int = 0) -> list[Any]:
    found = []
    for layer in getattr(model, "layers", []) or []:
        found.append(layer)
        if depth < 8 and getattr(layer, "layers", None):
            found.extend(_walk_layers(layer, depth + 1))
    return found


def _normalization_stats(layer: Any) -> dict[str, Any]:
    try:
        mean = _keras.ops.convert_to_numpy(layer.mean).reshape(-1)
        variance = _keras.ops.convert_to_numpy(layer.variance).reshape(-1)
    except Exception:
        mean = variance = None
    if mean is None or mean.size > 64:
        return {
            "mean": None,
            "std": None,
            "fitted": True,
            "params": None,
            "note": "adapted to the training data; the values live in the saved model",
        }
    std = [round(math.sqrt(max(float(v), 0.0)), 7) for v in variance]
    mean_list = [round(float(v), 7) for v in mean]
    return {
        "mean": mean_list[0] if len(mean_list) == 1 else mean_list,
        "std": std[0] if len(std) == 1 else std,
    }


def _scalars(config: Mapping[str, Any]) -> dict[str, Any]:
    skip = {"name", "trainable", "dtype", "seed"}
    return {
        k: v
        for k, v in config.items()
        if k not in skip and (v is None or isinstance(v, (bool, int, float, str)))
    }


# -- small helpers ----------------------------------------------------------------------------------


def _safe_config(obj: Any) -> dict[str, Any]:
    try:
        config = obj.get_config()
    except Exception:
        return {}
    return dict(config) if isinstance(config, Mapping) else {}


def _compact(value: Any) -> Any:
    """Serialized Keras objects made short: ``{"class_name", "config"}``, dtype policies as names."""
    if isinstance(value, Mapping):
        if (
            "class_name" in value
            and "config" in value
            and ("module" in value or "registered_name" in value)
        ):
            config = value.get("config")
            if value["class_name"] in ("DTypePolicy", "FloatDTypePolicy") and isinstance(
                config, Mapping
            ):
                return config.get("name")
            return {"class_name": value["class_name"], "config": _compact(config)}
        return {str(k): _compact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_compact(v) for v in value]
    return value


def _names(obj: Any) -> list[str]:
    if obj is None:
        return []
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, Mapping):
        if "class_name" in obj:
            config = obj.get("config")
            name = config.get("name") if isinstance(config, Mapping) else None
            return [str(name or obj["class_name"])]
        return [n for v in obj.values() for n in _names(v)]
    if isinstance(obj, (list, tuple)):
        return [n for v in obj for n in _names(v)]
    name = getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__
    return [str(name)]


def _loss_names(loss: Any) -> Any:
    if isinstance(loss, Mapping) and "class_name" not in loss:
        return {str(k): ", ".join(_names(v)) for k, v in loss.items()}
    names = _names(loss)
    return names[0] if len(names) == 1 else ", ".join(names)


def _shape_list(tensor: Any) -> list[int | None] | None:
    shape = getattr(tensor, "shape", None)
    if shape is None:
        return None
    try:
        return [None if d is None else int(d) for d in shape]
    except (TypeError, ValueError):
        return None


def _dtype_name(dtype: Any) -> str:
    try:
        return str(_keras.backend.standardize_dtype(dtype))  # torch.float32 -> float32
    except (TypeError, ValueError, AttributeError):
        return str(dtype)


def _size(weight: Any) -> int:
    return int(math.prod(int(d) for d in weight.shape))


def _positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and not isinstance(value, bool) else None


def _leading_dim(x: Any) -> int | None:
    first = _keras.tree.flatten(x)[0] if isinstance(x, (Mapping, list, tuple)) and x else x
    shape = getattr(first, "shape", None)
    if shape is not None and len(shape):
        return _positive_int(shape[0])
    try:
        return _positive_int(len(first))
    except TypeError:
        return None


def _unpack(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch, None
    x, y, _ = _keras.utils.unpack_x_y_sample_weight(batch)
    return x, y


def head(x: Any, rows: int) -> Any:
    """The first ``rows`` rows as numpy (for dicts and lists of inputs, of each)."""
    if x is None:
        return None
    if isinstance(x, Mapping):
        return {k: head(v, rows) for k, v in x.items()}
    if isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape"):
        return [head(v, rows) for v in x]
    return _keras.ops.convert_to_numpy(x[:rows])


def fill_pipeline_vocabularies(
    steps: list[dict[str, Any]], namespace: Mapping[str, Any], *, model: Any = None
) -> list[dict[str, Any]]:
    """Complete ``TextVectorization`` steps of the data pipeline from the live, adapted layer.

    The keras.io text recipes adapt a ``TextVectorization`` and map it over the ``tf.data``
    pipeline, outside the model: the source shows the layer, but its vocabulary exists only in
    memory. The layer is looked up among the training script's globals (``namespace``): the one
    ``TextVectorization`` whose configuration matches the step's literal arguments. When that
    layer is one of ``model``'s (adapted first, then built into the model: the end-to-end recipe),
    the source step is dropped: the model's own step stands for it.
    """
    layers = [v for v in list(namespace.values()) if type(v).__name__ == "TextVectorization"]
    in_model = {id(layer) for layer in _walk_layers(model)} if model is not None else set()
    out = []
    for step in steps:
        if (
            isinstance(step, Mapping)
            and step.get("op") == "tokenize"
            and step.get("tokenizer") == "TextVectorization"
            and not step.get("in_model")
            and step.get("vocabulary") is None
        ):
            matching = [layer for layer in layers if _config_matches(layer, step)]
            if len(matching) == 1 and id(matching[0]) in in_model:
                continue
            if len(matching) == 1:
                step = {
                    **{k: v for k, v in step.items() if k not in ("params", "note")},
                    **text_vectorization_settings(matching[0]),
                }
        out.append(step)
    return out


def text_vectorization_settings(layer: Any) -> dict[str, Any]:
    """What replaying a ``TextVectorization`` needs: its vocabulary and how it standardizes, splits, pads."""
    config = _safe_config(layer)
    settings = {
        key: _compact(config.get(key))
        for key in (
            "standardize",
            "split",
            "output_mode",
            "output_sequence_length",
            "ngrams",
            "max_tokens",
        )
    }
    settings["vocabulary"] = [str(token) for token in layer.get_vocabulary()]
    settings["oov_index"] = 1 if config.get("oov_token", "[UNK]") is not None else 0
    settings["fitted"] = True
    return settings


MAX_RECORDED_VOCABULARY = 1000
"""A lookup's vocabulary is recorded up to this many tokens (the choices a form offers); ``model.onnx``
holds all of it."""


def lookup_settings(layer: Any) -> dict[str, Any]:
    """What a ``StringLookup``/``IntegerLookup`` maps, for people and the catalog's form: the model
    input it reads, its vocabulary (special tokens first, as ``get_vocabulary()`` orders it), its
    output mode and special tokens."""
    config = _safe_config(layer)
    vocabulary = list(layer.get_vocabulary())
    integer = type(layer).__name__ == "IntegerLookup"
    tokens = [int(t) if integer else str(t) for t in vocabulary[:MAX_RECORDED_VOCABULARY]]
    settings: dict[str, Any] = {
        "input": _input_name(layer),
        "output_mode": config.get("output_mode", "int"),
        "mask_token": _compact(config.get("mask_token")),
        "oov_token": _compact(config.get("oov_token")),
        "num_oov_indices": config.get("num_oov_indices", 1),
        "vocabulary": tokens,
        "vocabulary_size": len(vocabulary),
        "fitted": True,
    }
    if len(vocabulary) > MAX_RECORDED_VOCABULARY:
        settings["vocabulary_truncated"] = True
    return settings


def _input_name(layer: Any) -> str | None:
    """The name of the tensor a layer called once reads (a model input's name for the recipes)."""
    nodes = getattr(layer, "_inbound_nodes", None) or []
    tensors = [t for node in nodes[:1] for t in node.input_tensors]
    return str(tensors[0].name) if len(tensors) == 1 and len(nodes) == 1 else None


def _config_matches(layer: Any, step: Mapping[str, Any]) -> bool:
    config = _safe_config(layer)
    return all(
        config.get(key) == step[key]
        for key in ("max_tokens", "output_sequence_length", "output_mode")
        if key in step and isinstance(step[key], (int, str))
    )
