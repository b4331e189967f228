"""``modelkb import mlflow [STORE]``: MLflow runs become bundles, read without MLflow installed.

Both MLflow backends are read directly: the file store (``mlruns/<experiment>/<run>/meta.yaml``,
``params/``, ``metrics/`` lines ``timestamp value step``, ``tags/``, ``artifacts/``; MLflow 3's
logged models under ``<experiment>/models/<model id>/``) and the SQLite backend (``experiments``,
``runs``, ``params``, ``metrics``, ``tags``, ``logged_models`` tables), in the MLflow 2.x and 3.x
layouts. Each run keeps its MLflow id (``imported.key = "mlflow:<run id>"``), so importing again
never makes a second bundle.

Files are copied, never loaded: a logged model's files go to ``mlflow_model/`` (a Keras model or an
ONNX model also as the bundle's ``model.keras`` / ``model.onnx``); pickles (PyTorch ``.pth``,
scikit-learn, cloudpickle) are copied and listed in ``imported.untrusted``. Artifacts are copied
with :func:`modelkb.artifacts.copy_artifact` (no links followed, secret files refused) and only
from inside the tracking store's own folder.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from modelkb.errors import ModelKBError
from modelkb.importers.runs import Candidate, ImportedRun, ImportReport, import_runs
from modelkb.metric_names import split_metric
from modelkb.store import Store

STATUSES = {
    "1": "interrupted",  # RUNNING when it was read: it never ended
    "2": "interrupted",  # SCHEDULED
    "3": "completed",
    "4": "failed",
    "5": "interrupted",  # KILLED
    "RUNNING": "interrupted",
    "SCHEDULED": "interrupted",
    "FINISHED": "completed",
    "FAILED": "failed",
    "KILLED": "interrupted",
}
UNTRUSTED_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".cloudpickle", ".dill")
NOT_RECORDED = ["seed", "code", "environment", "architecture", "dataset"]
"""What MLflow does not record the way ModelKB does (a dependency list comes with a logged model)."""
ENVIRONMENT_FILES = ("requirements.txt", "python_env.yaml", "conda.yaml")


class NotATrackingStoreError(ModelKBError, ValueError):
    """The path is neither an MLflow file store nor an MLflow SQLite database."""


@dataclass
class MlflowRun:
    """One MLflow run as either backend stores it."""

    run_id: str
    name: str
    experiment_id: str
    experiment: str
    status: str
    start_ms: int | None
    end_ms: int | None
    user: str | None
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, list[tuple[int, int, float]]]  # key -> [(step, timestamp, value)]
    artifacts: Path | None
    models: list[Path] = field(default_factory=list)


def import_tracking_store(
    store: Store, source: str | Path, *, experiments: list[str] | None = None
) -> ImportReport:
    """Import every run of ``source`` (an ``mlruns`` folder, ``file:`` URI, ``sqlite:///`` URI or
    ``.db`` file) not imported before; ``experiments`` limits it to those names.

    Raises:
        NotATrackingStoreError: ``source`` is not an MLflow tracking store.
    """
    reader = open_tracking_store(source)
    return import_runs(
        store,
        (
            run
            if isinstance(run, str)
            else Candidate(
                f"mlflow:{run.run_id}", f"run {run.run_id}", partial(to_imported, run, str(source))
            )
            for run in reader
            if isinstance(run, str) or not experiments or run.experiment in experiments
        ),
    )


def open_tracking_store(source: str | Path) -> Iterator[MlflowRun | str]:
    """The runs of a tracking store (a ``str`` for a run that cannot be read: one line)."""
    text = str(source)
    if text.startswith("sqlite:///"):
        return _sqlite_runs(Path(unquote(text[len("sqlite:///") :])))
    path = Path(unquote(urlparse(text).path) if text.startswith("file:") else text)
    if path.is_file() and _is_sqlite(path):
        return _sqlite_runs(path)
    if _experiment_folders(path):
        return _file_store_runs(path)
    raise NotATrackingStoreError(
        f"{source} is not an MLflow tracking store (no mlruns/<experiment>/meta.yaml, not an "
        "MLflow SQLite database)",
        hint="Give the mlruns folder or the sqlite:///path/to/mlflow.db URI MLflow wrote to.",
    )


# -- file store -------------------------------------------------------------------------------------
def _experiment_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "meta.yaml").is_file()
    )


def _file_store_runs(root: Path) -> Iterator[MlflowRun | str]:
    for experiment in _experiment_folders(root):
        try:
            meta = _yaml(experiment / "meta.yaml")
        except ValueError as err:
            yield f"{experiment}: {err}"
            continue
        models = _file_store_models(experiment)
        for folder in sorted(p for p in experiment.iterdir() if p.is_dir()):
            if (
                folder.name in ("models", "datasets", "traces")
                or not (folder / "meta.yaml").is_file()
            ):
                continue
            try:
                yield _file_store_run(folder, meta, models, root)
            except (ValueError, OSError) as err:
                yield f"{folder}: {err}"


def _file_store_run(
    folder: Path, experiment: dict[str, Any], models: dict[str, list[Path]], root: Path
) -> MlflowRun:
    meta = _yaml(folder / "meta.yaml")
    if meta.get("lifecycle_stage") == "deleted":
        raise ValueError("the run is deleted in MLflow")
    run_id = str(meta.get("run_id") or meta.get("run_uuid") or "")
    if not run_id or run_id != folder.name:
        raise ValueError("meta.yaml does not name this run")
    metrics: dict[str, list[tuple[int, int, float]]] = {}
    for key, path in _keyed_files(folder / "metrics"):
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split()
            if len(parts) not in (2, 3):
                raise ValueError(f"metrics/{key} line {number} is not 'timestamp value step'")
            rows.append((int(parts[2]) if len(parts) == 3 else 0, int(parts[0]), float(parts[1])))
        metrics[key] = rows
    artifacts = _local_path(meta.get("artifact_uri"), root, relative_to=folder)
    return MlflowRun(
        run_id=run_id,
        name=str(meta.get("run_name") or run_id),
        experiment_id=str(experiment.get("experiment_id")),
        experiment=str(experiment.get("name")),
        status=str(meta.get("status")),
        start_ms=meta.get("start_time"),
        end_ms=meta.get("end_time"),
        user=meta.get("user_id"),
        params={k: p.read_text(encoding="utf-8") for k, p in _keyed_files(folder / "params")},
        tags={k: p.read_text(encoding="utf-8") for k, p in _keyed_files(folder / "tags")},
        metrics=metrics,
        artifacts=artifacts,
        models=models.get(run_id, []),
    )


def _file_store_models(experiment: Path) -> dict[str, list[Path]]:
    """MLflow 3 logged models of an experiment, by the run that logged them."""
    found: dict[str, list[Path]] = {}
    for folder in sorted((experiment / "models").glob("*/meta.yaml")):
        try:
            meta = _yaml(folder)
        except ValueError:
            continue
        artifacts = folder.parent / "artifacts"
        if meta.get("source_run_id") and artifacts.is_dir():
            found.setdefault(str(meta["source_run_id"]), []).append(artifacts)
    return found


def _keyed_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """``(key, file)``: keys with ``/`` are nested folders; links are never followed."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise ValueError(f"{path.relative_to(folder.parent)} is a link")
        if path.is_file():
            yield path.relative_to(folder).as_posix(), path


