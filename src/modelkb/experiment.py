"""The experiment: the one object a user creates; it turns calls into a bundle.

It never lets an error of its own reach the user's training: I/O failures, capture failures and
index failures become warnings in the bundle (and the log), and the run goes on.
"""

from __future__ import annotations

import atexit
import getpass
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any

from modelkb.api_values import (
    architecture_summary,
    check_section,
    dataset_fields,
    hyperparameter_values,
)
from modelkb.artifacts import copy_artifact
from modelkb.bundle import CODE_DIR, LOCK_FILE, SCHEMA_VERSION, BundleWriter, final_from_history
from modelkb.errors import BundleError, ModelKBError
from modelkb.fsutil import atomic_write_bytes
from modelkb.ids import auto_name, new_id, utc_now
from modelkb.metric_names import split_train_val
from modelkb.redact import redact_mapping, redact_text
from modelkb.seeding import seed_frameworks
from modelkb.store import Store, open_store, store_at

if TYPE_CHECKING:
    from modelkb.code_capture import CodeSnapshot

logger = logging.getLogger(__name__)

_HYPERPARAMETER_NAMES = {
    "epochs",
    "batch_size",
    "learning_rate",
    "loss",
    "optimizer",
    "steps_per_epoch",
}


DETERMINISM_EFFECT = (
    "seeded again when training starts, with deterministic kernels: the numbers differ from the "
    "same script run without ModelKB (Experiment(deterministic=False) keeps the framework's "
    "kernels; see docs/reproducibility.md)"
)
"""Recorded in ``determinism.effect`` and shown on the card: adding the two lines changes numbers."""


