"""The local store: a folder of bundles (``<root>/<project>/<id>/``) plus its SQLite index."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bundle import (
    METADATA_FILE,
    RUN_STATE_FILE,
    Bundle,
    read_bundle,
    seal_interrupted,
    update_metadata,
)
from .errors import AmbiguousIdError, BundleError, BundleNotFoundError, StoreError
from .ids import slugify
from .index import Index, IndexedRun
from .query import Query

logger = logging.getLogger(__name__)

DEFAULT_STORE_DIR = "modelkb-store"
INDEX_DIR = ".modelkb"


def default_store_path() -> Path:
    """``$MODELKB_HOME`` if set, else ``./modelkb-store``."""
    return Path(os.environ.get("MODELKB_HOME") or DEFAULT_STORE_DIR)


@dataclass(frozen=True)
class Problem:
    """A bundle that could not be read: reported and skipped, never fatal."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class Store:
    """A folder of experiment bundles with a rebuildable index.

    Args:
        root: The store folder; defaults to :func:`default_store_path`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root if root is not None else default_store_path()).expanduser().resolve()
        self._index: Index | None = None
        self.problems: list[Problem] = []

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def index(self) -> Index:
        if self._index is None:
            try:
                self._index = Index(self.root / INDEX_DIR / "index.sqlite", self.root)
            except OSError as err:
                raise StoreError(f"cannot open the index of {self.root}: {err}") from err
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def bundle_dir(self, project: str, experiment_id: str) -> Path:
        """Where the bundle of ``experiment_id`` in ``project`` lives."""
        return self.root / slugify(project) / experiment_id

    def iter_bundle_dirs(self) -> Iterator[Path]:
        """Every folder that looks like a bundle (has metadata.json or run.json)."""
        if not self.root.is_dir():
            return
        for project in os.scandir(self.root):
            if project.name.startswith(".") or not project.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(project.path):
                if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                    continue
                yield Path(entry.path)

    # -- keeping the index in step with the disk -------------------------------------------------
    def refresh(self) -> list[Problem]:
        """Bring the index up to date with the bundles on disk; returns unreadable bundles.

        New bundles are indexed, vanished ones dropped, unsealed (running) ones re-checked. A sealed
        bundle is immutable for the store; edits go through :meth:`update_metadata` (or a
        ``modelkb reindex`` after editing files by hand), so refresh costs one directory listing
        per project, not one ``stat`` per bundle.
        """
        problems: list[Problem] = []
        known = self.index.states()
        seen: set[str] = set()
        pending = []
        for folder in self.iter_bundle_dirs():
            state = known.get(folder.name)
            if state is not None and state[1] and state[0] == self.index.relative(folder):
                seen.add(folder.name)
                continue
            meta = folder / METADATA_FILE
            try:
                mtime_ns = meta.stat().st_mtime_ns
            except FileNotFoundError:
                if not (folder / RUN_STATE_FILE).exists():
                    problems.append(
                        Problem(str(folder), "not a bundle: neither metadata.json nor run.json")
                    )
                    continue
                mtime_ns = -1
            try:
                bundle = read_bundle(folder)
            except BundleError as err:
                problems.append(Problem(str(folder), str(err).removeprefix(f"{folder}: ")))
                continue
            except OSError as err:
                problems.append(Problem(str(folder), f"cannot read: {err}"))
                continue
            pending.append((bundle.metadata, str(folder), bundle.sealed, mtime_ns))
            seen.add(bundle.id)
        if pending:
            self.index.upsert_many(pending)
        gone = [experiment_id for experiment_id in known if experiment_id not in seen]
        if gone:
            self.index.remove(gone)
        for problem in problems:
            logger.warning("skipped %s", problem)
        self.problems = problems
        return problems

    def update_metadata(self, id_or_prefix: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge top-level ``changes`` into a sealed bundle's metadata (unknown keys kept) and reindex it."""
        bundle = self.get(id_or_prefix)
        if not bundle.sealed:
            raise BundleError(
                f"{bundle.id} is still running; its metadata can change only when it is sealed"
            )
        metadata = update_metadata(bundle.path, changes)
        self.record(bundle.path)
        return metadata

    def reindex(self, *, seal_dead_runs: bool = True) -> tuple[int, list[Problem]]:
        """Rebuild the index from scratch; seal runs whose process died as ``interrupted``.

        Returns:
            The number of bundles indexed and the unreadable ones.
        """
        problems: list[Problem] = []
        entries = []
        for folder in self.iter_bundle_dirs():
            try:
                bundle = read_bundle(folder)
                if not bundle.sealed and bundle.status != "running" and seal_dead_runs:
                    seal_interrupted(bundle)
                    bundle = read_bundle(folder)
            except BundleError as err:
                problems.append(Problem(str(folder), str(err).removeprefix(f"{folder}: ")))
                continue
            except OSError as err:
                problems.append(Problem(str(folder), f"cannot read: {err}"))
                continue
            meta = folder / METADATA_FILE
            mtime_ns = meta.stat().st_mtime_ns if bundle.sealed else -1
            entries.append((bundle.metadata, str(folder), bundle.sealed, mtime_ns))
        self.index.clear()
        count = self.index.upsert_many(entries)
        self.problems = problems
        return count, problems

    def record(self, bundle_path: Path) -> None:
        """Index one bundle just written (best effort: the next refresh catches up anyway)."""
        try:
            bundle = read_bundle(bundle_path, validate=False)
            meta = bundle_path / METADATA_FILE
            mtime_ns = meta.stat().st_mtime_ns if bundle.sealed else -1
            self.index.upsert(
                bundle.metadata, path=str(bundle_path), sealed=bundle.sealed, mtime_ns=mtime_ns
            )
        except Exception as err:
            logger.warning("could not index %s: %s", bundle_path, err)

    # -- lookups ----------------------------------------------------------------------------------
    def resolve(self, id_or_prefix: str) -> str:
        """The full id for a unique id prefix (or an experiment name).

        Raises:
            BundleNotFoundError: Nothing matches.
            AmbiguousIdError: Several experiments match.
        """
        text = id_or_prefix.strip().lower()
        if not text:
            raise BundleNotFoundError(
                "an empty experiment id was given", hint="Run `modelkb ls` to see ids."
            )
        matches = self.index.ids_with_prefix(text)
        if not matches:
            self.refresh()
            matches = self.index.ids_with_prefix(text)
        if not matches:
            by_name = (
                [run.id for run in self.index.search(Query(f"name = {_quote(id_or_prefix)}"))]
                if self.index.count()
                else []
            )
            matches = by_name
        if not matches:
            raise BundleNotFoundError(
                f"no experiment with id or name {id_or_prefix!r} in {self.root}",
                hint="Run `modelkb ls` to see ids, or pass --store.",
            )
        if len(matches) > 1 and text not in matches:
            raise AmbiguousIdError(id_or_prefix, matches)
        return text if text in matches else matches[0]

    def get(self, id_or_prefix: str) -> Bundle:
        """Read the bundle of an experiment by id, unique prefix or name."""
        experiment_id = self.resolve(id_or_prefix)
        entry = self.index.get(experiment_id)
        if entry is None or not Path(entry.path).is_dir():
            raise BundleNotFoundError(
                f"bundle of {experiment_id} is gone from {self.root}", hint="Run `modelkb reindex`."
            )
        return read_bundle(entry.path)

    def search(
        self, query: str | Query | None = None, *, project: str | None = None, refresh: bool = True
    ) -> list[IndexedRun]:
        """Experiments matching a query expression, newest first."""
        if refresh:
            self.refresh()
        parsed = (
            Query(query)
            if isinstance(query, str) and query.strip()
            else query
            if isinstance(query, Query)
            else None
        )
        return self.index.search(parsed, project=project)

    def projects(self) -> dict[str, int]:
        """Project title -> number of experiments."""
        counts: dict[str, int] = {}
        for run in self.search():
            counts[run.project] = counts.get(run.project, 0) + 1
        return counts

    def remove(self, id_or_prefix: str) -> str:
        """Delete an experiment's bundle and index entry; returns its id."""
        experiment_id = self.resolve(id_or_prefix)
        entry = self.index.get(experiment_id)
        if entry is not None:
            folder = Path(entry.path).resolve()
            if self.root not in folder.parents:
                raise StoreError(
                    f"refusing to delete {folder}: it is outside the store {self.root}"
                )
            shutil.rmtree(folder, ignore_errors=False)
        self.index.remove([experiment_id])
        return experiment_id


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
