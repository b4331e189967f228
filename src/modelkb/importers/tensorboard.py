"""``modelkb import tensorboard LOGDIR``: each run folder's event files become a bundle.

A run is a folder holding event files, together with its split subfolders (Keras' TensorBoard
callback writes ``<run>/train`` and ``<run>/validation``) and the subfolders ``add_hparams`` of
torch's ``SummaryWriter`` writes (hparams and metrics only). Scalar tags become metrics:
``epoch_loss`` in a ``validation`` folder is ``val.loss``; ``Loss/train``, ``train/loss`` and
``val_loss`` name their split. Keras' ``epoch_*`` tags are per epoch; any other tag's steps are
kept as steps (``imported.axis = "step"``: history entries carry ``step``, numbered in order).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from modelkb.errors import ModelKBError
from modelkb.importers.runs import Candidate, ImportedRun, ImportReport, import_runs
from modelkb.importers.tfevents import EventFileError, EventLog, is_event_file, read_event_files
from modelkb.metric_names import split_metric
from modelkb.store import Store

SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "validation": "val",
    "val": "val",
    "valid": "val",
    "eval": "val",
    "evaluation": "val",
    "test": "test",
}
_SPLIT_WORDS = {**SPLIT_FOLDERS, "testing": "test"}
NOT_RECORDED = ["seed", "code", "environment", "dependencies", "architecture", "dataset"]
"""What event files never hold."""


class NotALogDirError(ModelKBError, ValueError):
    """The folder holds no TensorBoard event files."""


def find_runs(logdir: Path) -> list[Path]:
    """Run folders under ``logdir`` (``logdir`` itself when its own files are a run), sorted."""
    if not logdir.is_dir():
        raise NotALogDirError(f"{logdir} is not a folder")
    runs = []
    for folder in _event_folders(logdir):
        owner = folder
        while owner != logdir and (
            owner.name.lower() in SPLIT_FOLDERS or _only_hparams_child(owner)
        ):
            owner = owner.parent
        runs.append(owner)
    if not runs:
        raise NotALogDirError(
            f"{logdir} holds no TensorBoard event files (events.out.tfevents.*)",
            hint="Point at the log_dir given to the TensorBoard callback or SummaryWriter.",
        )
    return sorted(set(runs))


def read_run(run_folder: Path, logdir: Path, project: str) -> ImportedRun:
    """The run of ``run_folder``: its scalars by split, its hparams, its time span."""
    splits: dict[str, EventLog] = {}
    hparams: dict[str, Any] = {}
    status = None
    wall_times: list[float] = []
    for folder in [run_folder, *_child_folders(run_folder)]:
        files = [p for p in folder.iterdir() if p.is_file() and is_event_file(p.name)]
        if not files:
            continue
        log = read_event_files(files)
        hparams.update(log.hparams)
        status = log.session_status or status
        wall_times += log.wall_times
        split = SPLIT_FOLDERS.get(folder.name.lower()) if folder != run_folder else None
        if folder != run_folder and split is None and log.hparams:
            split = "hparams"
        splits.setdefault(split or "train", EventLog()).scalars.extend(log.scalars)
    final = {
        name: scalar.value
        for scalar in splits.pop("hparams", EventLog()).scalars
        for name in [scalar.tag.removeprefix("hparam/")]
    }
    history, axis, skipped = _history(splits)
    relative = run_folder.relative_to(logdir).as_posix() if run_folder != logdir else "."
    return ImportedRun(
        tool="tensorboard",
        key=f"tensorboard:{run_folder.resolve()}",  # as import_logdir's candidates
        uri=str(run_folder.resolve()),
        project=project,
        name=run_folder.name if relative != "." else logdir.resolve().name,
        history=history,
        axis=axis,
        params=hparams,
        status=status,
        started=min(wall_times) if wall_times else None,
        ended=max(wall_times) if wall_times else None,
        provenance={"run": relative, "logdir": str(logdir.resolve())},
        final=final,
        not_recorded=list(NOT_RECORDED) + ([] if hparams else ["hyperparameters"]),
        warnings=[
            f"kept the per-epoch tags; {len(skipped)} tag(s) logged per step were not imported: "
            + ", ".join(skipped[:5])
        ]
        if skipped
        else [],
    )


def metric_of(tag: str, split: str) -> tuple[str, str]:
    """``(split, name)`` of a scalar tag found in a folder of ``split``."""
    if tag.startswith("epoch_"):
        return split, tag[len("epoch_") :]
    parts = tag.split("/")
    if len(parts) == 2:
        first, second = parts[0].lower(), parts[1].lower()
        if second in _SPLIT_WORDS:
            return _SPLIT_WORDS[second], parts[0]
        if first in _SPLIT_WORDS:
            return _SPLIT_WORDS[first], parts[1]
    found, base = split_metric(tag)
    return (found if found != "train" else split), base


def _history(splits: dict[str, EventLog]) -> tuple[list[dict[str, Any]], str, list[str]]:
    """History rows by step, the axis (``epoch`` when Keras' ``epoch_*`` tags are there: its other
    per-iteration tags are then left out and returned), and those left-out tags."""
    scalars = [(split, s) for split, log in splits.items() for s in log.scalars]
    per_epoch = any(s.tag.startswith("epoch_") for _, s in scalars)
    skipped = sorted({s.tag for _, s in scalars if per_epoch and not s.tag.startswith("epoch_")})
    rows: dict[int, dict[str, Any]] = {}
    for folder_split, scalar in scalars:
        if scalar.tag in skipped:
            continue
        split, name = metric_of(scalar.tag, folder_split)
        row = rows.setdefault(scalar.step, {})
        row.setdefault(split, {})[name] = scalar.value  # the last value logged at a step wins
    history = []
    for number, step in enumerate(sorted(rows)):
        row = rows[step]
        entry: dict[str, Any] = {"epoch": step if per_epoch and step >= 0 else number}
        if not per_epoch:
            entry["step"] = step
        entry["train"] = row.get("train", {})
        for split in ("val", "test"):
            if row.get(split):
                entry[split] = row[split]
        history.append(entry)
    return history, "epoch" if per_epoch else "step", skipped


def _event_folders(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if any(is_event_file(name) for name in files):
            yield Path(folder)


def _child_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())


def _only_hparams_child(folder: Path) -> bool:
    """A subfolder written by ``SummaryWriter.add_hparams`` (its parent holds the run's events)."""
    parent_has_events = any(p.is_file() and is_event_file(p.name) for p in folder.parent.iterdir())
    if not parent_has_events:
        return False
    files = [p for p in folder.iterdir() if p.is_file() and is_event_file(p.name)]
    try:
        return bool(read_event_files(files).hparams)
    except ModelKBError:
        return False


def import_logdir(store: Store, logdir: Path, *, project: str | None = None) -> ImportReport:
    """Import every run under ``logdir`` not imported before (:func:`import_runs`).

    Raises:
        NotALogDirError: ``logdir`` holds no event files at all.
    """
    logdir = Path(logdir)
    name = project or logdir.resolve().name
    return import_runs(
        store,
        [
            Candidate(
                f"tensorboard:{folder.resolve()}", str(folder), partial(_read, folder, logdir, name)
            )
            for folder in find_runs(logdir)
        ],
    )


def _read(run_folder: Path, logdir: Path, project: str) -> ImportedRun:
    run = read_run(run_folder, logdir, project)
    if not run.history and not run.params:
        raise EventFileError(f"{run_folder}: no scalars or hparams in its event files")
    return run
