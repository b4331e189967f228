"""Does the recorded preprocessing explain what a dataset hands the model?

A map-style dataset (``torch.utils.data.Dataset`` subclass) that keeps its raw samples in an array
attribute and changes them in ``__getitem__`` (a custom resize, a division in a helper function)
can do things the source analysis does not recognise. Serving would then feed raw inputs to a
model trained on something else: rejected at best, wrong answers at worst. This module replays the
recorded steps on the dataset's first raw sample with the generated handler's own runtime and
compares the result with what ``dataset[0]`` returns; when they disagree, the run gets a step that
says so (``modelkb package`` refuses it by name) and a warning. When they agree, the raw arrays'
value range is what a served image's pixels stand for (``dataset.raw_range``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from modelkb.collector.dataset_info import RANGE_ROWS
from modelkb.preprocessing import REPLAYED_OPS, inference_steps

_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def replay_findings(dataset: Any, steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What replaying ``steps`` on the dataset's raw samples tells.

    Returns ``{"unrecognised": step}`` (a ``transform`` step naming ``<Dataset>.__getitem__``) when
    the recorded steps do not turn the raw samples into the samples the dataset returns,
    ``{"raw_range": {"min", "max"}}`` when they do, and ``{}`` when it cannot be told (no raw array
    attribute, random samples, steps the handler does not replay anyway).
    """
    import numpy as np

    if dataset is None or hasattr(dataset, "tensors") or not hasattr(dataset, "__getitem__"):
        return {}  # a TensorDataset returns its arrays as they are
    try:
        count = len(dataset)
        first, again = _input_of(dataset[0]), _input_of(dataset[0])
    except Exception:  # a dataset that cannot be indexed here: nothing to tell
        return {}
    if first is None or again is None or first.shape != again.shape:
        return {}
    if not np.allclose(first, again, **_TOLERANCE):
        return {}  # random augmentation: dataset[0] is not one fixed sample
    replayed = inference_steps([dict(s) for s in steps])
    if any(s.get("op") not in REPLAYED_OPS - {"tokenize", "pad"} for s in replayed):
        return {}  # `package` already names a step it cannot replay
    raws = _raw_arrays(dataset, count, first.size)
    if not raws:
        return {}
    for _, rows in raws:
        if _explains(rows[0], replayed, first):
            head = rows[:RANGE_ROWS]
            return {"raw_range": {"min": float(head.min()), "max": float(head.max())}}
    name, rows = raws[0]
    raw = rows[0]
    owner = type(dataset).__name__
    raw_shape, shape = list(raw.shape), list(first.shape)
    return {
        "unrecognised": {
            "op": "transform",
            "name": f"{owner}.__getitem__",
            "unrecognised": True,
            "raw": f"{owner}.{name}",
            "raw_shape": raw_shape,
            "shape": shape,
            "note": f"{owner}.__getitem__ turns {owner}.{name}[i] (shape {raw_shape}) into samples of "
            f"shape {shape} by a step ModelKB did not recognise",
        }
    }


def _input_of(item: Any) -> Any:
    """The model input of one ``dataset[i]`` (the first element of an ``(x, y)`` pair) as numpy."""
    import numpy as np

    if isinstance(item, (tuple, list)) and item:
        item = item[0]
    if hasattr(item, "detach"):
        item = item.detach().cpu().numpy()
    if not isinstance(item, np.ndarray) or item.dtype.kind not in "biuf":
        return None
    return item.astype(np.float64)


def _raw_arrays(dataset: Any, count: int, size: int) -> list[tuple[str, Any]]:
    """Array attributes with one row per sample (not labels): where raw samples are kept."""
    import numpy as np

    found = []
    for name, value in vars(dataset).items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray) or value.ndim < 2 or value.shape[0] != count:
            continue
        if value.dtype.kind not in "biuf" or (size > 1 and math.prod(value.shape[1:]) == 1):
            continue
        found.append((name, value))
    return sorted(found, key=lambda pair: -pair[1][0].size)


def _explains(raw: Any, steps: list[dict[str, Any]], sample: Any) -> bool:
    """Whether the sample is the raw row itself or the raw row after the recorded steps."""
    import numpy as np

    from modelkb.serverless.preprocess_runtime import InputError, replay

    candidates = [raw.astype(np.float64)]
    try:
        candidates.append(np.asarray(replay(raw[np.newaxis].astype(np.float64), steps))[0])
    except (InputError, ValueError, TypeError, IndexError):
        pass
    resized = any(s.get("op") == "resize" for s in steps)
    for candidate in candidates:
        if candidate.size != sample.size:
            continue
        if resized:  # resampling filters differ between libraries: the shape is the check
            return True
        if np.allclose(candidate.reshape(sample.shape), sample, **_TOLERANCE):
            return True
    return False
