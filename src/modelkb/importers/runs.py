"""An imported run, tool-neutral, and how it becomes a sealed bundle in a store.

Importers (:mod:`modelkb.importers.tensorboard`) read another tool's records into an
:class:`ImportedRun`; :func:`write_imported` turns it into a bundle: assembled in the store's
staging area and moved into place in one rename (nothing half-imported), with its provenance under
``imported`` (``from``, ``uri``, ``key``; ``not_recorded`` lists what the tool did not record,
shown as such instead of being invented). Importing the same source run again is a no-op.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from modelkb.artifacts import copy_artifact
from modelkb.bundle import LOCK_FILE, METRICS_FILE, BundleWriter, final_from_history
from modelkb.errors import ModelKBError
from modelkb.fsutil import jsonl_line
from modelkb.ids import new_id, utc_now
from modelkb.redact import redact_mapping, redact_text
from modelkb.store import Store

logger = logging.getLogger(__name__)

MAX_HISTORY = 10_000
"""Most history entries an imported run keeps (evenly spaced over the logged steps, the last kept)."""

WELL_KNOWN_HYPERPARAMETERS = {
    "learning_rate": "learning_rate",
    "lr": "learning_rate",
    "optimizer_learning_rate": "learning_rate",  # MLflow's Keras autolog
    "optimizer_name": "optimizer",
    "batch_size": "batch_size",
    "epochs": "epochs",
    "optimizer": "optimizer",
}


@dataclass
class ImportedRun:
    """One run as another tool recorded it."""

    tool: str
    key: str
    uri: str
    project: str
    name: str
    history: list[dict[str, Any]]
    axis: str = "epoch"
    final: dict[str, float | None] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    started: float | None = None
    ended: float | None = None
    tags: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    not_recorded: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[tuple[Path, str]] = field(default_factory=list)
    """``(source file or folder, path in the bundle)``, copied by the artifact rules."""
    lockfile: str | None = None
    """The dependency list the tool kept (``requirements.txt``), written as ``requirements.lock``."""


@dataclass
class ImportReport:
    """What an import did: bundles written, runs imported before (folder, id), problems (one line each)."""

    imported: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Candidate:
    """A run a tool recorded, not read yet: its ``imported.key``, how messages name it, a reader."""

    key: str
    source: str
    read: Callable[[], ImportedRun]


def import_runs(store: Store, candidates: Iterable[Candidate | str]) -> ImportReport:
    """The one import loop: runs imported before are skipped, each other run is read and written
    as a bundle; a run that cannot be read (or a tool's own ``str`` problem) is one line, never
    half a bundle."""
    report = ImportReport()
    known = already_imported(store)
    for candidate in candidates:
        if isinstance(candidate, str):
            report.problems.append(candidate)
        elif candidate.key in known:
            report.skipped.append((candidate.source, known[candidate.key]))
        else:
            try:
                report.imported.append(write_imported(store, candidate.read()))
            except (ModelKBError, OSError, ValueError) as err:
                reason = str(err).removeprefix(f"{candidate.source}: ")
                report.problems.append(f"{candidate.source}: {reason}")
    return report


def already_imported(store: Store) -> dict[str, str]:
    """``imported.key`` -> experiment id of every imported run in the store."""
    return {
        str(run.flat["imported.key"]): run.id
        for run in store.search()
        if run.flat.get("imported.key") is not None
    }


def write_imported(store: Store, run: ImportedRun) -> Path:
    """Write ``run`` as a sealed bundle of ``store``; returns its folder."""
    from modelkb.publishing.intake import staging_area

    history = thin_history(run)
    experiment_id = new_id(int(run.started * 1000) if run.started else None)
    metadata = _metadata(run, experiment_id, history)
    target = store.bundle_dir(run.project, experiment_id)
    with staging_area(store) as staging:
        folder = staging / experiment_id
        folder.mkdir()
        with open(folder / METRICS_FILE, "w", encoding="utf-8") as handle:
            handle.writelines(jsonl_line(entry) for entry in history)
        for source, relpath in run.files:
            _copy_into(folder, source, relpath, metadata)
        if run.lockfile is not None:
            header = f"# Imported from {run.tool} ({run.key}): the dependencies it recorded.\n"
            (folder / LOCK_FILE).write_text(header + redact_text(run.lockfile), encoding="utf-8")
        metadata = BundleWriter(folder).seal(metadata)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(folder, target)
    store.record(target)
    return target


def _copy_into(folder: Path, source: Path, relpath: str, metadata: dict[str, Any]) -> None:
    """Copy a file or folder of the tool's into the bundle: no link followed, no secret file, a
    path that stays inside the bundle; what was left out becomes a warning."""
    target = (folder / relpath).resolve()
    if not target.is_relative_to(folder.resolve()) or target == folder.resolve():
        raise ValueError(f"the file name {relpath!r} leaves the bundle")
    try:
        report = copy_artifact(source, target)
    except ValueError as err:
        report_lines = [str(err)]
    else:
        report_lines = report.messages()
    metadata["warnings"] += [
        {"message": line, "source": f"import:{metadata['imported']['from']}", "time": utc_now()}
        for line in report_lines
    ]


def thin_history(run: ImportedRun) -> list[dict[str, Any]]:
    """At most :data:`MAX_HISTORY` entries, evenly spaced, the last one kept; says so in a warning."""
    history = run.history
    if len(history) <= MAX_HISTORY:
        return history
    stride = len(history) / MAX_HISTORY
    kept = [history[int(i * stride)] for i in range(MAX_HISTORY - 1)] + [history[-1]]
    run.warnings.append(
        f"kept {MAX_HISTORY:,} of {len(history):,} logged {run.axis}s (evenly spaced, the last included)"
    )
    return kept


def _metadata(
    run: ImportedRun, experiment_id: str, history: list[dict[str, Any]]
) -> dict[str, Any]:
    params = redact_mapping({str(k): v for k, v in run.params.items()})
    hyper: dict[str, Any] = {"params": params} if params else {}
    for name, value in params.items():
        known = WELL_KNOWN_HYPERPARAMETERS.get(name.lower())
        if known == "optimizer" and isinstance(value, str):
            hyper["optimizer"] = {"name": value}
        elif known and _number(value) is not None:
            hyper[known] = _number(value)
    now = utc_now()
    metadata: dict[str, Any] = {
        "id": experiment_id,
        "project": run.project,
        "name": redact_text(run.name),
        "status": run.status or "completed",
        "tags": [redact_text(t) for t in run.tags],
        "hyperparameters": hyper,
        "seed": None,
        "metrics": {"history": history, "final": _final(history, run.final)},
        "imported": {
            "from": run.tool,
            "uri": redact_text(run.uri),
            "key": run.key,
            "axis": run.axis,
            "points": len(run.history),
            "imported_at": now,
            "not_recorded": sorted(
                set(run.not_recorded) | ({"status"} if not run.status else set())
            ),
            **redact_mapping(run.provenance),
        },
        "warnings": [
            {"message": redact_text(message), "source": f"import:{run.tool}", "time": now}
            for message in run.warnings
        ],
    }
    if run.started:
        metadata["created"] = _iso(run.started)
    if run.ended:
        metadata["finished"] = _iso(run.ended)
        if run.started:
            metadata["duration_s"] = round(run.ended - run.started, 3)
    return metadata


def _number(value: Any) -> int | float | None:
    """A number, or the number a tool wrote as text (MLflow keeps every param as a string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                continue
    return None


def _final(history: list[dict[str, Any]], logged: dict[str, float | None]) -> dict[str, Any]:
    """The last value of each metric (``test_<name>`` for a test split), then the final values
    the tool logged apart (``add_hparams``' metrics)."""
    final = final_from_history(history)
    for entry in history:
        for name, value in (entry.get("test") or {}).items():
            final[f"test_{name}"] = value
    return {**final, **logged}


def _iso(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
