"""Reading and writing experiment bundles (format v1, see docs/bundle-format.md).

A bundle is a folder. While a run is going, it holds ``run.json`` (partial metadata and the
writer's pid) and ``metrics.jsonl``; sealing writes the model card, lists every artifact with its
sha256 and writes ``metadata.json`` last, so a bundle is complete exactly when that file exists.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from modelkb.errors import BundleError, BundleSchemaError, DiskFullError
from modelkb.example_inputs import EXAMPLES_FILE
from modelkb.fsutil import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    is_temp_file,
    jsonl_line,
    sha256_file,
)
from modelkb.ids import utc_now

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.jsonl"
RUN_STATE_FILE = "run.json"
CARD_FILE = "README.md"
LOCK_FILE = "requirements.lock"
CODE_DIR = "code"
STATUSES = ("running", "completed", "failed", "interrupted")
SEALING_IN_PROGRESS = "in progress"
"""``run.json``'s ``sealing`` while a background sealer finishes a run that ended (:mod:`modelkb.sealing`)."""
SEAL_WAIT_S = 120.0
"""How long a reader that needs the sealed bundle (``package``, ``push``, the catalog) waits for it."""
RESERVE_FILE = ".disk-reserve.tmp"
"""Space set aside when a run is created, given back when the disk fills (a temp name: never an artifact)."""
RESERVE_BYTES = 64 * 1024
"""Enough for ``run.json``, the epochs and ``metadata.json`` of a typical run once the disk is full."""
_T = TypeVar("_T")

_ARTIFACT_KINDS = {
    ".onnx": "onnx",
    ".keras": "weights",
    ".safetensors": "weights",
    ".h5": "weights",
    ".lock": "lockfile",
    ".jsonl": "metrics",
}


@dataclass
class Bundle:
    """One experiment bundle as read from disk.

    Attributes:
        path: The bundle folder.
        metadata: The parsed ``metadata.json`` (or, for an unsealed run, the partial metadata from
            ``run.json`` with ``status`` set to ``running`` or ``interrupted``).
        sealed: Whether ``metadata.json`` exists.
        warnings: Problems met while reading (e.g. a torn last line of ``metrics.jsonl``).
        live: An unsealed run whose writing process is alive: training, or a background sealer
            (``metadata["sealing"]`` set, :mod:`modelkb.sealing`) finishing a run that ended.
    """

    path: Path
    metadata: dict[str, Any]
    sealed: bool
    warnings: list[str] = field(default_factory=list)
    live: bool = False

    @property
    def id(self) -> str:
        return str(self.metadata["id"])

    @property
    def project(self) -> str:
        return str(self.metadata["project"])

    @property
    def status(self) -> str:
        return str(self.metadata.get("status", "running"))

    def file(self, name: str) -> Path:
        """Path of a file inside the bundle (which may not exist)."""
        return self.path / name


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Read ``metrics.jsonl``; a line that does not parse (a torn write) is skipped and reported."""
    history: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    entry = parse_json(line, f"{path.name}: line {number}")
                except ValueError as err:
                    problems.append(f"{err} (torn write?); skipped")
                    continue
                if isinstance(entry, dict):
                    history.append(entry)
    except FileNotFoundError:
        pass
    return history, problems


def final_from_history(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Final metrics from the last epoch: train names as-is, validation names prefixed ``val_``."""
    if not history:
        return {}
    last = history[-1]
    final: dict[str, Any] = {}
    for name, value in (last.get("train") or {}).items():
        final[name] = value
    for name, value in (last.get("val") or {}).items():
        final[name if name.startswith("val_") else f"val_{name}"] = value
    return final


