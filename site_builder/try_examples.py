"""The examples try-the-model offers: a bundle's example inputs as tensors the page feeds as they are.

Reads the bundle's ``examples.json`` (:mod:`modelkb.example_inputs`: the rows ``model.onnx`` was
checked on) and turns each row into what ``experiments/<id>/examples.json`` of the site holds: one
tensor per ONNX input (``dtype`` from the bundle's ``onnx.inputs``, ``dims`` with a batch of one,
the values flattened), a short description and the true label as the run names its classes. A
model the page cannot feed this way (an input dtype onnxruntime-web does not take, a row that
does not fit the graph's shape) is offered no examples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from modelkb.site_builder.catalog import for_people
from modelkb.task import run_task

__all__ = ["page_examples"]

PAGE_DTYPES = {"float32": "float32", "float64": "float64", "int32": "int32", "int64": "int64"}
PAGE_DTYPES.update({"uint8": "uint8", "str": "string", "string": "string"})
"""ONNX input dtypes (as ``onnx.inputs`` names them) and the onnxruntime-web tensor type of each."""
SHOWN_VALUES = 6


def page_examples(
    examples: list[dict[str, Any]], metadata: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The page's examples: ``[{"feeds": {name: {dtype, dims, data}}, "text", "label"}]``.

    Args:
        examples: What :func:`modelkb.example_inputs.read_examples` read from the bundle.
        metadata: The bundle's metadata (``onnx.inputs``, ``dataset.classes``, the task).
    """
    onnx = metadata.get("onnx") if isinstance(metadata.get("onnx"), Mapping) else {}
    specs = [s for s in onnx.get("inputs") or [] if isinstance(s, Mapping) and s.get("name")]
    if not specs or any(str(s.get("dtype")) not in PAGE_DTYPES for s in specs):
        return []
    dataset = metadata.get("dataset") if isinstance(metadata.get("dataset"), Mapping) else {}
    classes = dataset.get("classes") if isinstance(dataset.get("classes"), list) else None
    task = run_task(metadata)
    out = []
    for example in examples:
        feeds = {}
        for spec in specs:
            tensor = _tensor(example["inputs"].get(str(spec["name"])), spec)
            if tensor is None:
                return []
            feeds[str(spec["name"])] = tensor
        entry: dict[str, Any] = {"feeds": feeds, "text": _describe(feeds, dataset.get("kind"))}
        label = _label_text(example.get("label"), classes, task)
        if label is not None:
            entry["label"] = label
        out.append(entry)
    return out


def _tensor(row: Any, spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """One row as ``{dtype, dims, data}`` with a batch axis of one, or ``None`` when it does not
    fit the graph's declared shape (fixed axes must match)."""
    if row is None:
        return None
    dims = _dims(row)
    if dims is None:
        return None
    shape = spec.get("shape") if isinstance(spec.get("shape"), list) else None
    full = [1, *dims]
    if shape is not None and (
        len(shape) != len(full)
        or any(isinstance(want, int) and want != got for want, got in zip(shape, full, strict=True))
    ):
        return None
    dtype = PAGE_DTYPES[str(spec["dtype"])]
    data = _flat(row)
    if (dtype == "string") != all(isinstance(v, str) for v in data):
        return None
    return {"dtype": dtype, "dims": full, "data": data}


def _dims(row: Any) -> list[int] | None:
    """The shape of a nested list, or ``None`` when it is ragged."""
    if not isinstance(row, list):
        return []
    inner = [_dims(item) for item in row]
    if not inner:
        return [0]
    if any(d is None or d != inner[0] for d in inner):
        return None
    return [len(row), *inner[0]]  # type: ignore[misc]


def _flat(row: Any) -> list[Any]:
    if not isinstance(row, list):
        return [row]
    return [value for item in row for value in _flat(item)]


def _describe(feeds: Mapping[str, Mapping[str, Any]], kind: Any) -> str:
    """A line for people: the first values of each input (an image is drawn by the page)."""
    if kind == "image" and len(feeds) == 1:
        dims = next(iter(feeds.values()))["dims"][1:]
        return "image " + "×".join(str(d) for d in dims)
    parts = []
    for name, tensor in feeds.items():
        values = tensor["data"]
        shown = ", ".join(for_people(v) for v in values[:SHOWN_VALUES])
        if len(values) > SHOWN_VALUES:
            shown += f", … ({len(values)} values)"
        parts.append(f"{name}: {shown}" if len(feeds) > 1 else shown)
    return " · ".join(parts)


def _label_text(label: Any, classes: list[Any] | None, task: str | None) -> str | None:
    """The true label as people read it: the class name of an index or a one-hot row, else the
    value(s) (a regression target)."""
    if isinstance(label, list) and len(label) == 1:
        label = label[0]
    if isinstance(label, str):
        return label
    if isinstance(label, list) and label and all(_finite(v) for v in label):
        if task == "classification" and classes and len(label) == len(classes):
            return str(classes[max(range(len(label)), key=label.__getitem__)])
        return ", ".join(for_people(v) for v in label)
    if not _finite(label):
        return None
    if task != "regression" and float(label).is_integer():
        index = int(label)
        if classes and 0 <= index < len(classes):
            return str(classes[index])
        return f"class {index}"
    return for_people(label)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