def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"{path.name} is not YAML: {str(err).splitlines()[0]}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} does not hold a mapping")
    return data


# -- SQLite -------------------------------------------------------------------------------------------
def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(16) == b"SQLite format 3\0"


def _sqlite_runs(path: Path) -> Iterator[MlflowRun | str]:
    if not path.is_file() or not _is_sqlite(path):
        raise NotATrackingStoreError(f"{path} is not an SQLite database")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    except sqlite3.Error as err:
        raise NotATrackingStoreError(f"{path}: {err}") from err
    if not {"experiments", "runs", "params", "metrics", "tags"} <= tables:
        db.close()
        raise NotATrackingStoreError(f"{path} is an SQLite database but not MLflow's")
    return _sqlite_rows(db, path, tables)


def _sqlite_rows(db: sqlite3.Connection, path: Path, tables: set[str]) -> Iterator[MlflowRun | str]:
    try:
        experiments = dict(db.execute("select experiment_id, name from experiments"))
        models: dict[str, list[Path]] = {}
        if "logged_models" in tables:
            for run_id, location in db.execute(
                "select source_run_id, artifact_location from logged_models"
            ):
                local = _local_path(location, path.parent)
                if run_id and local is not None and local.is_dir():
                    models.setdefault(str(run_id), []).append(local)
        runs = db.execute(
            "select run_uuid, name, experiment_id, status, start_time, end_time, user_id, "
            "artifact_uri, lifecycle_stage from runs order by start_time"
        ).fetchall()
        for run_id, name, exp_id, status, start, end, user, artifact_uri, stage in runs:
            if stage == "deleted":
                continue
            try:
                metrics: dict[str, list[tuple[int, int, float]]] = {}
                for key, value, timestamp, step, is_nan in db.execute(
                    "select key, value, timestamp, step, is_nan from metrics where run_uuid = ? "
                    "order by step, timestamp",
                    (run_id,),
                ):
                    metrics.setdefault(key, []).append(
                        (int(step), int(timestamp), float("nan") if is_nan else float(value))
                    )
                yield MlflowRun(
                    run_id=str(run_id),
                    name=str(name or run_id),
                    experiment_id=str(exp_id),
                    experiment=str(experiments.get(exp_id, exp_id)),
                    status=str(status),
                    start_ms=start,
                    end_ms=end,
                    user=user,
                    params=dict(
                        db.execute("select key, value from params where run_uuid = ?", (run_id,))
                    ),
                    tags=dict(
                        db.execute("select key, value from tags where run_uuid = ?", (run_id,))
                    ),
                    metrics=metrics,
                    artifacts=_local_path(artifact_uri, path.parent),
                    models=models.get(str(run_id), []),
                )
            except (sqlite3.Error, TypeError, ValueError) as err:
                yield f"run {run_id}: {err}"
    except sqlite3.Error as err:
        yield f"{path}: {err}"
    finally:
        db.close()