def _process_alive(pid: int, start_token: str | None) -> bool:
    """Whether ``pid`` is alive and (when we can tell) is the same process that wrote the run."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    fields = _proc_stat(pid)
    if fields and fields[0] == "Z":
        return False  # exited, not yet reaped (an orphaned sealer where nothing reaps orphans)
    if start_token is not None:
        return process_start_token(pid) == start_token
    return True


def process_start_token(pid: int) -> str | None:
    """A token that changes when a pid is reused (Linux: start time in clock ticks)."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first); ``None`` off Linux."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def parse_json(text: str, what: str) -> Any:
    """``json.loads`` for files from anywhere: every way it can fail is one ValueError naming ``what``.

    Besides syntax errors, Python's parser raises RecursionError for deep nesting (100,000 ``[``)
    and ValueError for integers over 4,300 digits; neither is a traceback for the user.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} is not valid JSON (line {err.lineno}: {err.msg})") from err
    except RecursionError as err:
        raise ValueError(f"{what} is nested too deeply to read") from err
    except ValueError as err:  # int('9' * 5000): over the digit limit of integer conversion
        raise ValueError(
            f"{what} holds a number too long to read ({str(err).split('(')[0].strip()})"
        ) from err


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = parse_json(path.read_text(encoding="utf-8"), path.name)
    except UnicodeDecodeError as err:
        raise BundleSchemaError(f"{path.name} is not UTF-8 text", path=str(path.parent)) from err
    except ValueError as err:
        raise BundleSchemaError(str(err), path=str(path.parent)) from err
    if not isinstance(data, dict):
        raise BundleSchemaError(f"{path.name} must hold a JSON object", path=str(path.parent))
    return data


def read_bundle(path: str | os.PathLike[str], *, validate: bool = True) -> Bundle:
    """Read the bundle at ``path``.

    Raises:
        BundleSchemaError: The folder is not a bundle, or its metadata is corrupt or invalid.
    """
    folder = Path(path)
    meta_path = folder / METADATA_FILE
    if meta_path.is_file():
        metadata = _load_json(meta_path)
        if validate:
            from modelkb.schema import validate_metadata

            validate_metadata(metadata, path=str(folder))
        return Bundle(folder, metadata, sealed=True)
    state_path = folder / RUN_STATE_FILE
    if not state_path.is_file():
        raise BundleSchemaError(
            "not a bundle: neither metadata.json nor run.json", path=str(folder)
        )
    state = _load_json(state_path)
    try:
        return _running_bundle(folder, state)
    except (TypeError, ValueError, AttributeError, OverflowError) as err:
        raise BundleSchemaError(
            f"run.json has a field of the wrong type ({type(err).__name__}: {err})",
            path=str(folder),
        ) from err


def _running_bundle(folder: Path, state: dict[str, Any]) -> Bundle:
    """The bundle of a run that is not sealed yet, from its ``run.json`` state and ``metrics.jsonl``."""
    metadata = dict(state.get("metadata") or {})
    if (
        not isinstance(metadata.get("id"), str)
        or not isinstance(metadata.get("project"), str)
        or not metadata["id"]
        or not metadata["project"]
    ):
        raise BundleSchemaError("run.json lacks the experiment id or project", path=str(folder))
    history, problems = read_metrics(folder / METRICS_FILE)
    kept = (metadata.get("metrics") or {}).get("history")
    if isinstance(kept, list) and len(kept) > len(history):  # the disk filled: run.json has them
        history = [entry for entry in kept if isinstance(entry, dict)]
    same_host = state.get("host") == socket.gethostname()
    alive = (not same_host) or _process_alive(int(state.get("pid", -1)), state.get("pid_start"))
    if not ended_unsealed(metadata):
        metadata["status"] = "running" if alive else "interrupted"
    metrics = dict(metadata.get("metrics") or {})
    metrics["history"] = history
    metrics["final"] = {**final_from_history(history), **dict(metrics.get("final") or {})}
    metadata["metrics"] = metrics
    return Bundle(folder, metadata, sealed=False, warnings=problems, live=alive)


def artifact_kind(relpath: str) -> str:
    """A coarse kind for an artifact, from its path."""
    if relpath.startswith(CODE_DIR + "/"):
        return "code"
    if relpath == CARD_FILE:
        return "card"
    if relpath == EXAMPLES_FILE:
        return "examples"
    return _ARTIFACT_KINDS.get(Path(relpath).suffix, "file")


def _relative_files(folder: Path) -> list[str]:
    """Bundle files (POSIX relative paths) except metadata.json, run.json, temp files and links."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            rel = full.relative_to(folder).as_posix()
            if rel in (METADATA_FILE, RUN_STATE_FILE) or is_temp_file(name) or full.is_symlink():
                continue
            found.append(rel)
    return found


