"""A run's example inputs (``examples.json``): the first rows ``model.onnx`` was checked on.

The one owner of the file's format. The collectors write it beside ``model.onnx`` from the rows
the ONNX check ran (with their labels when the training data gave them); the catalog reads it to
offer the rows in try-the-model. Format::

    {"schema_version": 1,
     "examples": [{"inputs": {"<ONNX input name>": <one row, batch axis removed>},
                   "label": <the row's target, when known>}, ...]}

Rows are nested lists of numbers (float32 inputs written with float32's shortest digits, so
they read back to the same values) or strings. At most :data:`MAX_EXAMPLES` rows of at most
:data:`MAX_VALUES` values each are kept: larger inputs (photographs) are not written at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelkb.errors import BundleSchemaError
from modelkb.fsutil import atomic_write_json

__all__ = ["EXAMPLES_FILE", "MAX_EXAMPLES", "MAX_VALUES", "read_examples", "write_examples"]

EXAMPLES_FILE = "examples.json"
MAX_EXAMPLES = 4
"""Rows kept: enough to try a model, few enough to keep the bundle and the page small."""
MAX_VALUES = 3072
"""Values of one row over all inputs (a 32x32 RGB image); rows of larger inputs are not kept."""
FORMAT_VERSION = 1


def write_examples(
    path: str | Path, feed: Mapping[str, Any], labels: Any = None, *, rows: int | None = None
) -> int:
    """Write the first rows of an ONNX feed (and their labels) to ``path``; returns how many.

    Args:
        path: The bundle's ``examples.json``.
        feed: ``{ONNX input name: array}``, as the check fed the graph (numpy arrays, batch first).
        labels: The rows' targets (an array, batch first), or ``None``.
        rows: Use at most this many rows (a check may append rows that are not data).

    Returns:
        The number of rows written; ``0`` (nothing written) when the rows are too large, hold a
        NaN or an infinity, or the inputs disagree on the number of rows.
    """
    import numpy as np

    arrays = {str(name): np.asarray(value) for name, value in feed.items()}
    counts = {int(a.shape[0]) for a in arrays.values() if a.ndim}
    if not arrays or len(counts) != 1 or any(a.ndim == 0 for a in arrays.values()):
        return 0
    count = min(counts.pop(), MAX_EXAMPLES, MAX_EXAMPLES if rows is None else rows)
    if sum(a[0].size for a in arrays.values()) > MAX_VALUES or count <= 0:
        return 0
    columns = {name: _rows(array[:count]) for name, array in arrays.items()}
    if any(column is None for column in columns.values()):
        return 0
    targets = _label_rows(labels, count)
    examples = []
    for index in range(count):
        example: dict[str, Any] = {
            "inputs": {name: rows_[index] for name, rows_ in columns.items()}
        }  # type: ignore[index]
        if targets is not None and index < len(targets):
            example["label"] = targets[index]
        examples.append(example)
    atomic_write_json(path, {"schema_version": FORMAT_VERSION, "examples": examples})
    return count


def _label_rows(labels: Any, count: int) -> list[Any] | None:
    """The first ``count`` labels as JSON values, or ``None`` (no labels, or not one array)."""
    import numpy as np

    if labels is None or isinstance(labels, (Mapping, tuple, list)):
        return None
    array = np.asarray(labels)
    return _rows(array[:count]) if array.ndim else None


def _rows(array: Any) -> list[Any] | None:
    """``array`` as one JSON value per row, or ``None`` when it holds something JSON cannot."""
    import numpy as np

    if array.dtype.kind in "OSU":
        values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in array.ravel()]
        if not all(isinstance(v, str) for v in values):
            return None
        return np.asarray(values, dtype=object).reshape(array.shape).tolist()
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            return None
        if array.dtype == np.float32:  # float32's shortest digits read back to the same value
            return np.asarray(array.astype(str), dtype=np.float64).tolist()
    elif array.dtype.kind not in "iu":
        return None
    return array.tolist()


def read_examples(folder: str | Path) -> list[dict[str, Any]]:
    """The example rows of a bundle folder (``[]`` when it has no ``examples.json``).

    Raises:
        BundleSchemaError: The file is not JSON or not in the format above; the message names
            the file and the field.
    """
    path = Path(folder) / EXAMPLES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BundleSchemaError(f"not readable JSON ({err})", path=str(path)) from err
    examples = data.get("examples") if isinstance(data, Mapping) else None
    if not isinstance(examples, list):
        raise BundleSchemaError("expected a list under 'examples'", path=str(path))
    for index, example in enumerate(examples[:MAX_EXAMPLES]):
        inputs = example.get("inputs") if isinstance(example, Mapping) else None
        if not isinstance(inputs, Mapping) or not inputs:
            raise BundleSchemaError(
                f"examples[{index}].inputs is not a mapping of input names", path=str(path)
            )
        for name, value in inputs.items():
            if not _is_row(value):
                raise BundleSchemaError(
                    f"examples[{index}].inputs[{name!r}] is not a row of numbers or strings",
                    path=str(path),
                )
    return [dict(example) for example in examples[:MAX_EXAMPLES]]


def _is_row(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_row(item) for item in value)
    if isinstance(value, bool) or value is None:
        return False
    return isinstance(value, str) or (isinstance(value, (int, float)) and math.isfinite(value))