def _local_path(uri: Any, root: Path, *, relative_to: Path | None = None) -> Path | None:
    """A local artifact location inside ``root`` (the tracking store's folder), else ``None``; a
    relative one is taken from ``relative_to`` (the run's folder), else from ``root``."""
    if not isinstance(uri, str) or not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return None  # s3://, dbfs:/, mlflow-artifacts:/ ...: not on this disk
    path = Path(unquote(parsed.path if parsed.scheme else uri))
    if not path.is_absolute():
        path = (relative_to or root) / path
    resolved, base = path.resolve(), root.resolve()
    if resolved != base and base not in resolved.parents:
        return None
    return resolved


# -- to a ModelKB run ----------------------------------------------------------------------------------
def to_imported(run: MlflowRun, source: str) -> ImportedRun:
    """The tool-neutral run: history by epoch (where an ``epoch`` metric maps steps) or by step."""
    history, axis = _history(run.metrics)
    user_tags = {k: v for k, v in run.tags.items() if not k.startswith("mlflow.")}
    untrusted: list[str] = []
    files, lockfile = _files(run, untrusted)
    provenance: dict[str, Any] = {
        "run_id": run.run_id,
        "run_uri": f"runs:/{run.run_id}",
        "experiment_id": run.experiment_id,
        "experiment": run.experiment,
        "tracking_uri": source,
        "mlflow_status": run.status,
        "tags": user_tags,
        "source": {k: v for k, v in run.tags.items() if k.startswith("mlflow.source.")},
    }
    if run.user:
        provenance["user"] = run.user
    if untrusted:
        provenance["untrusted"] = untrusted
    warnings = []
    if untrusted:
        warnings.append(
            f"{len(untrusted)} pickle file(s) copied from MLflow and never loaded: "
            + ", ".join(untrusted[:5])
        )
    return ImportedRun(
        tool="mlflow",
        key=f"mlflow:{run.run_id}",
        uri=f"{source}#runs/{run.run_id}",
        project=run.experiment,
        name=run.name,
        history=history,
        axis=axis,
        params=dict(run.params),
        status=STATUSES.get(run.status),
        started=run.start_ms / 1000 if run.start_ms else None,
        ended=run.end_ms / 1000 if run.end_ms else None,
        tags=[f"{k}={v}" for k, v in sorted(user_tags.items())],
        provenance=provenance,
        not_recorded=list(NOT_RECORDED) + ([] if lockfile else ["dependencies"]),
        warnings=warnings,
        files=files,
        lockfile=lockfile,
    )