class Experiment:
    """One training run of a project, recorded as a bundle in a store.

    Args:
        project: Project title; runs with the same title are grouped.
        user: Who runs it (defaults to the login name).
        seed: Seed Python, NumPy, PyTorch and TensorFlow/Keras now and record it. ``None`` records
            that the run is unseeded.
        notes: Free text shown in the catalog.
        store: Store folder or :class:`Store` (default ``$MODELKB_HOME`` or ``./modelkb-store``).
        name: Run name (default: project slug, start time and id suffix).
        tags: Labels for search.
        deterministic: With a seed, also switch on deterministic kernels.
        capture_code: Copy the training source into the bundle.
        capture_environment: Record host, git state, allow-listed env and the lockfile.

    The source, git state, host and installed distributions are read here, when the experiment is
    created (~30 ms), so training itself only pays for what depends on the model and the data.

    Example:
        >>> with Experiment("Digits", "alice", seed=42) as exp:   # doctest: +SKIP
        ...     exp.log_params(epochs=3)
        ...     exp.log_metrics({"loss": 0.3}, epoch=0)
    """

    def __init__(
        self,
        project: str,
        user: str | None = None,
        *,
        seed: int | None = None,
        notes: str | None = None,
        store: str | Path | Store | None = None,
        name: str | None = None,
        tags: list[str] | tuple[str, ...] | None = None,
        deterministic: bool = True,
        capture_code: bool = True,
        capture_environment: bool = True,
    ) -> None:
        if not isinstance(project, str) or not project.strip():
            raise ValueError(f"Expected a non-empty project title. Received: project={project!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"Expected an int seed or None. Received: seed={seed!r}")
        script_seed, seed = (
            seed,
            _seed_override(seed),
        )  # `modelkb reproduce/repeat` re-runs pass a seed
        self.store = open_store(store)
        self.id = new_id()
        self.seed = seed
        self.deterministic = deterministic
        self._seeded: set[str] = set()
        self._capture_code = capture_code
        self._capture_environment = capture_environment
        self._started = False
        self._finished = False
        self._lock = threading.RLock()
        self._code: CodeSnapshot | None = None
        self._lock_text: str | None = None
        self._state_dirty = False
        self._t0 = time.time()
        self._pid = os.getpid()
        self.sealer_pid: int | None = None
        """The background sealer's process id once training returned (:mod:`modelkb.sealing`)."""
        self._history: list[dict[str, Any]] = []
        self._final_override: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "project": project.strip(),
            "name": name or auto_name(project, self.id),
            "user": user or _login_name(),
            "status": "running",
            "created": utc_now(),
            "tags": list(tags or []),
            "seed": seed,
            "hyperparameters": {},
            "warnings": [],
        }
        if notes:
            self.metadata["notes"] = redact_text(notes)
        for key, variable in (("reproduces", "MODELKB_REPRODUCES"), ("group", "MODELKB_GROUP")):
            if os.environ.get(variable):  # links set by `modelkb reproduce` / `modelkb repeat`
                self.metadata[key] = os.environ[variable]
        if seed != script_seed:
            self.warn(
                f"seed {script_seed} replaced by {seed} from MODELKB_SEED_OVERRIDE", source="seed"
            )
        if seed is None:
            self.warn(
                "the run is not seeded: pass Experiment(..., seed=42) to make it reproducible",
                source="seed",
            )
        else:
            self.seed_frameworks()
        self.writer = BundleWriter(self.store.bundle_dir(project, self.id))
        self.writer.identity()  # read now (/proc), not when training starts
        self._capture_now()
        self._staged = False  # other ranks of a distributed launch stage nothing
        if _launcher_rank() == 0:
            with self.guard("store", "writing the training source and lockfile"):
                self.writer.reserve_space()  # first: room for the run's record if the disk fills
                self._write_captured(self.writer.staging)
                self._staged = True
        atexit.register(self._at_exit)

    # -- identity ---------------------------------------------------------------------------------
    @property
    def project(self) -> str:
        return str(self.metadata["project"])

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def path(self) -> Path:
        """The bundle folder."""
        return self.writer.folder

    @property
    def started(self) -> bool:
        """Whether the bundle has been created (by ``start()``, ``with`` or a callback)."""
        return self._started

    @property
    def finished(self) -> bool:
        return self._finished

    def __repr__(self) -> str:
        return f"Experiment(project={self.project!r}, id={self.id!r}, status={self.metadata['status']!r})"

    # -- safety -----------------------------------------------------------------------------------
    @contextmanager
    def guard(self, source: str, what: str) -> Iterator[None]:
        """Run optional work; on failure record a warning instead of raising into training."""
        try:
            yield
        except Exception as err:
            logger.debug(
                "%s failed", what, exc_info=True
            )  # the traceback, for -vv; warn() prints one line
            hint = f". {err.hint}" if isinstance(err, ModelKBError) and err.hint else ""
            self.warn(f"{what} failed: {type(err).__name__}: {err}{hint}", source=source)

    def warn(self, message: str, *, source: str = "modelkb") -> None:
        """Record a problem ModelKB met and survived."""
        entry = {"message": redact_text(str(message)), "source": source, "time": utc_now()}
        with self._lock:
            self.metadata.setdefault("warnings", []).append(entry)
        logger.warning("[%s] %s", source, message)

    def seed_frameworks(self) -> list[str]:
        """(Re)seed generators of frameworks imported since the last call; no-op without a seed."""
        if self.seed is None:
            return []
        seeded = seed_frameworks(self.seed, deterministic=self.deterministic, done=self._seeded)
        self.metadata["determinism"] = {
            "seeded": sorted(self._seeded),
            "deterministic_ops": self.deterministic,
            "effect": DETERMINISM_EFFECT,
        }
        return seeded

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Experiment:
        """Create the bundle and write what was captured so far; idempotent. Called by callbacks and ``with``."""
        if self._started:
            return self
        self._started = True
        self._t0 = time.time()
        with self.guard("store", "creating the bundle folder"):
            self.writer.open()  # code/ and requirements.lock, staged at creation, move into place
        if not self._staged:
            with self.guard("store", "writing the training source and lockfile"):
                self._write_captured(self.path)
        self._save_state()  # run.json last, with everything recorded so far
        return self

    def _capture_now(self) -> None:
        """Read the training source, the context and the installed distributions (~30 ms).

        Done when the experiment is created, before training, so none of it is charged to
        ``fit``; the source and lockfile are written right after (see :meth:`_write_captured`).
        """
        if self._capture_code:
            with self.guard("code", "reading the training source"):
                from modelkb.code_capture import collect_code

                self._code = collect_code()
                self.metadata["code"] = dict(self._code.info)
        if self._capture_environment:
            with self.guard("context", "capturing the environment"):
                from modelkb.context import capture_context

                context, problems = capture_context()
                self.metadata["context"] = context
                for problem in problems:
                    self.warn(problem, source="context")
            with self.guard("lockfile", "reading the installed distributions"):
                from modelkb.lockfile import installed_distributions, render_lockfile

                self._lock_text = render_lockfile(installed_distributions())

    def _write_captured(self, folder: Path) -> None:
        """Write the training source and the lockfile read at creation into ``folder``.

        At creation ``folder`` is the writer's staging folder: ``start()`` then makes the bundle
        folder with one rename, so training pays for none of these writes, and a run killed after
        it started still has them.
        """
        if self._code is not None:
            from modelkb.code_capture import write_code

            self.metadata["code"] = write_code(self._code, folder / CODE_DIR)
        if self._lock_text is not None:
            atomic_write_bytes(folder / LOCK_FILE, self._lock_text.encode("utf-8"), durable=False)

    @property
    def code_snapshot(self) -> CodeSnapshot | None:
        """The training source captured when the experiment was created (``None`` if not captured)."""
        return self._code

    def _refresh_notebook_cells(self) -> None:
        """In a notebook, cells run after the experiment was created belong to the run too."""
        if self._code is None or not self._code.info.get("notebook"):
            return
        with self.guard("code", "capturing the notebook cells"):
            from modelkb.code_capture import collect_code, write_code

            self._code = collect_code()
            self.metadata["code"] = write_code(self._code, self.path / CODE_DIR)

    def _save_state(self) -> None:
        with self.guard("store", "writing run.json"), self._lock:
            self._state_dirty = False
            self.writer.write_run_state(self.metadata)

    def finish(
        self, status: str = "completed", *, error: str | BaseException | None = None
    ) -> dict[str, Any]:
        """Seal the bundle (idempotent) and index it; returns the final metadata."""
        if self._finished:
            return self.metadata
        if not self.metadata.get("sealing"):
            self._record_end(status, error)
        self._finished = True
        self.metadata.pop("sealing", None)
        with self.guard("store", "sealing the bundle"), self._lock:
            self.metadata = self.writer.seal(self.metadata)
            self.store.record(self.path)
        with self.guard("store", "uploading the run to its team store"):
            self.store.after_sealed(self.path)
        return self.metadata

    def mark_ended(self, status: str, *, sealing: str) -> None:
        """Record the run's end in ``run.json`` with ``sealing`` set: its work goes on elsewhere
        (:mod:`modelkb.sealing`) and :meth:`finish` seals it later."""
        self._record_end(status, None)
        self.metadata["sealing"] = sealing
        self._save_state()
        self.store.stop_live(self.path)  # no uploading thread may hold a lock across a fork

    def handed_over(self, sealer_pid: int, *, write_state: bool = False) -> None:
        """In the training process: the sealer ``sealer_pid`` finishes the run from here on
        (``write_state``: ``run.json`` is rewritten to name it, for a sealer that does not)."""
        if write_state:
            with self.guard("store", "writing run.json"), self._lock:
                self.writer.write_run_state(self.metadata, pid=sealer_pid)
        self.sealer_pid = sealer_pid
        self._finished = True

    @classmethod
    def reopen(cls, folder: str | Path) -> Experiment:
        """The experiment of a run that ended and waits for its sealer (``run.json`` with
        ``sealing`` set), for that sealer to finish it: nothing is captured or seeded again."""
        from modelkb.bundle import ended_unsealed, read_bundle

        folder = Path(folder).resolve()
        bundle = read_bundle(folder, validate=False)
        if bundle.sealed or not ended_unsealed(bundle.metadata):
            raise BundleError(f"{folder} is not a run waiting to be sealed")
        self = cls.__new__(cls)
        self.store = store_at(folder.parent.parent)  # <store>/<project>/<id>
        self.id, self.seed = bundle.id, bundle.metadata.get("seed")
        self.deterministic = bool(
            (bundle.metadata.get("determinism") or {}).get("deterministic_ops")
        )
        self._seeded, self._capture_code, self._capture_environment = set(), False, False
        self._started, self._finished, self._staged = True, False, True
        self._lock = threading.RLock()
        self._code, self._lock_text, self._state_dirty = None, None, False
        self._t0, self._pid, self.sealer_pid = time.time(), os.getpid(), None
        self._history = list((bundle.metadata.get("metrics") or {}).get("history") or [])
        self._final_override = {}
        self.metadata = bundle.metadata
        self.writer = BundleWriter(folder)
        return self

    def adopt_after_fork(self) -> None:
        """In a forked sealer: take the run over (``run.json`` names this process; a fresh index)."""
        self._pid = os.getpid()
        self.store = self.store.reopened()
        self._save_state()

    def _record_end(self, status: str, error: str | BaseException | None) -> None:
        self.start()
        self._refresh_notebook_cells()
        if status not in ("completed", "failed", "interrupted"):
            self.warn(f"unknown status {status!r}; recorded as 'completed'")
            status = "completed"
        self.metadata["status"] = status
        if error is not None:
            text = (
                error
                if isinstance(error, str)
                else "".join(traceback.format_exception_only(type(error), error)).strip()
            )
            self.metadata["error"] = redact_text(text)
        self.metadata["finished"] = utc_now()
        self.metadata["duration_s"] = round(time.time() - self._t0, 3)
        metrics = self.metadata.setdefault("metrics", {})
        metrics["history"] = list(self._history)
        metrics["final"] = {**final_from_history(self._history), **self._final_override}
        self._record_epochs_run()
        peak_rss_mb = _peak_rss_mb()
        if peak_rss_mb is not None:
            self.metadata["resources"] = {"peak_rss_mb": peak_rss_mb}

    def wait_sealed(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for a background sealer (:mod:`modelkb.sealing`) and return the sealed metadata
        (the metadata as this process knows it when nothing seals in the background)."""
        if self.sealer_pid is None:
            return self.metadata
        from modelkb.bundle import wait_sealed

        self.metadata = wait_sealed(self.path, timeout=timeout)
        return self.metadata

    def _record_epochs_run(self) -> None:
        """``hyperparameters.epochs_run`` when training ran fewer epochs than asked (EarlyStopping)."""
        asked = (self.metadata.get("hyperparameters") or {}).get("epochs")
        ran = len({entry.get("epoch") for entry in self._history})
        if isinstance(asked, int) and not isinstance(asked, bool) and 0 < ran < asked:
            self.metadata["hyperparameters"]["epochs_run"] = ran

    def _at_exit(self) -> None:
        if os.getpid() != self._pid:
            return  # a forked child exiting: the run belongs to the parent
        if not self._started:
            self.writer.discard_staging()  # created but never trained: leave nothing behind
        elif not self._finished:
            self.warn("the process exited before the run was finished", source="experiment")
            self.finish("interrupted")

    def __enter__(self) -> Experiment:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            self.finish("completed")
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("interrupted", error=exc)
        else:
            self.finish("failed", error=exc)
        return False  # never swallow the user's exception

    # -- recording --------------------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any] | None = None, **more: Any) -> None:
        """Record user hyperparameters (secrets redacted); well-known names also fill the summary."""
        merged = {**(params or {}), **more}
        with self.guard("params", "recording parameters"):
            clean = redact_mapping(_jsonable(merged))
            with self._lock:
                self._merge_params(clean)
            self._save_state_if_started()

    def _merge_params(self, clean: dict[str, Any]) -> None:
        hyper = self.metadata.setdefault("hyperparameters", {})
        hyper.setdefault("params", {}).update(clean)
        for key, value in clean.items():
            key = "learning_rate" if key == "lr" else key
            if key in _HYPERPARAMETER_NAMES and key not in hyper:
                typed = _typed_hyperparameter(key, value)
                if typed is not None:
                    hyper[key] = typed

    def set_hyperparameters(self, **values: Any) -> None:
        """Record captured hyperparameters (used by the framework callbacks)."""
        clean = self._in_bundle_form(
            "params", "recording hyperparameters", values, hyperparameter_values
        )
        if clean is None:
            return
        with self.guard("params", "recording hyperparameters"):
            with self._lock:
                self.metadata.setdefault("hyperparameters", {}).update(clean)
            self._save_state_if_started()

    def set_framework(
        self, name: str, version: str | None, *, backend: str | None = None, **versions: str
    ) -> None:
        """Record the framework the run trains with."""
        entry: dict[str, Any] = {"name": name, "version": version, "versions": dict(versions)}
        if backend:
            entry["backend"] = backend
        self.metadata["framework"] = entry

    def set_architecture(self, architecture: Mapping[str, Any]) -> None:
        """Record the architecture summary (layers, parameter counts, inputs/outputs)."""
        clean = self._in_bundle_form(
            "architecture", "recording the architecture", architecture, architecture_summary
        )
        if clean is None:
            return
        with self.guard("architecture", "recording the architecture"):
            with self._lock:
                self.metadata["architecture"] = clean
            self._save_state_if_started()

    def set_dataset(self, **fields: Any) -> None:
        """Record or amend the dataset description (kind, shapes, samples, preprocessing, ...)."""
        clean = self._in_bundle_form("dataset", "recording the dataset", fields, dataset_fields)
        if clean is None:
            return
        with self.guard("dataset", "recording the dataset"):
            with self._lock:
                self.metadata.setdefault("dataset", {}).update(clean)
            self._save_state_if_started()

    def record_onnx(self, report: Mapping[str, Any]) -> None:
        """Record the ``onnx`` section: the exported model and how its check went (used by the collectors).

        Args:
            report: ``path`` (the file in the bundle, e.g. ``"model.onnx"``) and what the check
                against the framework found: ``checked_on`` (what ran it; ``None`` when it did not
                run), ``checked_samples`` (rows compared), ``max_abs_diff``, ``opset``,
                ``ir_version``, ``batch_dynamic``, ``inputs``/``outputs``; a collector may add more
                (``exporter``, ``export_s``, ...).

        A report the bundle format cannot hold is not recorded: it becomes a warning, as any
        failure of optional work does.
        """
        with self.guard("onnx", "recording the ONNX check"):
            section = _onnx_section(_jsonable(report))
            with self._lock:
                self.metadata["onnx"] = section
            self._save_state_if_started()

    def log_epoch(
        self,
        epoch: int,
        train: Mapping[str, Any] | None = None,
        val: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        """Append one finished epoch to ``metrics.jsonl`` (flushed: survives a kill)."""
        with self.guard("metrics", "recording epoch metrics"):
            self.start()
            entry: dict[str, Any] = {
                "epoch": int(epoch),
                "train": _numbers(train),
                "val": _numbers(val),
            }
            if not entry["val"]:
                del entry["val"]
            entry.update(_jsonable(extra))
            self._history.append(entry)
            self.writer.append_epoch(entry)
            if self._state_dirty:
                self._save_state()
            self.store.epoch_ended(self.path)

    def log_metrics(self, metrics: Mapping[str, Any], *, epoch: int | None = None) -> None:
        """Record metrics per epoch, or final ones without ``epoch``.

        Per epoch, ``val_``/``valid_``/``validation_`` names go to validation, the rest to training.
        """
        if epoch is None:
            with self.guard("metrics", "recording final metrics"):
                self._final_override.update(_numbers(metrics))
            return
        self.log_epoch(epoch, *split_train_val(metrics))

    def log_artifact(self, path: str | Path, name: str | None = None) -> Path | None:
        """Copy a file or folder into the bundle's ``artifacts/``; returns the copy's path.

        The bundle is shared, so the copy leaves secrets out (see ``modelkb.artifacts``): links out
        of the folder and files such as ``.env`` or ``*.pem`` are skipped, text files are redacted;
        each is named in the run's warnings.
        """
        with self.guard("artifact", f"copying artifact {path}"):
            source = Path(path)
            relative = PurePosixPath(name or source.name)
            if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                raise ValueError(
                    f"Expected the artifact name to be a relative path inside artifacts/. Received: name={name!r}"
                )
            self.start()
            target = self.path / "artifacts" / relative
            report = copy_artifact(source, target)
            for message in report.messages():
                self.warn(message, source="artifact")
            return target
        return None

    def log_model(
        self,
        model: Any,
        example_input: Any = None,
        *,
        optimizer: Any = None,
        criterion: Any = None,
        init_args: Any = None,
    ) -> None:
        """Register a model trained by your own loop: architecture, native weights and a checked ONNX.

        The one call of the manual API that makes a run servable, as the callbacks do at the end
        of training. ``model`` is a PyTorch ``nn.Module`` or a Keras model; ``example_input`` a
        batch of inputs (a few rows) used to trace the export and check its parity. For PyTorch,
        ``optimizer`` and ``criterion`` are recorded when given, and ``init_args`` lets
        ``reproduce`` rebuild the module.

        Raises:
            TypeError: ``model`` is neither a PyTorch module nor a Keras model.
        """
        framework = _model_framework(model)
        if framework is None:
            raise TypeError(
                "Expected a torch.nn.Module or a Keras model. "
                f"Received: model of type {type(model).__module__}.{type(model).__qualname__}"
            )
        with self.guard("model", "registering the model"):
            self.start()
            if framework == "keras":
                from modelkb.collector.keras import log_keras_model

                log_keras_model(self, model, example_input)
            else:
                from modelkb.collector.torch.capture import log_torch_model

                log_torch_model(
                    self,
                    model,
                    example_input,
                    optimizer=optimizer,
                    criterion=criterion,
                    init_args=init_args,
                )

    def artifact_path(self, relpath: str) -> Path:
        """Where a collector should write a file of the bundle (e.g. ``model.onnx``)."""
        self.start()
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _in_bundle_form(
        self, source: str, what: str, values: Any, form: Callable[[Any], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """``values`` JSON-friendly and redacted, then in the bundle's form by ``form``.

        A failure of ModelKB's own (an object that cannot be converted) becomes a warning and None.
        ``form`` raises ValueError naming the field for a value the schema cannot hold: the caller
        passed it, so it is refused here, at the call, never written into a bundle that no reader
        accepts. The framework callbacks call the setters inside ``guard``, so training goes on.
        """
        clean = None
        with self.guard(source, what):
            clean = redact_mapping(_jsonable(values))
        return None if clean is None else form(clean)

    def _save_state_if_started(self) -> None:
        """Mark run.json stale; it is rewritten with the next epoch (one write, not one per call)."""
        if self._started and not self._finished:
            self._state_dirty = True


def _onnx_section(report: Any) -> dict[str, Any]:
    """``record_onnx``'s report in the bundle's form; a ValueError names what is not."""
    if (
        not isinstance(report, dict)
        or not isinstance(report.get("path"), str)
        or not report["path"]
    ):
        raise ValueError(
            "Expected an ONNX report naming the model file, e.g. {'path': 'model.onnx', ...}. "
            f"Received: report={report!r}"
        )
    samples = report.get("checked_samples")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int)):
        raise ValueError(
            f"Expected onnx.checked_samples to be a number of rows. Received: {samples!r}"
        )
    check_section("onnx", report)
    return report


def _model_framework(model: Any) -> str | None:
    """``"keras"`` or ``"torch"`` by the model's classes (Keras first: on the torch backend a Keras
    model is also an ``nn.Module``); no framework is imported here."""
    modules = [cls.__module__ for cls in type(model).__mro__]
    if any(name.startswith(("keras.", "tf_keras.")) for name in modules):
        return "keras"
    if any(name.startswith("torch.nn") for name in modules):
        return "torch"
    return None


def _typed_hyperparameter(key: str, value: Any) -> Any:
    """A well-known hyperparameter in the type the bundle format gives it, or None if it is not."""
    try:
        if key in ("epochs", "batch_size", "steps_per_epoch"):
            return (
                int(value) if not isinstance(value, bool) and float(value) == int(value) else None
            )
        if key == "learning_rate":
            return float(value)
    except (TypeError, ValueError):
        return None
    if key == "optimizer":
        return {"name": str(value), "config": {}} if isinstance(value, str) else None
    return value if isinstance(value, str) else None


def _seed_override(seed: int | None) -> int | None:
    """``$MODELKB_SEED_OVERRIDE`` (an int, or ``none`` for an unseeded run) if set, else ``seed``."""
    text = os.environ.get("MODELKB_SEED_OVERRIDE", "").strip()
    if not text:
        return seed
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError as err:
        raise ValueError(
            f"Expected an int or 'none' in MODELKB_SEED_OVERRIDE. Received: {text!r}"
        ) from err


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB (``None`` where unsupported)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(
        peak / (2**20 if sys.platform == "darwin" else 2**10), 1
    )  # bytes on macOS, KiB on Linux


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


_RANK_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "SLURM_PROCID",
    "PMI_RANK",
    "OMPI_COMM_WORLD_RANK",
)


def _launcher_rank() -> int:
    """This process's rank as a distributed launcher (torchrun, Lightning, SLURM, MPI) set it; 0 alone."""
    for variable in _RANK_VARIABLES:
        value = os.environ.get(variable, "").strip()
        if value.isdigit() and int(value) != 0:
            return int(value)
    return 0


def _jsonable(value: Any) -> Any:
    """A JSON-friendly copy: numpy scalars to Python numbers, unknown objects to ``str``."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        try:
            return _jsonable(tolist())
        except (TypeError, ValueError):
            pass
    return str(value)


def _numbers(metrics: Mapping[str, Any] | None) -> dict[str, float | None]:
    """Metric values as floats (``None`` for what is not a number)."""
    out: dict[str, float | None] = {}
    for key, value in (metrics or {}).items():
        value = _jsonable(value)
        try:
            out[str(key)] = (
                float(value)
                if not isinstance(value, (list, dict, str)) and value is not None
                else None
            )
        except (TypeError, ValueError):
            out[str(key)] = None
    return {k: v for k, v in out.items() if v is not None}
