"""The summary header of an experiment page: the facts a reader asks first, one line each.

Status, framework, data, size of the model, its primary metric and best epoch, seed and whether
the ONNX export was checked against the framework. A fact the bundle does not record is shown as
an em dash (``card.fmt(None)``), never as ``None``; numbers have 4 significant digits
(``for_people``), the full value on hover. The primary metric is the project cards' rule
(:mod:`modelkb.site_builder.primary_metric`, with the project's chosen names), so a run's header
and its project's card agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelkb.card import fmt, fmt_count, fmt_shape, framework_text
from modelkb.metric_names import split_metric
from modelkb.site_builder.catalog import ExperimentSummary, for_people
from modelkb.site_builder.primary_metric import higher_is_better, metric_key

__all__ = ["Fact", "summary_facts"]

MISSING = fmt(None)
_MODEL_KINDS = ("weights", "onnx")


@dataclass(frozen=True)
class Fact:
    """One line of the header: ``key`` names it for scripts and tests, ``title`` is the hover text."""

    key: str
    label: str
    text: str
    title: str = ""


def summary_facts(
    metadata: Mapping[str, Any],
    summary: ExperimentSummary,
    *,
    metric_names: Sequence[str | None] = (),
) -> list[Fact]:
    """The header's facts, in reading order; ``metric_names`` are the project's primary metric
    choices (:func:`~modelkb.site_builder.primary_metric.metric_key`)."""
    architecture = _mapping(metadata.get("architecture"))
    key = metric_key([summary], metric_names)
    facts = [
        Fact("status", "Status", fmt(metadata.get("status"))),
        Fact("framework", "Framework", fmt(framework_text(metadata))),
        Fact("dataset", "Data", _dataset_text(_mapping(metadata.get("dataset")))),
        Fact("parameters", "Parameters", fmt_count(architecture.get("parameter_count"))),
        Fact("size", "Model size", _model_size(metadata.get("artifacts"))),
    ]
    if key is None:
        facts.append(Fact("metric", "Primary metric", MISSING))
    else:
        name, value = key.rsplit(".", 1)[-1], summary.number(key)
        facts.append(Fact("metric", "Primary metric", f"{name} {for_people(value)}", repr(value)))
    facts += [
        _best_epoch(key, _mapping(metadata.get("metrics")).get("history")),
        Fact("seed", "Seed", _seed_text(metadata)),
        _parity(_mapping(metadata.get("onnx"))),
    ]
    return facts


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _dataset_text(dataset: Mapping[str, Any]) -> str:
    """``"digits: image, x (None, 1, 8, 8)"``; a run of named inputs lists each input's shape."""
    shape = _mapping(dataset.get("shapes")).get("x")
    if isinstance(shape, Mapping):
        shape_text = ", ".join(f"{name} {fmt_shape(dims)}" for name, dims in shape.items())
    else:
        shape_text = "" if shape is None else f"x {fmt_shape(shape)}"
    parts = [str(part) for part in (dataset.get("kind"), shape_text) if part]
    text = ", ".join(parts)
    if dataset.get("name"):
        text = f"{dataset['name']}: {text}" if text else str(dataset["name"])
    return text or MISSING


def size_text(size: int) -> str:
    """``6264`` -> ``"6.26 kB"`` (decimal units, 3 significant digits)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _model_size(artifacts: Any) -> str:
    """The native weights and ``model.onnx``, each with its size."""
    files = [
        a
        for a in (artifacts if isinstance(artifacts, list) else [])
        if isinstance(a, Mapping)
        and a.get("kind") in _MODEL_KINDS
        and isinstance(a.get("size"), int)
    ]
    files.sort(key=lambda a: _MODEL_KINDS.index(a["kind"]))
    return " · ".join(f"{a.get('path')} {size_text(a['size'])}" for a in files) or MISSING


def _best_epoch(key: str | None, history: Any) -> Fact:
    """The epoch where the primary metric was best (lowest for a loss), from ``metrics.history``."""
    if key is None or not isinstance(history, list):
        return Fact("best_epoch", "Best epoch", MISSING)
    name = key.rsplit(".", 1)[-1]
    split, base = split_metric(name)
    split, base = ("val", base) if split == "val" else ("train", name)
    scored = [
        (value, entry.get("epoch"))
        for entry in history
        if isinstance(entry, Mapping)
        and (value := _number(_mapping(entry.get(split)).get(base))) is not None
    ]
    if not scored:
        return Fact("best_epoch", "Best epoch", MISSING)
    pick = max if higher_is_better(key) else min
    value, epoch = pick(scored, key=lambda pair: pair[0])
    text = f"{fmt(epoch)} ({name} {for_people(value)})"
    return Fact("best_epoch", "Best epoch", text, repr(value))


def _seed_text(metadata: Mapping[str, Any]) -> str:
    if "seed" not in metadata:
        return MISSING
    return "not seeded" if metadata["seed"] is None else fmt(metadata["seed"])


def _parity(onnx: Mapping[str, Any]) -> Fact:
    """Whether ``model.onnx`` was run and compared with the framework, and how close it came."""
    diff = _number(onnx.get("max_abs_diff"))
    if not onnx:
        return Fact("parity", "ONNX parity", MISSING)
    if not onnx.get("checked_on") or diff is None:
        return Fact("parity", "ONNX parity", "not checked")
    samples = onnx.get("checked_samples")
    rows = f", {fmt_count(samples)} samples" if isinstance(samples, int) else ""
    return Fact(
        "parity",
        "ONNX parity",
        f"verified: max |Δ| {for_people(diff)} ({onnx['checked_on']}{rows})",
        repr(diff),
    )
