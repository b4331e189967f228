"""``modelkb repeat``: the same configuration with n seeds, recorded as a group; group statistics."""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelkb.bundle import Bundle, read_bundle
from modelkb.ids import new_id
from modelkb.reproducibility.rerun import RerunResult, run_captured_code
from modelkb.store import Store

logger = logging.getLogger(__name__)

GROUP_PREFIX = "grp-"


@dataclass
class RepeatResult:
    """The runs of one ``modelkb repeat`` and their statistics."""

    group: str
    original: Bundle
    runs: list[RerunResult] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)


def new_group_id() -> str:
    """A fresh group id: ``grp-`` and a ULID (sorts by creation time)."""
    return GROUP_PREFIX + new_id()


def default_seeds(n: int) -> list[int]:
    """Seeds 1..n."""
    return list(range(1, n + 1))


def repeat(
    store: Store,
    experiment_id: str,
    n: int = 5,
    *,
    seeds: Sequence[int] | None = None,
    group: str | None = None,
    timeout: float | None = None,
    on_run: Callable[[int, RerunResult], None] | None = None,
) -> RepeatResult:
    """Re-run an experiment's captured code ``n`` times with different seeds, as one group.

    Args:
        store: The store; the runs are recorded there with ``group`` set.
        experiment_id: Id, unique prefix or name of the run to repeat.
        n: Number of runs (ignored when ``seeds`` is given).
        seeds: The seeds (default 1..n); they must differ.
        group: Group id (default: a new ``grp-...`` id).
        timeout: Seconds before one training process is killed.
        on_run: Called after each run with its index and result (progress reporting).

    Raises:
        ValueError: ``n < 1`` or repeated seeds.
        ReproductionError: A run failed.
    """
    chosen = list(seeds) if seeds is not None else default_seeds(n)
    if not chosen:
        raise ValueError(f"Expected at least one run. Received: n={n!r}, seeds={seeds!r}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"Expected different seeds. Received: seeds={chosen!r}")
    original = store.get(experiment_id)
    result = RepeatResult(group or new_group_id(), original)
    for index, seed in enumerate(chosen):
        logger.info("repeat %d/%d of %s with seed %d", index + 1, len(chosen), original.id, seed)
        run = run_captured_code(
            store, original, seed=int(seed), group=result.group, timeout=timeout
        )
        result.runs.append(run)
        if on_run is not None:
            on_run(index, run)
    result.statistics = group_statistics(store, result.group)
    return result


def group_bundles(store: Store, group_id: str) -> list[Bundle]:
    """The sealed runs of a group, oldest first."""
    runs = [r for r in store.search() if r.sealed and r.flat.get("group") == group_id]
    bundles = []
    for run in sorted(runs, key=lambda r: r.id):
        try:
            bundles.append(read_bundle(run.path, validate=False))
        except (OSError, ValueError) as err:
            logger.warning("skipped %s of group %s: %s", run.id, group_id, err)
    return bundles


def group_statistics(store: Store, group_id: str) -> dict[str, Any]:
    """Mean and standard deviation of every final metric over the runs of a group.

    The catalog and ``modelkb show`` use this for runs whose metadata has a ``group``.

    Args:
        store: The store.
        group_id: The ``group`` recorded in the runs.

    Returns:
        ``{"group", "n", "runs": [ids], "seeds": [...], "project", "metrics": {name: {"mean",
        "std", "min", "max", "n", "values"}}}``; ``std`` is the sample standard deviation
        (n - 1 in the denominator), ``0.0`` for a single run. ``n`` is 0 for an unknown group.
    """
    bundles = group_bundles(store, group_id)
    values: dict[str, list[float]] = {}
    for bundle in bundles:
        final = (bundle.metadata.get("metrics") or {}).get("final") or {}
        for name, value in final.items():
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                values.setdefault(name, []).append(float(value))
    metrics = {}
    for name in sorted(values):
        series = values[name]
        metrics[name] = {
            "mean": statistics.fmean(series),
            "std": statistics.stdev(series) if len(series) > 1 else 0.0,
            "min": min(series),
            "max": max(series),
            "n": len(series),
            "values": series,
        }
    return {
        "group": group_id,
        "n": len(bundles),
        "runs": [b.id for b in bundles],
        "seeds": [b.metadata.get("seed") for b in bundles],
        "project": bundles[0].project if bundles else None,
        "metrics": metrics,
    }


def format_mean_std(stats: dict[str, Any], name: str, *, digits: int = 4) -> str:
    """``0.9123 ± 0.0041 (n=5)`` for one metric of :func:`group_statistics`."""
    entry = stats["metrics"][name]
    return f"{entry['mean']:.{digits}f} ± {entry['std']:.{digits}f} (n={entry['n']})"
