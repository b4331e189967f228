"""Replay a run's recorded preprocessing on request data (ships verbatim as ``preprocess.py``).

This module is copied unchanged into every generated package, next to ``handler.py`` and
``predict.py``: it must stay framework-free (numpy and, for images only, Pillow) and must not
import anything from ``modelkb``. Every problem with the caller's data raises :class:`InputError`,
whose message is one line meant for the client; anything else is a bug.

The *spec* is the dict stored as ``spec.json`` in the package (see ``modelkb.serverless.spec``).
Raw inputs are what the training script had *before* its recorded preprocessing; the recorded
steps (``preprocessing``, applied to a batch exactly as they were applied to the training array)
then produce the model input, which is finally checked against the model's input shape and dtype.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAX_IMAGE_PIXELS = 16_000_000
"""Decoded images larger than this are refused (decompression bombs)."""
MAX_REQUEST_PIXELS = 32_000_000
"""All the images of one request together decode to at most this many pixels (CPU per request)."""
MAX_PIXELS_PER_BYTE = 2048
"""A PNG/JPEG claiming more pixels per byte of file than this is a bomb (deflate tops out near 1032)."""

_DTYPES = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "double": np.float64,
    "float": np.float32,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "bool": np.bool_,
    "long": np.int64,
    "int": np.int64,
    "string": np.object_,
    "str": np.object_,
}
_TOKEN_RE = re.compile(r"[\w']+", re.UNICODE)
_KERAS_PUNCTUATION = re.compile(
    r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
)  # TextVectorization's own
_KERAS_STANDARDIZE = (None, "lower", "strip_punctuation", "lower_and_strip_punctuation")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class InputError(ValueError):
    """The request data cannot be turned into a model input; the message is safe to show."""

    status = 400


class ShapeError(InputError):
    """The request is well formed but its samples do not have the model's shape (HTTP 422)."""

    status = 422


def numpy_dtype(name: str) -> Any:
    """The numpy dtype of a recorded dtype name (``float32``, ``torch.int64``, ``tensor(float)``)."""
    if (
        type(name) is str and name in _DTYPES
    ):  # the usual case, once per request step: skip the normalising
        return _DTYPES[name]
    key = str(name).lower().replace("torch.", "").replace("tensor(", "").rstrip(")")
    if key not in _DTYPES:
        raise ValueError(f"unsupported dtype {name!r}")
    return _DTYPES[key]