def list_artifacts(folder: Path) -> list[dict[str, Any]]:
    """Every file of the bundle but ``metadata.json``/``run.json``, with size and sha256."""
    artifacts = []
    for rel in _relative_files(folder):
        full = folder / rel
        artifacts.append(
            {
                "path": rel,
                "size": full.stat().st_size,
                "sha256": sha256_file(full),
                "kind": artifact_kind(rel),
            }
        )
    return artifacts


class BundleWriter:
    """Writes one bundle folder: run state while training, then the sealed bundle.

    It knows nothing about frameworks; callbacks and :class:`modelkb.Experiment` drive it.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._metrics: TextIO | None = None
        self._identity: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        """``pid``, ``pid_start`` and ``host`` of the writing process, for ``run.json`` (read once;
        again after a fork)."""
        pid = os.getpid()
        if self._identity is None or self._identity["pid"] != pid:
            self._identity = {
                "pid": pid,
                "pid_start": process_start_token(pid),
                "host": socket.gethostname(),
            }
        return self._identity

    @property
    def staging(self) -> Path:
        """A hidden sibling of the bundle folder (the store skips dot-folders) for files written
        before the run starts; :meth:`open` moves it into place."""
        return self.folder.with_name(f".{self.folder.name}.pending")

    def open(self) -> None:
        """Create the bundle folder, with the staged files in it: one rename when nothing is there yet."""
        try:
            os.rename(self.staging, self.folder)
            return
        except FileNotFoundError:  # nothing staged
            self.folder.mkdir(parents=True, exist_ok=True)
            return
        except OSError:  # the folder exists already and is not empty: merge
            pass
        shutil.copytree(self.staging, self.folder, dirs_exist_ok=True)
        self.discard_staging()

    def reserve_space(self) -> None:
        """Set :data:`RESERVE_BYTES` aside in :attr:`staging` (as much as the disk has), before
        anything else is written: when the disk fills, :meth:`_with_room` gives it back so the run
        state, the epochs and the metadata can still be written. Best effort; never raises."""
        chunk = b"\0" * 4096
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
            with open(self.staging / RESERVE_FILE, "wb") as handle:
                for _ in range(RESERVE_BYTES // len(chunk)):
                    handle.write(chunk)
                    handle.flush()
        except OSError:
            pass  # a full disk keeps what fitted; anything else: no reserve

    def release_space(self) -> bool:
        """Give the reserved space back; True when there was some."""
        freed = False
        for folder in (self.folder, self.staging):
            try:
                (folder / RESERVE_FILE).unlink()
                freed = True
            except OSError:
                pass
        return freed

    def _with_room(self, write: Callable[[], _T]) -> _T:
        """Run ``write``; when the disk is full, give the reserved space back and try once more."""
        try:
            return write()
        except OSError as err:
            if not _disk_full(err) or not self.release_space():
                raise
        logger.warning("the disk is full: ModelKB used its reserved space to keep the run")
        return write()

    def discard_staging(self) -> None:
        """Remove :attr:`staging` (a run that never started); idempotent."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def write_run_state(self, metadata: dict[str, Any], *, pid: int | None = None) -> None:
        """Atomically (re)write ``run.json`` with the partial metadata and this process's identity
        (or that of process ``pid``: a sealer this process started, which owns the run from now).

        One compact line (``run.json`` is transient and machine-read; the C JSON encoder is ~5x faster
        than the indented house form).
        """
        partial = {k: v for k, v in metadata.items() if k != "metrics"}
        final = (metadata.get("metrics") or {}).get("final")
        if final:  # the epochs are in metrics.jsonl; final values logged apart are kept here
            partial["metrics"] = {"final": final}
        identity = (
            self.identity()
            if pid is None
            else {"pid": pid, "pid_start": process_start_token(pid), "host": socket.gethostname()}
        )
        state = {**identity, "heartbeat": utc_now(), "metadata": partial}
        data = jsonl_line(state).encode("utf-8")
        self._with_room(
            lambda: atomic_write_bytes(self.folder / RUN_STATE_FILE, data, durable=False)
        )

    def append_epoch(self, entry: dict[str, Any]) -> None:
        """Append one finished epoch to ``metrics.jsonl``, flushed to the OS: it survives a kill.

        The file stays open between epochs (opening it costs more than the write); :meth:`close`
        or :meth:`seal` closes it.
        """
        self._with_room(lambda: self._append_line(jsonl_line(entry)))

    def _append_line(self, line: str) -> None:
        try:
            if self._metrics is None:
                self._metrics = open(self.folder / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115 - kept open between epochs
            self._metrics.write(line)
            self._metrics.flush()
        except BaseException:
            self._drop_partial_line()  # e.g. a full disk: the next epoch reopens and tries again
            raise

    def _drop_partial_line(self) -> None:
        """Close ``metrics.jsonl`` after a failed append, cutting a half-written last line."""
        self.close()
        path = self.folder / METRICS_FILE
        try:
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                os.truncate(path, data.rfind(b"\n") + 1)
        except OSError:
            pass

    def close(self) -> None:
        """Close ``metrics.jsonl`` if it is open; idempotent."""
        handle, self._metrics = self._metrics, None
        if handle is not None:
            try:
                handle.close()
            except OSError:
                logger.debug("closing %s failed", self.folder / METRICS_FILE, exc_info=True)

    def write_text(self, relpath: str, text: str) -> Path:
        """Atomically write a text file inside the bundle."""
        target = self.folder / relpath
        atomic_write_text(target, text)
        return target

    def seal(self, metadata: dict[str, Any], *, card: bool = True) -> dict[str, Any]:
        """Write the model card, list the artifacts and write ``metadata.json`` last.

        Returns:
            The metadata as written.
        """
        self.close()
        self.release_space()  # the card and metadata.json come first now
        metadata = dict(metadata)
        metadata["schema_version"] = SCHEMA_VERSION
        # the card names the bundle's files, so it sees a first listing (sizes only, no hashing)
        metadata["artifacts"] = [
            {"path": a, "kind": artifact_kind(a)} for a in _relative_files(self.folder)
        ]
        if card:
            try:
                from modelkb.card import render_model_card

                atomic_write_text(self.folder / CARD_FILE, render_model_card(metadata))
            except Exception as err:
                logger.warning("model card not written: %s", err)
                metadata.setdefault("warnings", []).append(
                    {
                        "message": f"model card not written: {err}",
                        "source": "card",
                        "time": utc_now(),
                    }
                )
        _readable_by_all(self.folder)
        metadata["artifacts"] = list_artifacts(self.folder)
        try:
            atomic_write_json(self.folder / METADATA_FILE, metadata)
        except OSError as err:
            if not _disk_full(err):
                raise
            epochs = len((metadata.get("metrics") or {}).get("history") or [])
            kept = self._keep_final_state(metadata)
            raise DiskFullError(
                f"the disk is full: {self.folder / METADATA_FILE} could not be written; "
                + (
                    f"the final status and {epochs} epoch(s) are kept in {kept}"
                    if kept
                    else "nothing more could be written"
                ),
                hint="Free some space, then run `modelkb reindex`: it seals the run from what was kept.",
            ) from err
        try:
            (self.folder / RUN_STATE_FILE).unlink()
        except FileNotFoundError:
            pass
        return metadata

    def _keep_final_state(self, metadata: dict[str, Any]) -> str | None:
        """After ``metadata.json`` failed: put the final status and every epoch in ``run.json`` (it
        replaces the old one, or takes its place when a copy does not fit), so the run is later
        sealed as it ended (``completed``), with the epochs ``metrics.jsonl`` could not hold.
        Returns where they are kept, ``None`` when nothing could be written."""
        final = {k: v for k, v in metadata.items() if k != "artifacts"}
        final["sealing"] = "disk full"
        partial = {k: v for k, v in final.items() if k != "metrics"}
        state = {**self.identity(), "heartbeat": utc_now(), "metadata": final}
        data = jsonl_line(state).encode("utf-8")
        path = self.folder / RUN_STATE_FILE
        try:
            atomic_write_bytes(path, data, durable=False)
            return RUN_STATE_FILE
        except OSError:
            pass
        try:  # no room for a second copy: free the old one's space first
            path.unlink(missing_ok=True)
            atomic_write_bytes(path, data, durable=False)
            return RUN_STATE_FILE
        except OSError:
            logger.debug("run.json with the epochs does not fit either", exc_info=True)
        try:
            self.write_run_state(partial)
            return f"{RUN_STATE_FILE} and {METRICS_FILE}"
        except OSError:
            logger.debug("run.json not written", exc_info=True)
            return None


def ended_unsealed(metadata: Mapping[str, Any]) -> bool:
    """The run ended but ``metadata.json`` is not written: ``run.json`` holds its final status and
    why (``sealing: "in progress"`` while a background sealer works, ``"disk full"`` when the disk
    kept it from being written), which stands instead of ``running`` or ``interrupted``."""
    return bool(metadata.get("sealing")) and metadata.get("status") in (
        "completed",
        "failed",
        "interrupted",
    )


def wait_sealed(
    folder: str | os.PathLike[str], *, timeout: float = SEAL_WAIT_S, poll: float = 0.05
) -> dict[str, Any]:
    """The sealed metadata of a run, once its background sealer is done; a run whose writer died
    is sealed here (:func:`seal_interrupted`). A sealed or still-training run is returned as read.

    Raises:
        BundleError: The sealer is still at work after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        bundle = read_bundle(folder, validate=False)
        if bundle.sealed or not ended_unsealed(bundle.metadata):
            return bundle.metadata
        if not bundle.live:
            return seal_interrupted(bundle)
        if time.monotonic() > deadline:
            raise BundleError(
                f"run {bundle.id} is still being sealed after {timeout:.0f} s",
                hint=f"Wait for it, or stop its sealer and run `modelkb seal {bundle.id}`.",
            )
        time.sleep(poll)


def _disk_full(err: OSError) -> bool:
    return err.errno in (errno.ENOSPC, errno.EDQUOT)


def _readable_by_all(folder: Path) -> None:
    """Give files written through ``mkstemp`` (mode 0600: safetensors, Keras' and ONNX exporters)
    the mode of any other file, ``0666 & ~umask``: a bundle and the site that hard-links its model
    are shared, so their files are readable like the rest."""
    wanted = 0o666 & ~_umask()
    for rel in _relative_files(folder):
        path = folder / rel
        if path.stat().st_mode & 0o777 != wanted and path.stat().st_mode & 0o044 == 0:
            os.chmod(path, wanted)


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` sets it, racing other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def seal_interrupted(bundle: Bundle) -> dict[str, Any]:
    """Seal a run whose process died, keeping every finished epoch; returns the metadata.

    A run that ended but could not write ``metadata.json`` (a full disk: ``run.json`` then says
    ``sealing: "disk full"``) keeps the status it ended with.
    """
    metadata = dict(bundle.metadata)
    history = metadata.get("metrics", {}).get("history", [])
    ended = ended_unsealed(metadata)
    reason = metadata.pop("sealing", None)
    if ended and reason == SEALING_IN_PROGRESS:
        if "onnx" not in metadata:  # exported, maybe, but never checked: not to be served
            (bundle.path / "model.onnx").unlink(missing_ok=True)
        message = (
            "the background sealer stopped before it finished (killed, or its machine went down): "
            "model.onnx was not exported or not verified; sealed by modelkb from run.json"
        )
    elif ended:
        message = (
            f"metadata.json could not be written when the run ended (the disk was full); sealed "
            f"by modelkb from run.json and {len(history)} epoch(s) in {METRICS_FILE}"
        )
    else:
        metadata["status"] = "interrupted"
        message = (
            f"the training process died after {len(history)} finished epoch(s); sealed by modelkb"
        )
    metadata.setdefault("warnings", []).append(
        {"message": message, "source": "store", "time": utc_now()}
    )
    return BundleWriter(bundle.path).seal(metadata)


def update_metadata(folder: str | os.PathLike[str], changes: dict[str, Any]) -> dict[str, Any]:
    """Read-modify-write a sealed bundle's metadata: top-level ``changes`` merged, every other key
    (including ones this version of ModelKB does not know) kept as it was."""
    path = Path(folder) / METADATA_FILE
    metadata = _load_json(path)
    metadata.update(changes)
    atomic_write_json(path, metadata)
    return metadata
