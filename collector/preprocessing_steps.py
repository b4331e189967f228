"""Preprocessing steps recognised in training source: library calls (torchvision transforms, Keras
preprocessing layers and utilities, scikit-learn scalers) turned into ``dataset.preprocessing`` steps.

The step format, the replayed ops and the replay rule are the core's: :mod:`modelkb.preprocessing`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from modelkb.preprocessing import PAD_DEFAULTS

# fmt: off
AUGMENTATIONS = frozenset({
    "ColorJitter", "GaussianBlur", "AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix",
    "ElasticTransform"
})
# fmt: on
"""Torchvision augmentations whose names do not start with ``Random``."""

# fmt: off
KERAS_PREPROCESSING = frozenset({
    "Rescaling", "Normalization", "Resizing", "CenterCrop", "TextVectorization", "StringLookup",
    "IntegerLookup", "Hashing", "CategoryEncoding", "Discretization"
})
# fmt: on
"""Keras layers recorded as steps, besides every ``Random*`` augmentation layer."""

# fmt: off
TORCH_TRANSFORMS = frozenset({
    "Compose", "ToTensor", "PILToTensor", "ToImage", "ToDtype", "ConvertImageDtype",
    "Normalize", "Resize", "CenterCrop", "Grayscale", "Lambda", "Pad", "FiveCrop", "TenCrop"
})
# fmt: on
"""Torchvision transforms known by their bare name (star imports), besides augmentations."""

DTYPES = {
    "float": "float32",
    "float32": "float32",
    "float64": "float64",
    "double": "float64",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "long": "int64",
    "int64": "int64",
    "int": "int32",
    "int32": "int32",
    "uint8": "uint8",
    "bool": "bool",
}
"""Framework dtype spellings (torch first) to numpy names."""

# fmt: off
_DATA_TOKENS = frozenset({
    "x", "xs", "xb", "input", "inputs", "inp", "image", "images", "img", "imgs", "im", "data",
    "dataset", "ds", "feature", "features", "feat", "feats", "batch", "sample", "samples",
    "pixel", "pixels", "text", "texts", "sequence", "sequences", "seq", "seqs", "token",
    "tokens", "train", "test", "val", "valid", "validation", "digits", "mnist", "cifar", "raw",
    "arr", "array", "frame", "frames", "df", "audio", "signal", "signals", "waveform"
})
# fmt: on
# fmt: off
_OTHER_TOKENS = frozenset({
    "loss", "losses", "lr", "acc", "accuracy", "metric", "metrics", "grad", "grads", "total",
    "running", "correct", "epoch", "epochs", "step", "steps", "time", "elapsed", "score",
    "scores", "count", "num", "n", "y", "ys", "yb", "label", "labels", "target", "targets",
    "weight", "weights", "logits", "pred", "preds", "output", "outputs", "out", "prob", "probs",
    "error", "mse", "mae", "momentum", "decay", "ratio", "idx", "size", "mean", "std", "avg",
    "seconds", "criterion", "model", "net", "optimizer"
})
# fmt: on
_SPLIT_TOKENS = {"train", "test", "val", "valid", "validation", "eval", "tr", "te"}
_FITTED_NOTE = "fitted on the training data; parameters are not recoverable from source"


def name_tokens(name: str) -> list[str]:
    """``"x_train"`` -> ``["x", "train"]``, ``"trainImages2"`` -> ``["train", "images"]``."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return [t for t in re.split(r"[_\W\d]+", spaced.lower()) if t]


def data_like(names: list[str]) -> bool | None:
    """Whether identifiers name model inputs: ``True``, ``False`` (loss, labels...) or ``None``."""
    tokens = [t for n in names for t in name_tokens(n)]
    if any(t in _OTHER_TOKENS for t in tokens):
        return False
    return True if any(t in _DATA_TOKENS for t in tokens) else None


