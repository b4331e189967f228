"""Describe a training data set from the arrays a run was fed, without any framework import.

The result is the ``dataset`` section of ``metadata.json`` (``docs/bundle-format.md``). Arrays are
duck-typed: anything with ``.shape`` and ``.dtype`` (numpy, torch, TensorFlow, pandas Series),
plain lists, pandas ``DataFrame`` objects (``.columns`` + ``.dtypes``) and dicts of arrays
(multi-input models). numpy is imported lazily, only to compute value ranges and class labels;
every such computation is bounded (at most :data:`RANGE_ROWS` rows for ranges) and never raises:
what cannot be computed cheaply is left out.

Kind rules (:func:`infer_kind`, on the *per-sample* shape, batch axis removed):

* ``text``: string/bytes dtype at any rank, or rank 1 integer token ids of length >= 8 (``None``
  length counts as long);
* ``image``: rank 2 ``(H, W)`` with both sides >= 8, or rank 3 with a channel axis of 1, 3 or 4
  first (``C, H, W``) or last (``H, W, C``) and both spatial sides >= 8 (``None`` counts as large);
* ``tabular``: rank 1 numeric features (float or bool, or integers shorter than 8);
* ``other``: everything else (scalars, rank 2 that is too small, rank >= 4, unknown dtype + rank).

The rules are a guess; a value the user gives wins, through :func:`merge_dataset`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any

from modelkb.preprocessing import missing_values

logger = logging.getLogger(__name__)

RANGE_ROWS = 10_000
"""Rows of ``x`` read to compute ``x_range``."""

MAX_CLASSES = 1000
"""More distinct labels than this and ``y`` is treated as a regression target."""

LABEL_ROWS = 1_000_000
"""Rows of ``y`` read to find class labels."""

_MIN_SPATIAL = 8
_CHANNELS = (1, 3, 4)
_STRING_DTYPES = ("str", "string", "bytes", "unicode")
_LIST_MERGED = ("preprocessing", "loading")


def infer_kind(shape: tuple[int | None, ...] | list[int | None], dtype: str | None) -> str:
    """Guess the kind of data from a per-sample shape and a dtype name.

    Args:
        shape: Shape of one sample, without the batch axis (``(8, 8)``, ``(3, 32, 32)``, ``(64,)``).
            ``None`` stands for an unknown (variable) size.
        dtype: Normalised dtype name (``"float32"``, ``"int64"``, ``"str"``) or ``None``.

    Returns:
        One of ``"image"``, ``"text"``, ``"tabular"``, ``"other"`` (rules in the module docstring).
    """
    dims = list(shape)
    name = _normalise_dtype_name(dtype)
    if name is not None and _is_string_name(name):
        return "text"
    rank = len(dims)
    if rank == 1:
        if name is not None and _is_integer_name(name):
            return "text" if _at_least(dims[0], _MIN_SPATIAL) else "tabular"
        return "tabular" if name is None or _is_numeric_name(name) else "other"
    if rank == 2 and all(_at_least(d, _MIN_SPATIAL) for d in dims):
        return "image"
    if rank == 3:
        first, last = dims[0], dims[-1]
        if last in _CHANNELS and all(_at_least(d, _MIN_SPATIAL) for d in dims[:2]):
            return "image"
        if first in _CHANNELS and all(_at_least(d, _MIN_SPATIAL) for d in dims[1:]):
            return "image"
    return "other"


def describe_arrays(x: Any, y: Any = None, *, split: str = "train") -> dict[str, Any]:
    """Describe the inputs (and labels) of one split.

    Args:
        x: Inputs: an array-like (numpy, torch, TensorFlow, list), a pandas ``DataFrame`` or a
            dict of array-likes (one per model input).
        y: Labels or targets, same kinds of objects; ``None`` when unknown.
        split: Name of the split the arrays belong to (``"train"``, ``"val"``, ``"test"``).

    Returns:
        A ``dataset`` section: ``kind``, ``shapes`` (``{"x": [None, ...], "y": [None, ...]}``; a
        dict of shapes per input for dict inputs), ``dtype``, ``samples`` (``{split: n}``), and
        when they can be told cheaply ``x_range`` (``{"min", "max"}`` over at most 10k rows of
        numeric ``x``), ``features`` (DataFrame column names), ``dtypes`` (per input),
        ``classes`` (sorted distinct labels as ints or strings) and ``num_classes``.
    """
    info: dict[str, Any] = {}
    if isinstance(x, Mapping):
        _describe_multi_input(x, info)
    else:
        _describe_single_input(x, info)
    samples = info.pop("_n", None)
    if samples is None and y is not None and not isinstance(y, Mapping):
        samples = _length(y)
    info["samples"] = {split: samples}
    if y is not None:
        if isinstance(y, Mapping):
            info["shapes"]["y"] = {str(k): _batch_shape(v) for k, v in y.items()}
        else:
            info["shapes"]["y"] = _batch_shape(y)
            info.update(_classes(y))
    return info


def _unresolved_twin(steps: list[Any], step: Any) -> int | None:
    """Index of a step of the same op whose fitted values are unknown, when ``step`` knows them."""
    if not isinstance(step, Mapping) or _unresolved(step):
        return None
    for index, other in enumerate(steps):
        if isinstance(other, Mapping) and other.get("op") == step.get("op") and _unresolved(other):
            return index
    return None


def _unresolved(step: Mapping[str, Any]) -> bool:
    """A step fitted to the data whose values the source did not show (``mean: null``, ``params: null``)."""
    return bool(missing_values(step))


def merge_dataset(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge two ``dataset`` sections; ``new`` wins.

    Nested dicts (``shapes``, ``samples`` per split, ...) are merged key by key. ``preprocessing``
    and ``loading`` lists are concatenated, old first, dropping exact duplicates; a ``new`` step
    that carries the values of an ``old`` step of the same op whose values were unknown (the source
    analysis saw ``(x - mean) / std`` but not ``mean``) takes its place. A ``None`` in
    ``new`` is skipped: it means "unknown" and never erases a value nor adds a null key. Neither
    argument is modified.

    Args:
        old: The section so far (usually the inferred one).
        new: The section to lay over it (usually what the user gave).

    Returns:
        A new merged dict.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(old))
    for key, value in new.items():
        current = merged.get(key)
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge_dataset(current, value)
        elif key in _LIST_MERGED and isinstance(value, list) and isinstance(current, list):
            seen = {_fingerprint(item) for item in current}
            for item in value:
                unresolved = _unresolved_twin(current, item) if key == "preprocessing" else None
                if unresolved is not None:  # the same step with its values: it replaces the guess
                    current[unresolved] = copy.deepcopy(item)
                    seen.add(_fingerprint(item))
                elif _fingerprint(item) not in seen:
                    seen.add(_fingerprint(item))
                    current.append(copy.deepcopy(item))
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# -- inputs ----------------------------------------------------------------------------------------


def _describe_single_input(x: Any, info: dict[str, Any]) -> None:
    if _is_dataframe(x):
        columns = [str(c) for c in x.columns]
        dtypes = sorted({str(d) for d in x.dtypes})
        dtype = dtypes[0] if len(dtypes) == 1 else "mixed"
        text = len(columns) == 1 and dtype in ("object", "string")
        info.update(
            kind="text" if text else "tabular",
            shapes={"x": [None, len(columns)]},
            dtype="str" if text else dtype,
            features=columns,
            _n=_length(x),
        )
        rng = _range(_dataframe_numbers(x))
    else:
        shape = _shape(x)
        dtype = _dtype(x)
        info.update(
            kind=infer_kind(shape[1:], dtype) if shape else "other",
            shapes={"x": [None, *shape[1:]] if shape else None},
            dtype=dtype,
            _n=shape[0] if shape else _length(x),
        )
        rng = _range(_head(x)) if dtype is not None and _is_numeric_name(dtype) else None
    if rng is not None:
        info["x_range"] = rng


def _describe_multi_input(x: Mapping[str, Any], info: dict[str, Any]) -> None:
    shapes: dict[str, Any] = {}
    dtypes: dict[str, str | None] = {}
    kinds: set[str] = set()
    count: int | None = None
    for name, array in x.items():
        sub: dict[str, Any] = {}
        _describe_single_input(array, sub)
        shapes[str(name)] = sub["shapes"]["x"]
        dtypes[str(name)] = sub["dtype"]
        kinds.add(sub["kind"])
        count = sub["_n"] if count is None else count
    distinct = set(dtypes.values())
    info.update(
        kind=kinds.pop() if len(kinds) == 1 else "other",
        shapes={"x": shapes},
        dtype=distinct.pop() if len(distinct) == 1 else None,
        dtypes=dtypes,
        _n=count,
    )


# -- duck typing -----------------------------------------------------------------------------------


def _is_dataframe(x: Any) -> bool:
    return hasattr(x, "columns") and hasattr(x, "dtypes") and hasattr(x, "iloc")


def _shape(x: Any) -> list[int | None]:
    """Full shape including the batch axis; ``[]`` when unknown."""
    shape = getattr(x, "shape", None)
    if shape is not None and not callable(shape):
        try:
            return [None if d is None else int(d) for d in shape]
        except (TypeError, ValueError):
            return []
    if isinstance(x, (list, tuple)):
        dims: list[int | None] = []
        current: Any = x
        while isinstance(current, (list, tuple)) or hasattr(current, "shape"):
            if not isinstance(current, (list, tuple)):
                return dims + _shape(current)
            dims.append(len(current))
            if not current:
                break
            current = current[0]
        return dims
    return []


def _length(x: Any) -> int | None:
    shape = _shape(x)
    if shape and shape[0] is not None:
        return shape[0]
    try:
        return len(x)
    except TypeError:
        return None


def _batch_shape(x: Any) -> list[int | None] | None:
    shape = _shape(x)
    return [None, *shape[1:]] if shape else None


def _dtype(x: Any) -> str | None:
    while isinstance(x, (list, tuple)) and x and not isinstance(x[0], (str, bytes)):
        x = x[0]  # a list of arrays has the dtype of its arrays
    dtype = getattr(x, "dtype", None)
    if dtype is not None:
        name = _normalise_dtype_name(dtype)
        if name == "object":
            first = _first_leaf(x)
            if isinstance(first, str):
                return "str"
            if isinstance(first, bytes):
                return "bytes"
        return name
    first = _first_leaf(x)
    if isinstance(first, bool):
        return "bool"
    if isinstance(first, int):
        return "int64"
    if isinstance(first, float):
        return "float64"
    if isinstance(first, str):
        return "str"
    if isinstance(first, bytes):
        return "bytes"
    return _normalise_dtype_name(getattr(first, "dtype", None))


def _first_leaf(x: Any) -> Any:
    current = x
    for _ in range(8):
        if isinstance(current, (str, bytes)) or not hasattr(current, "__getitem__"):
            return current
        try:
            if hasattr(current, "ravel") and hasattr(current, "size"):
                first = current.ravel()[0] if current.size else None
                return first.item() if hasattr(first, "item") else first
            current = current[0]
        except (IndexError, KeyError, TypeError, ValueError, AttributeError):
            return None
    return None


def _normalise_dtype_name(dtype: Any) -> str | None:
    """``np.dtype('<U5')`` -> ``str``; ``torch.float32`` -> ``float32``; ``tf.string`` -> ``str``"""
    if dtype is None:
        return None
    kind = getattr(dtype, "kind", None)
    if isinstance(kind, str) and kind in "USO" and len(kind) == 1:
        return {"U": "str", "S": "bytes", "O": "object"}[kind]
    name = getattr(dtype, "name", None)
    text = name if isinstance(name, str) else str(dtype)
    text = text.strip().lower()
    for prefix in ("torch.", "tf.", "<dtype: '"):
        text = text.removeprefix(prefix)
    text = text.rstrip("'>")
    if text.startswith(("<u", ">u", "|u", "<s", "|s")) and text[2:].isdigit():
        return "str" if text[1] == "u" else "bytes"
    return {"string": "str", "unicode": "str"}.get(text, text) or None


def _is_string_name(name: str) -> bool:
    return name in _STRING_DTYPES or name.startswith(("str", "unicode"))


def _is_integer_name(name: str) -> bool:
    return name.startswith(("int", "uint", "long", "short")) or name in ("int", "long")


def _is_numeric_name(name: str) -> bool:
    return _is_integer_name(name) or name.startswith(("float", "half", "double", "bfloat", "bool"))


def _at_least(dim: int | None, size: int) -> bool:
    return dim is None or dim >= size


# -- values (numpy, bounded, never raising) --------------------------------------------------------


def _to_numpy(x: Any) -> Any:
    """numpy view/copy of an array-like, or ``None`` when that is not possible."""
    try:
        import numpy as np

        if hasattr(x, "detach"):  # torch: leave autograd and the GPU first
            x = x.detach().cpu()
        if hasattr(x, "numpy") and callable(x.numpy):
            return np.asarray(x.numpy())
        if hasattr(x, "to_numpy") and callable(x.to_numpy):
            return np.asarray(x.to_numpy())
        return np.asarray(x)
    except Exception:  # any array library may fail its own way: skip the value
        logger.debug("could not convert %s to numpy", type(x).__name__, exc_info=True)
        return None


def _head(x: Any, rows: int = RANGE_ROWS) -> Any:
    try:
        return _to_numpy(x[:rows])
    except Exception:  # objects without slicing (generators, datasets)
        logger.debug("could not slice %s", type(x).__name__, exc_info=True)
        return None


def _dataframe_numbers(df: Any) -> Any:
    try:
        return _to_numpy(df.iloc[:RANGE_ROWS].select_dtypes(include="number"))
    except Exception:  # old pandas or a DataFrame look-alike
        logger.debug("could not read the numeric columns", exc_info=True)
        return None


def _range(values: Any) -> dict[str, float] | None:
    if values is None or getattr(values, "size", 0) == 0 or values.dtype.kind not in "iuf":
        return None
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
    if math.isnan(low) or math.isnan(high):  # every value was NaN
        return None
    return {"min": low, "max": high}


def _classes(y: Any) -> dict[str, Any]:
    """``classes`` and ``num_classes`` when ``y`` looks like class ids, one-hot or string labels."""
    shape = _shape(y)
    if not shape or len(shape) > 2:
        return {}
    values = _to_numpy(y[:LABEL_ROWS]) if hasattr(y, "__getitem__") else None
    if values is None or values.size == 0:
        return {}
    import numpy as np

    kind = values.dtype.kind
    if values.ndim == 2 and values.shape[1] > 1:
        return _one_hot_classes(values[:RANGE_ROWS])
    values = values.reshape(-1)
    if kind == "f":
        if not np.all(np.isin(values[:RANGE_ROWS], (0.0, 1.0))):
            return {}
        values = values.astype(np.int64)
        kind = "i"
    if kind not in "iubUSO":
        return {}
    try:
        distinct = np.unique(values)
    except TypeError:  # mixed objects cannot be sorted
        return {}
    if len(distinct) > MAX_CLASSES:
        return {}
    labels = [_label(v) for v in distinct.tolist()]
    if any(label is None for label in labels):
        return {}
    return {"classes": labels, "num_classes": len(labels)}


def _one_hot_classes(values: Any) -> dict[str, Any]:
    import numpy as np

    if values.dtype.kind not in "iubf" or values.shape[1] > MAX_CLASSES:
        return {}
    if not np.all(np.isin(values, (0, 1))) or not np.all(values.sum(axis=1) == 1):
        return {}
    count = int(values.shape[1])
    return {"classes": list(range(count)), "num_classes": count}


def _label(value: Any) -> int | str | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return None


def _fingerprint(item: Any) -> str:
    try:
        return json.dumps(item, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(item)