# -- raw request values -> arrays ------------------------------------------------------------------
def as_number_array(value: Any, what: str = "inputs") -> np.ndarray:
    """A numeric array from nested JSON lists; refuses strings, nulls, ragged lists and NaN."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, RecursionError) as err:
        raise InputError(f"{what} must be a rectangular array of numbers") from err
    kind = array.dtype.kind
    if kind == "b":
        array = array.astype(np.float64)
        kind = "f"
    if kind not in "iuf":
        raise InputError(f"{what} must contain only numbers (got {_kind_name(array)})")
    if array.size == 0:
        raise InputError(f"{what} is empty")
    if kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{what} must contain only finite numbers")
    return array


def _kind_name(array: np.ndarray) -> str:
    return {"U": "text", "S": "bytes", "O": "mixed or null values"}.get(
        array.dtype.kind, str(array.dtype)
    )


def decode_image(
    data: str, spec: Mapping[str, Any], *, max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[np.ndarray, int]:
    """Decode a base64 PNG/JPEG into raw pixel values shaped ``(1, H, W)`` or ``(1, H, W, C)``, and
    the number of pixels the image declared (counted against the request's budget).

    The image is converted to the model's colour mode, resized to the model's input size and its
    0..255 pixels mapped linearly onto ``spec["image"]["pixel_range"]`` (the raw data's range).
    Images over ``max_pixels`` (what is left of the request's budget) or that claim far more pixels
    than their bytes can hold are refused before they are decoded.
    """
    from PIL import Image, UnidentifiedImageError

    image_spec = spec.get("image") or {}
    text = data.split(",", 1)[1] if data.startswith("data:") and "," in data else data
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InputError("image must be base64-encoded PNG or JPEG bytes") from err
    if not raw:
        raise InputError("image is empty")
    try:
        with Image.open(io.BytesIO(raw)) as opened:
            if opened.format not in ("PNG", "JPEG"):
                raise InputError(f"image must be PNG or JPEG (got {opened.format or 'unknown'})")
            width, height = opened.size
            if width * height > min(max_pixels, MAX_IMAGE_PIXELS) or width < 1 or height < 1:
                raise InputError(
                    f"image is {width}x{height}; at most {min(max_pixels, MAX_IMAGE_PIXELS)} pixels "
                    "are accepted (per image, and for all the images of a request together)"
                )
            if width * height > MAX_PIXELS_PER_BYTE * len(raw):
                raise InputError(
                    f"image claims {width}x{height} pixels in {len(raw)} bytes; it is not accepted"
                )
            channels = int(image_spec.get("channels") or 1)
            mode = "L" if channels == 1 else "RGBA" if channels == 4 else "RGB"
            picture = opened.convert(mode)
            target = (
                int(image_spec.get("width") or width),
                int(image_spec.get("height") or height),
            )
            if picture.size != target:
                picture = picture.resize(target, Image.Resampling.BILINEAR)
            pixels = np.asarray(picture, dtype=np.float64)
    except InputError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as err:
        raise InputError("image bytes are not a readable PNG or JPEG") from err
    low, high = image_spec.get("pixel_range") or (0.0, 255.0)
    pixels = low + pixels * ((float(high) - float(low)) / 255.0)
    return pixels[np.newaxis], width * height


def tokenize_texts(texts: Sequence[str], step: Mapping[str, Any]) -> list[list[int]]:
    """Token ids of each text with the step's ``vocab`` (``{token: id}``, written by the spec)."""
    vocab = step["vocab"]
    oov = int(step.get("oov_index", 1))
    if step.get("tokenizer") == "TextVectorization":
        return [_fixed_length(ids, step) for ids in _text_vectorization(texts, step, vocab, oov)]
    lower = bool(step.get("lower", True))
    split = step.get("split", "words")
    out = []
    for text in texts:
        if not isinstance(text, str):
            raise InputError("text must be a string")
        if lower:
            text = text.lower()
        tokens = (
            list(text)
            if split == "chars"
            else text.split()
            if split == "whitespace"
            else _TOKEN_RE.findall(text)
        )
        out.append([int(vocab.get(token, oov)) for token in tokens])
    return out


def _text_vectorization(
    texts: Sequence[str], step: Mapping[str, Any], vocab: Mapping[str, int], oov: int
) -> list[list[int]]:
    """Keras ``TextVectorization`` (``output_mode="int"``): ASCII lower case (``tf.strings.lower``),
    its punctuation set stripped, split on whitespace or into characters."""
    standardize = step.get("standardize", "lower_and_strip_punctuation")
    split = step.get("split", "whitespace")
    if (
        step.get("output_mode", "int") != "int"
        or standardize not in _KERAS_STANDARDIZE
        or split not in ("whitespace", "character")
    ):
        raise ValueError("unsupported TextVectorization settings")  # refused at package time (spec)
    out = []
    for text in texts:
        if not isinstance(text, str):
            raise InputError("text must be a string")
        if standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.translate(_ASCII_LOWER)
        if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = _KERAS_PUNCTUATION.sub("", text)
        tokens = text.split() if split == "whitespace" else list(text)
        out.append([int(vocab.get(token, oov)) for token in tokens])
    return out


def _fixed_length(ids: list[int], step: Mapping[str, Any]) -> list[int]:
    """``output_sequence_length``: truncated or zero-padded at the end, as the layer does."""
    length = step.get("output_sequence_length")
    if not isinstance(length, int) or length <= 0:
        return ids
    return ids[:length] + [0] * max(0, length - len(ids))


def pad_sequences(sequences: Sequence[Sequence[int]], step: Mapping[str, Any]) -> np.ndarray:
    """Pad/truncate token id lists to ``maxlen`` (``padding``/``truncating``: ``pre`` or ``post``).

    A field left out means what Keras' ``pad_sequences`` does (``pre``), as the bundle format says.
    """
    maxlen = int(step["maxlen"])
    value = step.get("value", 0)
    padding = step.get("padding", "pre")
    truncating = step.get("truncating", "pre")
    out = np.full((len(sequences), maxlen), value, dtype=np.int64)
    for row, ids in enumerate(sequences):
        ids = list(ids)[:maxlen] if truncating == "post" else list(ids)[-maxlen:]
        if not ids:
            continue
        if padding == "post":
            out[row, : len(ids)] = ids
        else:
            out[row, maxlen - len(ids) :] = ids
    return out


# -- the recorded steps ------------------------------------------------------------------------------
# The spec writes every step in canonical form (``modelkb.preprocessing.canonical_step``): one name per
# field, pad defaults written out, a tokenizer's vocabulary as a ``{token: id}`` mapping.
def _param(step: Mapping[str, Any], name: str) -> Any:
    if name not in step:
        raise ValueError(f"preprocessing step {step.get('op')!r} lacks {name!r}")
    return step[name]


def _broadcast(values: Any, x: np.ndarray, axis: int | None) -> np.ndarray:
    if type(values) is float or type(values) is int:  # a scalar: no array to build or reshape
        return np.float64(values)
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0 or axis is None or axis == -1 or axis == x.ndim - 1:
        return array
    shape = [1] * x.ndim
    shape[axis] = -1
    return array.reshape(shape)


def _tokenize(x: Any, step: Mapping[str, Any]) -> Any:
    if isinstance(x, np.ndarray) or not all(isinstance(t, str) for t in x):
        return x  # token ids given directly: nothing to tokenize
    return tokenize_texts(x, step)


def _pad(x: Any, step: Mapping[str, Any]) -> np.ndarray:
    return pad_sequences(x.tolist() if isinstance(x, np.ndarray) else x, step)


def _scale(x: np.ndarray, step: Mapping[str, Any]) -> np.ndarray:
    return x * _broadcast(_param(step, "factor"), x, step.get("axis"))


def _rescale(x: np.ndarray, step: Mapping[str, Any]) -> np.ndarray:
    axis = step.get("axis")
    return x * _broadcast(_param(step, "scale"), x, axis) + _broadcast(
        step.get("offset", 0.0), x, axis
    )


def _normalize(x: np.ndarray, step: Mapping[str, Any]) -> np.ndarray:
    axis = step.get("axis")
    return (x - _broadcast(step.get("mean", 0.0), x, axis)) / _broadcast(
        step.get("std", 1.0), x, axis
    )


def _minmax(x: np.ndarray, step: Mapping[str, Any]) -> np.ndarray:
    low = _broadcast(_param(step, "min"), x, step.get("axis"))
    high = _broadcast(_param(step, "max"), x, step.get("axis"))
    return (x - low) / np.where(high - low == 0, 1.0, high - low)


def _reshape(x: np.ndarray, step: Mapping[str, Any]) -> np.ndarray:
    shape = [int(d) if d is not None else -1 for d in _param(step, "shape")]
    try:
        return x.reshape(shape)
    except ValueError as err:
        raise ShapeError(
            f"inputs of shape {list(x.shape[1:])} cannot be reshaped to {shape[1:]}"
        ) from err


def _transpose(x: np.ndarray, step: Mapping[str, Any]) -> np.ndarray:
    axes = [int(a) for a in _param(step, "axes")]
    if len(axes) != x.ndim:
        raise InputError(f"inputs have {x.ndim - 1} axes per sample; expected {len(axes) - 1}")
    return np.transpose(x, axes)


def _resize(x: np.ndarray, step: Mapping[str, Any]) -> np.ndarray:
    return _resize_arrays(x, int(step["height"]), int(step["width"]))


STEPS: dict[str, Any] = {
    "tokenize": _tokenize,
    "pad": _pad,
    "scale": _scale,
    "rescale": _rescale,
    "normalize": _normalize,
    "standardize": _normalize,
    "minmax": _minmax,
    "clip": lambda x, step: np.clip(x, step.get("min"), step.get("max")),
    "cast": lambda x, step: x.astype(numpy_dtype(_param(step, "dtype"))),
    "reshape": _reshape,
    "flatten": lambda x, step: x.reshape(x.shape[0], -1),
    "expand_dims": lambda x, step: np.expand_dims(x, int(step.get("axis", -1))),
    "transpose": _transpose,
    "resize": _resize,
}
"""Op name -> ``f(batch, step)``: the ops this runtime replays (``modelkb.preprocessing.REPLAYED_OPS``)."""
SUPPORTED_OPS = frozenset(STEPS)
_ON_TEXT = frozenset({"tokenize", "pad"})
"""Ops that take a list of texts or token id lists; every other op works on a numeric array."""


def apply_step(x: Any, step: Mapping[str, Any], *, skip_resize: bool = False) -> Any:
    """Apply one recorded step to a batch (an array, or a list of texts before ``tokenize``)."""
    op = step.get("op")
    if op not in STEPS:
        raise ValueError(f"unsupported preprocessing step {op!r}")
    if op == "resize" and skip_resize:
        return x
    if op not in _ON_TEXT and not isinstance(x, np.ndarray):
        x = _stack_ids(x)
    return STEPS[op](x, step)


def _stack_ids(sequences: Sequence[Sequence[int]]) -> np.ndarray:
    if len({len(ids) for ids in sequences}) > 1:
        raise InputError("token sequences must all have the same length for this model")
    return np.asarray(sequences, dtype=np.int64)


def _resize_arrays(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``(N, H, W[, C])`` arrays (what ``tf.image.resize`` does by default)."""
    from PIL import Image

    if x.ndim not in (3, 4):
        raise InputError(f"images must be (H, W) or (H, W, C); got {list(x.shape[1:])}")
    if x.shape[1:3] == (height, width):
        return x
    channels = x[..., np.newaxis] if x.ndim == 3 else x
    out = np.empty((x.shape[0], height, width, channels.shape[-1]), dtype=np.float64)
    for n in range(x.shape[0]):
        for c in range(channels.shape[-1]):
            plane = Image.fromarray(channels[n, :, :, c].astype(np.float32), mode="F")
            out[n, :, :, c] = np.asarray(plane.resize((width, height), Image.Resampling.BILINEAR))
    return out[..., 0] if x.ndim == 3 else out


def replay(x: Any, steps: Sequence[Mapping[str, Any]], *, skip_resize: bool = False) -> Any:
    """Apply the recorded steps in order."""
    for step in steps:
        try:
            x = apply_step(x, step, skip_resize=skip_resize)
        except InputError:
            raise
        except (
            ValueError,
            TypeError,
            IndexError,
        ) as err:  # numpy: shapes that do not broadcast, ...
            shape = list(x.shape[1:]) if isinstance(x, np.ndarray) else "these"
            raise InputError(
                f"inputs of shape {shape} do not fit the recorded preprocessing step {step.get('op')!r}"
            ) from err
    return x


def conform(x: Any, spec: Mapping[str, Any]) -> np.ndarray:
    """Check a batch against the model input (shape, dtype) and cast it; reshapes only when lossless."""
    if not isinstance(x, np.ndarray):
        x = _stack_ids(x)
    want = list(spec["input"]["shape"][1:])
    same_rank = len(want) == x.ndim - 1
    if same_rank and all(w is None or w == g for w, g in zip(want, x.shape[1:], strict=True)):
        pass
    elif all(isinstance(w, int) for w in want) and x[0].size == math.prod(want):
        image = spec.get("image") or {}
        if (
            image.get("channels_first")
            and x.ndim == 4
            and list(x.shape[1:]) == [want[1], want[2], want[0]]
        ):
            x = np.transpose(x, (0, 3, 1, 2))
        else:
            x = x.reshape((x.shape[0], *want))
    else:
        shown = [w if w is not None else "any" for w in want]
        raise ShapeError(f"each sample must have shape {shown}; got {list(x.shape[1:])}")
    vocab_size = (spec.get("text") or {}).get("vocab_size")
    if vocab_size and x.size and (x.min() < 0 or x.max() >= vocab_size):
        raise InputError(f"token ids must be between 0 and {int(vocab_size) - 1}")
    dtype = numpy_dtype(spec["input"]["dtype"])
    whole = x.dtype.kind != "f" or np.all(np.equal(np.mod(x, 1), 0))
    if np.dtype(dtype).kind in "iu" and not whole:
        raise InputError(
            f"inputs must be whole numbers for this model (dtype {spec['input']['dtype']})"
        )
    return np.ascontiguousarray(x, dtype=dtype)


# -- one request -> one model batch ---------------------------------------------------------------
def prepare_batch(
    samples: Sequence[Any], spec: Mapping[str, Any]
) -> np.ndarray | dict[str, np.ndarray]:
    """Turn a list of raw samples (the request's instances) into the model's input batch.

    A sample is, by data kind: image — base64 PNG/JPEG text or an array of raw pixel values;
    tabular — ``{feature: value}`` or an array of values in the recorded feature order;
    text — a string or a list of token ids. A model with named inputs (``spec["named_inputs"]``)
    takes records ``{input name: value}`` and gets one array per input.
    """
    if not samples:
        raise InputError("no samples given")
    if spec.get("named_inputs"):
        return named_batch(samples, spec["named_inputs"])
    kind = spec.get("kind", "other")
    steps = spec.get("preprocessing") or []
    if kind == "text":
        if all(isinstance(s, str) for s in samples):
            if not any(step.get("op") == "tokenize" for step in steps):
                raise InputError("this model was not recorded with a tokenizer; send token ids")
            return conform(replay(list(samples), steps), spec)
        if any(isinstance(s, str) for s in samples):
            raise InputError("give either texts or token id lists, not both")
        return conform(replay([_token_ids(s) for s in samples], steps), spec)
    if kind == "image" and any(isinstance(s, str) for s in samples):
        if not all(isinstance(s, str) for s in samples):
            raise InputError("give either base64 images or pixel arrays, not both")
        pixels, budget = [], MAX_REQUEST_PIXELS
        for sample in samples:
            decoded, declared = decode_image(sample, spec, max_pixels=budget)
            pixels.append(decoded)
            budget -= declared
        return _one_per_sample(
            conform(replay(np.concatenate(pixels), steps, skip_resize=True), spec),
            len(samples),
            spec,
        )
    rows = [
        _tabular_row(s, spec) if isinstance(s, Mapping) else as_number_array(s) for s in samples
    ]
    if kind != "tabular" and any(isinstance(s, Mapping) for s in samples):
        raise InputError("named features are accepted only by tabular models")
    if len({row.shape for row in rows}) != 1:
        raise InputError("all samples must have the same shape")
    features = spec.get("features")
    if kind == "tabular" and features and rows[0].size != len(features):
        shown = ", ".join(features[:8]) + (", ..." if len(features) > 8 else "")
        raise InputError(
            f"each sample must have {len(features)} values ({shown}); got {rows[0].size}"
        )
    batch = (rows[0][np.newaxis] if len(rows) == 1 else np.stack(rows)).astype(
        np.float64
    )  # astype: a fresh copy
    return _one_per_sample(conform(replay(batch, steps), spec), len(samples), spec)


def _one_per_sample(batch: np.ndarray, count: int, spec: Mapping[str, Any]) -> np.ndarray:
    """Refuse a batch that the recorded steps re-batched: a reshape with ``-1`` turns one 8x8x3
    sample into three 8x8 ones, and three answers for one sample would be wrong, not an error."""
    if batch.shape[0] != count:
        want = [w if w is not None else "any" for w in spec["input"]["shape"][1:]]
        raise ShapeError(
            f"each sample must hold exactly one model input of shape {want}; "
            f"{count} sample(s) made {batch.shape[0]} inputs"
        )
    return batch


def _token_ids(sample: Any) -> list[int]:
    ids = as_number_array(sample, "token ids")
    if ids.ndim != 1:
        raise InputError("token ids must be a flat list of integers")
    if ids.dtype.kind == "f" and not np.all(np.equal(np.mod(ids, 1), 0)):
        raise InputError("token ids must be integers")
    if ids.min() < 0 or ids.max() >= 2**31:
        raise InputError("token ids must be non-negative 32-bit integers")
    return [int(i) for i in ids]


def _tabular_row(sample: Mapping[str, Any], spec: Mapping[str, Any]) -> np.ndarray:
    features = spec.get("features")
    if not features:
        raise InputError("this model has no recorded feature names; send an array of values")
    missing = [name for name in features if name not in sample]
    if missing:
        raise InputError(f"missing feature(s): {', '.join(map(str, missing[:5]))}")
    unknown = [name for name in sample if name not in features]
    if unknown:
        raise InputError(f"unknown feature(s): {', '.join(map(str, unknown[:5]))}")
    return as_number_array([sample[name] for name in features], "features")


def named_batch(
    samples: Sequence[Any], inputs: Sequence[Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """One array per named model input from records ``{name: value}`` (the structured-data recipe:
    ``{"age": 63, "thal": "fixed", "cp": 1}``). A value is one sample's value of that input: a
    number or a text for a ``(1,)`` input, a list of the input's shape otherwise. The model itself
    holds the lookups and normalisation; here values are only checked, shaped and typed."""
    names = [str(entry["name"]) for entry in inputs]
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    for sample in samples:
        if not isinstance(sample, Mapping):
            raise InputError(
                f"this model takes named inputs ({shown}): send records like "
                f'{{"{names[0]}": ...}}, not arrays'
            )
        missing = [name for name in names if name not in sample]
        if missing:
            raise InputError(f"missing input(s): {', '.join(missing[:5])}")
        unknown = [str(name) for name in sample if name not in names]
        if unknown:
            raise InputError(
                f"unknown input(s): {', '.join(unknown[:5])}; this model takes {shown}"
            )
    return {str(entry["name"]): _named_values(samples, entry) for entry in inputs}


def _named_values(samples: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]) -> np.ndarray:
    name = str(entry["name"])
    values = [sample[name] for sample in samples]
    dtype = numpy_dtype(entry["dtype"])
    if dtype is np.object_:
        flat = [v for value in values for v in (value if isinstance(value, list) else [value])]
        if not all(isinstance(v, str) for v in flat):
            raise InputError(f"{name} must be text")
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        array = array.reshape(len(values), -1)
    else:
        array = as_number_array(values, name)
        if np.dtype(dtype).kind in "iu" and not np.all(np.equal(np.mod(array, 1), 0)):
            raise InputError(f"{name} must be a whole number")
    want = [d if isinstance(d, int) and d > 0 else None for d in entry["shape"][1:]]
    size = math.prod(d for d in want if d is not None)
    per_sample = array[0].size if array.ndim > 1 else 1
    if None in want or per_sample != size:
        if not (None in want and len(want) == array.ndim - 1):
            shown = [w if w is not None else "any" for w in want]
            raise ShapeError(
                f"{name}: each value must have shape {shown}; got {list(array.shape[1:])}"
            )
    else:
        array = array.reshape((len(values), *want))
    return np.ascontiguousarray(array, dtype=dtype)