def merge_repeats(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold the same array operation on other splits (``x_test`` after ``x_train``) into one step.

    Only steps with ``applies_to`` are folded, and only when the variables differ, so an operation
    really applied twice to the same variable stays twice. An expression computed from the same data
    (``input``: ``x = RAW / 16`` then ``model(RAW[k:] / 16)``) is the same step too.
    """
    merged: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    by_input: dict[str, dict[str, Any]] = {}
    for step in steps:
        if "applies_to" not in step:
            merged.append(step)
            continue
        neutral = [t for n in step["applies_to"] for t in name_tokens(n) if t not in _SPLIT_TOKENS]
        body = {
            k: v
            for k, v in step.items()
            if k not in ("line", "file", "source", "applies_to", "input")
        }
        body_key = json.dumps(body, sort_keys=True, default=repr)
        key = json.dumps([body, neutral], sort_keys=True, default=repr)
        first = seen.get(key)
        # ``x = RAW / 16`` and, later, ``model(RAW[k:] / 16)``: the same operation on the same data.
        twin = by_input.get(json.dumps([body_key, step.get("input") or step["applies_to"][0]]))
        if first is not None and not set(step["applies_to"]) & set(first["applies_to"]):
            first["applies_to"] = list(dict.fromkeys(first["applies_to"] + step["applies_to"]))
        elif twin is not None and not set(step["applies_to"]) & set(twin["applies_to"]):
            twin["applies_to"] = list(dict.fromkeys(twin["applies_to"] + step["applies_to"]))
        else:
            seen[key] = step
            merged.append(step)
            by_input[json.dumps([body_key, step.get("input") or step["applies_to"][0]])] = step
    for step in merged:
        step.pop(
            "input", None
        )  # the analysis' own note (what an expression was computed from), not recorded
    return merged


def dtype_name(value: Any) -> str | None:
    """``"float32"``, ``np.float32``, ``torch.float``, ``tf.float32``, ``float`` -> a numpy name."""
    if value is None:
        return None
    text = str(value).rsplit(".", 1)[-1].strip("'\"")
    if "torch" in str(value):
        return DTYPES.get(text, text)
    return {"float": "float64", "int": "int64"}.get(text, DTYPES.get(text, text))


def library_family(qual: str, imported: set[str]) -> str | None:
    """``"torch"`` for torchvision transforms, ``"keras"`` for Keras layers, else ``None``.

    Args:
        qual: Qualified name of the callee; a bare name when it was not imported by name (star
            imports), which is then judged by the file's imports.
        imported: Top-level packages the file imports.
    """
    if "torchvision.transforms" in qual:
        return "torch"
    if "keras" in qual:
        return "keras"
    if "." in qual:  # resolved to some other library
        return None
    augment = qual.startswith("Random") or qual in AUGMENTATIONS
    if "torchvision" in imported and (augment or qual in TORCH_TRANSFORMS):
        return "torch"
    if imported & {"keras", "tensorflow"} and (augment or qual in KERAS_PREPROCESSING):
        return "keras"
    return None


def library_steps(
    qual: str, family: str | None, args: list[Any], kwargs: dict[str, Any]
) -> list[dict[str, Any]]:
    """Steps for a call of a known preprocessing API, ``[]`` for anything else.

    Args:
        qual: Qualified name of the callee (``"torchvision.transforms.Normalize"``).
        family: ``"torch"`` or ``"keras"`` when the callee belongs to torchvision transforms or
            Keras (explicitly or by the file's imports), else ``None``.
        args: Positional arguments, literal values or source text.
        kwargs: Keyword arguments, likewise.
    """
    last = qual.rsplit(".", 1)[-1]
    first = args[0] if args else None
    second = args[1] if len(args) > 1 else None
    if qual.startswith(("sklearn.preprocessing.", "sklearn.impute.", "sklearn.decomposition.")):
        if not last[:1].isupper() or last.startswith("Label"):  # label encoders act on y
            return []
        return [
            {
                "op": _snake(last),
                "kwargs": kwargs,
                "fitted": True,
                "params": None,
                "note": _FITTED_NOTE,
            }
        ]
    if last == "pad_sequences":
        # Keras' defaults written out: a reader that assumed "post" served wrong answers silently.
        return [
            {
                "op": "pad",
                **PAD_DEFAULTS,
                **{k: kwargs[k] for k in ("maxlen", *PAD_DEFAULTS) if k in kwargs},
            }
        ]
    owner = qual.rsplit(".", 2)[-2] if qual.count(".") else ""
    if last == "from_pretrained" and owner.endswith(("Tokenizer", "TokenizerFast")):
        pretrained = kwargs.pop("pretrained_model_name_or_path", first)
        return [{"op": "tokenize", "tokenizer": owner, "pretrained": pretrained, **kwargs}]
    if (
        qual in ("tensorflow.image.resize", "cv2.resize")
        and isinstance(second, list)
        and len(second) == 2
    ):
        height, width = (
            (second[1], second[0]) if qual == "cv2.resize" else second
        )  # cv2 takes (w, h)
        return [{"op": "resize", "height": height, "width": width}]
    if last in ("image_dataset_from_directory", "flow_from_directory", "flow_from_dataframe"):
        size = kwargs.get("image_size" if last.startswith("image") else "target_size", [256, 256])
        if isinstance(size, list) and len(size) == 2:  # Keras resizes to this (default 256x256)
            return [{"op": "resize", "height": size[0], "width": size[1]}]
    if last == "ImageDataGenerator":
        return _image_data_generator(dict(kwargs))
    if family == "torch":
        return _torch_transform(last, args, kwargs)
    if family == "keras" and (
        last in KERAS_PREPROCESSING or last.startswith("Random") or last == "Tokenizer"
    ):
        return [_keras_layer(last, args, kwargs)]
    return []


def _image_data_generator(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    if "rescale" in kwargs:
        steps.append({"op": "rescale", "scale": kwargs.pop("rescale"), "offset": 0.0})
    augment = {
        k: v for k, v in kwargs.items() if k not in ("validation_split", "dtype", "data_format")
    }
    if augment:
        steps.append(
            {
                "op": "augment",
                "layer": "ImageDataGenerator",
                "args": [],
                "kwargs": augment,
                "train_only": True,
            }
        )
    return steps


def _torch_transform(last: str, args: list[Any], kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    first = args[0] if args else None
    if last == "Compose" or not last[:1].isupper():
        return []
    if last.startswith("Random") or last in AUGMENTATIONS:
        return [
            {"op": "augment", "layer": last, "args": args, "kwargs": kwargs, "train_only": True}
        ]
    if last == "ToTensor":
        return [{"op": "to_tensor", "scale": 1 / 255, "layout": "CHW"}]
    if last in ("PILToTensor", "ToImage"):
        return [{"op": "to_tensor", "scale": 1.0, "layout": "CHW"}]
    if last == "Normalize":
        std = kwargs.get("std", args[1] if len(args) > 1 else None)
        return [{"op": "normalize", "mean": kwargs.get("mean", first), "std": std}]
    if last in ("Resize", "CenterCrop"):
        size = kwargs.get("size", first)
        op = "resize" if last == "Resize" else "center_crop"
        if isinstance(size, list) and len(size) == 2:
            return [{"op": op, "height": size[0], "width": size[1]}]
        return [
            {"op": op, "size": size}
            if op == "resize"
            else {"op": op, "height": size, "width": size}
        ]
    if last == "Grayscale":
        return [
            {
                "op": "grayscale",
                "channels": kwargs.get("num_output_channels", 1 if first is None else first),
            }
        ]
    if last == "ToDtype":
        steps = [{"op": "cast", "dtype": dtype_name(kwargs.get("dtype", first))}]
        if kwargs.get("scale") is True:
            steps.append(
                {"op": "scale", "factor": 1 / 255, "note": "ToDtype(scale=True), for uint8 input"}
            )
        return steps
    return [{"op": "transform", "name": last, "args": args, "kwargs": kwargs}]


def _keras_layer(last: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    first = args[0] if args else None
    second = args[1] if len(args) > 1 else None
    if last == "Rescaling":
        return {
            "op": "rescale",
            "scale": kwargs.get("scale", first),
            "offset": kwargs.get("offset", 0.0 if second is None else second),
        }
    if last == "Normalization":
        mean, std = kwargs.get("mean"), _sqrt(kwargs.get("variance"))
        if mean is None or std is None:
            return {
                "op": "normalize",
                "mean": None,
                "std": None,
                "fitted": True,
                "params": None,
                "note": "adapted to the training data; the values live in the saved model",
            }
        return {"op": "normalize", "mean": mean, "std": std}
    if last in ("Resizing", "CenterCrop"):
        step = {
            "op": "resize" if last == "Resizing" else "center_crop",
            "height": kwargs.get("height", first),
            "width": kwargs.get("width", second),
        }
        return {
            **step,
            **({"interpolation": kwargs["interpolation"]} if "interpolation" in kwargs else {}),
        }
    if last.startswith("Random"):
        return {"op": "augment", "layer": last, "args": args, "kwargs": kwargs, "train_only": True}
    if last in ("TextVectorization", "Tokenizer"):
        return {"op": "tokenize", "tokenizer": last, **kwargs, "fitted": True, "params": None}
    return {"op": "transform", "name": last, "args": args, "kwargs": kwargs}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _sqrt(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return math.sqrt(value)
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, (int, float)) and v >= 0 for v in value)
    ):
        return [math.sqrt(v) for v in value]
    return None
