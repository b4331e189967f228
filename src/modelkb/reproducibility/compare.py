"""Side-by-side comparison of two runs' metrics, with a verdict that explains the differences."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOLERANCE = 1e-6
# Per-epoch entries that are not results: wall time always differs.
_NOT_COMPARED = frozenset({"epoch", "time_s"})


@dataclass(frozen=True)
class MetricRow:
    """One metric of both runs: ``scope`` is ``final`` or ``epoch N``."""

    scope: str
    metric: str
    original: float | None
    reproduced: float | None

    @property
    def difference(self) -> float | None:
        """``reproduced - original``, or ``None`` when one side lacks the metric."""
        if self.original is None or self.reproduced is None:
            return None
        return self.reproduced - self.original

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "metric": self.metric,
            "original": self.original,
            "reproduced": self.reproduced,
            "difference": self.difference,
        }


@dataclass
class MetricComparison:
    """Every final and per-epoch metric of an original run and its re-run, and the verdict.

    Attributes:
        rows: One row per metric and scope.
        tolerance: Largest absolute difference still counted as equal.
        status: ``match`` (all within tolerance), ``expected_difference`` (differences, but a run
            was unseeded) or ``mismatch``.
        reasons: Why the runs may differ (changed seed, versions, environment).
    """

    rows: list[MetricRow]
    tolerance: float
    status: str
    reasons: list[str] = field(default_factory=list)

    @property
    def max_abs_difference(self) -> float | None:
        diffs = [
            abs(r.difference)
            for r in self.rows
            if r.difference is not None and math.isfinite(r.difference)
        ]
        return max(diffs) if diffs else None

    @property
    def missing(self) -> list[MetricRow]:
        return [r for r in self.rows if r.difference is None]

    @property
    def matched(self) -> bool:
        return self.status == "match"

    def summary(self) -> str:
        """One sentence: the verdict, the largest difference and why."""
        largest = self.max_abs_difference
        size = "n/a" if largest is None else f"{largest:.3g}"
        if self.status == "match":
            text = f"MATCH: all {len(self.rows)} metrics agree within {self.tolerance:g} (largest difference {size})."
        elif self.status == "expected_difference":
            text = f"EXPECTED DIFFERENCE: largest difference {size}; it is expected because the run is not seeded."
        else:
            text = f"MISMATCH: largest difference {size} (tolerance {self.tolerance:g})."
        if self.missing:
            text += f" {len(self.missing)} metric(s) present in one run only."
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "tolerance": self.tolerance,
            "max_abs_difference": self.max_abs_difference,
            "reasons": list(self.reasons),
            "summary": self.summary(),
            "rows": [r.as_dict() for r in self.rows],
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _epoch_values(entry: dict[str, Any]) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for name, value in (entry.get("train") or {}).items():
        values[name] = _number(value)
    for name, value in (entry.get("val") or {}).items():
        values[name if name.startswith("val_") else f"val_{name}"] = _number(value)
    for name, value in entry.items():
        if (
            name not in ("train", "val")
            and name not in _NOT_COMPARED
            and _number(value) is not None
        ):
            values[name] = _number(value)
    return values


def metric_rows(original: dict[str, Any], reproduced: dict[str, Any]) -> list[MetricRow]:
    """Rows for every final metric, then every metric of every epoch, of two runs' metadata."""
    rows: list[MetricRow] = []
    first = (original.get("metrics") or {}).get("final") or {}
    second = (reproduced.get("metrics") or {}).get("final") or {}
    for name in sorted(set(first) | set(second)):
        rows.append(MetricRow("final", name, _number(first.get(name)), _number(second.get(name))))
    by_epoch: list[dict[int, dict[str, float | None]]] = []
    for meta in (original, reproduced):
        history = (meta.get("metrics") or {}).get("history") or []
        by_epoch.append({int(e.get("epoch", n)): _epoch_values(e) for n, e in enumerate(history)})
    for epoch in sorted(set(by_epoch[0]) | set(by_epoch[1])):
        a, b = by_epoch[0].get(epoch, {}), by_epoch[1].get(epoch, {})
        for name in sorted(set(a) | set(b)):
            rows.append(MetricRow(f"epoch {epoch}", name, a.get(name), b.get(name)))
    return rows


def environment_differences(original: dict[str, Any], reproduced: dict[str, Any]) -> list[str]:
    """What differs between the two runs' recorded seeds, versions and relevant environment."""
    notes: list[str] = []
    if original.get("seed") != reproduced.get("seed"):
        notes.append(f"seed changed: {original.get('seed')} -> {reproduced.get('seed')}")
    ctx_a, ctx_b = original.get("context") or {}, reproduced.get("context") or {}
    for key in ("python", "cpu", "cpu_count", "os"):
        if ctx_a.get(key) != ctx_b.get(key):
            notes.append(f"context.{key}: {ctx_a.get(key)} -> {ctx_b.get(key)}")
    vers_a = ((original.get("framework") or {}).get("versions")) or {}
    vers_b = ((reproduced.get("framework") or {}).get("versions")) or {}
    for pkg in sorted(set(vers_a) | set(vers_b)):
        if vers_a.get(pkg) != vers_b.get(pkg):
            notes.append(f"{pkg}: {vers_a.get(pkg)} -> {vers_b.get(pkg)}")
    det_a = (original.get("determinism") or {}).get("deterministic_ops")
    det_b = (reproduced.get("determinism") or {}).get("deterministic_ops")
    if det_a != det_b:
        notes.append(f"deterministic ops: {det_a} -> {det_b}")
    env_a, env_b = ctx_a.get("env") or {}, ctx_b.get("env") or {}
    for name in sorted(set(env_a) | set(env_b)):
        if name.startswith(
            ("OMP_", "MKL_", "OPENBLAS_", "TF_NUM", "TF_DETERMINISTIC", "TF_ENABLE_ONEDNN")
        ) and env_a.get(name) != env_b.get(name):
            notes.append(f"${name}: {env_a.get(name)} -> {env_b.get(name)}")
    return notes


def compare_runs(
    original: dict[str, Any], reproduced: dict[str, Any], *, tolerance: float = DEFAULT_TOLERANCE
) -> MetricComparison:
    """Compare two runs' metrics and explain the outcome.

    Args:
        original: The original run's metadata.
        reproduced: The re-run's metadata.
        tolerance: Largest absolute difference counted as equal.

    Returns:
        The comparison; ``status`` is ``match``, ``expected_difference`` (a run is unseeded) or
        ``mismatch``.
    """
    rows = metric_rows(original, reproduced)
    reasons = environment_differences(original, reproduced)
    unseeded = original.get("seed") is None or reproduced.get("seed") is None
    if unseeded:
        reasons.insert(
            0,
            "the original run is not seeded: its random initialisation and data order cannot be replayed",
        )
    equal = bool(rows) and all(
        r.difference is not None and (abs(r.difference) <= tolerance or r.original == r.reproduced)
        for r in rows
    )
    if not rows:
        reasons.append("neither run recorded any metric")
    status = "match" if equal else "expected_difference" if unseeded else "mismatch"
    if status == "mismatch" and not reasons:
        reasons.append(
            "same seed and versions: a non-deterministic kernel or thread scheduling is the likely cause"
        )
    return MetricComparison(rows, tolerance, status, reasons)
