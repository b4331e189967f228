"""The metric a project's runs are ranked by: one rule for the project cards, the experiment page's
summary header and the project page's plots.

A metric *name* (``accuracy``, ``val_f1``, ``metrics.final.mae``) stands for the validation value
when the runs record one (``metrics.final.val_<name>``), else the final training value
(``metrics.final.<name>``); a name that starts with ``val_`` stands for itself only. Names are
tried in order, the first that any of the runs has a number for wins:

1. the project's setting (``primary_metric`` in its ``project.json``, :mod:`modelkb.project_settings`),
2. the build's ``modelkb build --primary-metric NAME``,
3. ``accuracy``, then ``loss`` (regression projects have no accuracy: their best is the lowest loss).

A name none of the runs recorded falls through to the next, so a catalog-wide choice never leaves
a project without a score. Which way is better comes from :func:`modelkb.task.metric_direction`;
a name it does not know (``bleu``) counts as higher-is-better.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from modelkb.site_builder.catalog import ExperimentSummary
from modelkb.task import metric_direction

__all__ = ["DEFAULT_NAMES", "Best", "best_run", "candidate_keys", "higher_is_better", "metric_key"]

DEFAULT_NAMES = ("accuracy", "loss")
FINAL = "metrics.final."


def candidate_keys(name: str) -> tuple[str, ...]:
    """The flat keys a metric name stands for, validation first: ``accuracy`` ->
    ``(metrics.final.val_accuracy, metrics.final.accuracy)``."""
    base = name.strip().removeprefix(FINAL)
    if not base:
        return ()
    if base.startswith("val_"):
        return (FINAL + base,)
    return (FINAL + "val_" + base, FINAL + base)


def metric_key(
    summaries: Iterable[ExperimentSummary], names: Sequence[str | None] = ()
) -> str | None:
    """The flat key ``summaries`` are ranked by: the first key of ``names`` (then
    :data:`DEFAULT_NAMES`) that any of them has a number for; ``None`` when none has any."""
    runs = list(summaries)
    for name in (*names, *DEFAULT_NAMES):
        for key in candidate_keys(name or ""):
            if any(s.number(key) is not None for s in runs):
                return key
    return None


def higher_is_better(key: str) -> bool:
    """Whether a larger value of ``key`` is better (unknown names: yes)."""
    return metric_direction(key) != "lower"


@dataclass(frozen=True)
class Best:
    """The best run of a project: ``key`` is the flat key, ``name`` its last part."""

    key: str
    value: float
    summary: ExperimentSummary

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[-1]


def best_run(
    summaries: Iterable[ExperimentSummary], names: Sequence[str | None] = ()
) -> Best | None:
    """The run with the best value of the primary metric (the first of equals), or ``None``."""
    runs = list(summaries)
    key = metric_key(runs, names)
    if key is None:
        return None
    scored = [(s.number(key), s) for s in runs if s.number(key) is not None]
    pick = max if higher_is_better(key) else min
    value, summary = pick(scored, key=lambda pair: pair[0])  # type: ignore[arg-type,return-value]
    return Best(key, value, summary)  # type: ignore[arg-type]