def _history(metrics: dict[str, list[tuple[int, int, float]]]) -> tuple[list[dict[str, Any]], str]:
    epochs = {step: int(value) for step, _, value in metrics.get("epoch", []) if value == value}
    axis = "epoch" if epochs else "step"
    rows: dict[int, dict[str, dict[str, float | None]]] = {}
    names: dict[tuple[str, str], str] = {}
    for key, points in sorted(metrics.items()):
        if key == "epoch" and epochs:
            continue
        split, base = split_metric(key)
        if names.setdefault((split, base), key) != key:  # val_loss and validation_loss both
            split, base = "train", key
        for step, _, value in points:
            at = epochs.get(step, _epoch_before(epochs, step)) if epochs else step
            row = rows.setdefault(at, {})
            row.setdefault(split, {})[base] = value if value == value else None
    history = []
    for number, at in enumerate(sorted(rows)):
        entry: dict[str, Any] = {"epoch": at if epochs else number}
        if not epochs:
            entry["step"] = at
        entry["train"] = rows[at].get("train", {})
        if rows[at].get("val"):
            entry["val"] = rows[at]["val"]
        history.append(entry)
    return history, axis


def _epoch_before(epochs: dict[int, int], step: int) -> int:
    """The epoch of the latest step at or before ``step`` that logged one (0 before any)."""
    earlier = [s for s in epochs if s <= step]
    return epochs[max(earlier)] if earlier else 0


def _files(run: MlflowRun, untrusted: list[str]) -> tuple[list[tuple[Path, str]], str | None]:
    """``(source, path in the bundle)`` to copy, and the lockfile text (from the model's or the
    run's ``requirements.txt``)."""
    files: list[tuple[Path, str]] = []
    lockfile = None
    models = run.models or _artifact_models(run.artifacts)
    for index, model in enumerate(models):
        target = "mlflow_model" if index == 0 else f"mlflow_model_{index}"
        files.append((model, target))
        flavors = _flavors(model)
        if index == 0 and "keras" in flavors:
            found = sorted(model.rglob("*.keras"))
            if found:
                files.append((found[0], "model.keras"))
        if index == 0 and "onnx" in flavors:
            found = sorted(model.rglob("*.onnx"))
            if found:
                files.append((found[0], "model.onnx"))
        untrusted += [
            f"{target}/{p.relative_to(model).as_posix()}"
            for p in sorted(model.rglob("*"))
            if p.is_file() and p.suffix.lower() in UNTRUSTED_SUFFIXES
        ]
        if lockfile is None and (model / "requirements.txt").is_file():
            lockfile = (model / "requirements.txt").read_text(encoding="utf-8")
    if run.artifacts is not None and run.artifacts.is_dir() and any(run.artifacts.iterdir()):
        files.append((run.artifacts, "artifacts"))
        untrusted += [
            f"artifacts/{p.relative_to(run.artifacts).as_posix()}"
            for p in sorted(run.artifacts.rglob("*"))
            if p.is_file() and p.suffix.lower() in UNTRUSTED_SUFFIXES
        ]
        if lockfile is None and (run.artifacts / "requirements.txt").is_file():
            lockfile = (run.artifacts / "requirements.txt").read_text(encoding="utf-8")
    return files, lockfile


def _artifact_models(artifacts: Path | None) -> list[Path]:
    """MLflow 2.x logged models: folders of the run's artifacts holding an ``MLmodel`` file."""
    if artifacts is None or not artifacts.is_dir():
        return []
    return sorted(p.parent for p in artifacts.rglob("MLmodel") if not p.is_symlink())


def _flavors(model: Path) -> set[str]:
    try:
        return set((_yaml(model / "MLmodel").get("flavors") or {}).keys())
    except (ValueError, OSError):
        return set()
