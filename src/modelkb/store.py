"""The local store: a folder of bundles (``<root>/<project>/<id>/``) plus its SQLite index."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from modelkb.bundle import (
    METADATA_FILE,
    SEALING_IN_PROGRESS,
    Bundle,
    ended_unsealed,
    read_bundle,
    seal_interrupted,
    update_metadata,
    wait_sealed,
)
from modelkb.errors import AmbiguousIdError, BundleError, BundleNotFoundError, StoreError
from modelkb.ids import slugify
from modelkb.index import Index, IndexedRun
from modelkb.query import Query

logger = logging.getLogger(__name__)

DEFAULT_STORE_DIR = "modelkb-store"
INDEX_DIR = ".modelkb"


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")
"""``s3://...``, ``gs://...`` (also as ``Path`` makes them: ``s3:/...``); not ``C:/`` (one letter)."""


def default_store_path() -> Path:
    """``$MODELKB_HOME`` if set, else ``./modelkb-store``."""
    return Path(os.environ.get("MODELKB_HOME") or DEFAULT_STORE_DIR)


def open_store(address: str | os.PathLike[str] | Store | None = None, **options: Any) -> Store:
    """The store at ``address``: a folder, or ``s3://bucket/prefix`` for a team store
    (:class:`~modelkb.team_store.TeamStore`; ``options`` go to it). Default ``$MODELKB_HOME``.

    Raises:
        StoreError: Another kind of URL.
    """
    if isinstance(address, Store):
        return address
    given = str(address) if address is not None else os.environ.get("MODELKB_HOME") or ""
    if given.startswith("s3://"):
        from modelkb.team_store import TeamStore

        return TeamStore(given, **options)
    return Store(given or None)


def store_at(root: str | os.PathLike[str]) -> Store:
    """The store whose folder is ``root``: a team store's cache reopens as that team store."""
    from modelkb.team_store import TeamStore, team_address

    address = team_address(Path(root))
    return TeamStore(address, cache_dir=root) if address else Store(root)


@dataclass(frozen=True)
class Problem:
    """A bundle that could not be read: reported and skipped, never fatal."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    @classmethod
    def from_error(cls, folder: Path, err: Exception) -> Problem:
        """The problem an error while reading ``folder`` stands for (its message without the path)."""
        if isinstance(err, OSError) and not isinstance(err, BundleError):
            return cls(str(folder), f"cannot read: {err}")
        return cls(str(folder), str(err).removeprefix(f"{folder}: "))


class Stamp(NamedTuple):
    """When ``metadata.json`` was last written and how long it is: a sealed bundle's version."""

    mtime_ns: int
    size: int


def metadata_stamp(folder: Path) -> Stamp | None:
    """The :class:`Stamp` of a bundle folder, or ``None`` while the run is unsealed."""
    try:
        info = os.stat(folder / METADATA_FILE)
    except FileNotFoundError:
        return None
    return Stamp(info.st_mtime_ns, info.st_size)


@dataclass(frozen=True)
class ScanEntry:
    """One bundle folder found by :meth:`Store.scan`.

    Attributes:
        folder: The bundle folder.
        stamp: Its :class:`Stamp`, taken before the bundle was read (``None`` for an unsealed run,
            and when ``bundle`` is).
        bundle: The bundle, or ``None`` when the scan's ``current`` test said the caller's copy
            is up to date and the folder was not read.
    """

    folder: Path
    stamp: Stamp | None
    bundle: Bundle | None


class Store:
    """A folder of experiment bundles with a rebuildable index.

    Args:
        root: The store folder; defaults to :func:`default_store_path`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        given = root if root is not None else (os.environ.get("MODELKB_HOME") or DEFAULT_STORE_DIR)
        if _URL.match(str(given)):  # s3://bucket/team would otherwise become a folder named "s3:"
            raise StoreError(
                f"{given} is a URL; a store is a local folder or an s3://bucket/prefix team store",
                hint="Give a folder, or s3://BUCKET/PREFIX for a team store in S3.",
            )
        self.root = Path(given).expanduser().resolve()
        self._index: Index | None = None
        self.problems: list[Problem] = []
        self.unsent: list[str] = []
        """Ids of runs that wait to be uploaded to the store's remote (a team store's)."""

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def __str__(self) -> str:
        return str(self.root)

    # -- where a team store (modelkb.team_store) keeps its remote in step; nothing to do here ----
    def reopened(self) -> Store:
        """A new instance on the same store (a forked process must not share the index)."""
        return Store(self.root)

    def sync(self) -> None:
        """Bring the store up to date with its remote, if it has one."""

    def fetch_files(
        self, folder: str | os.PathLike[str], names: Collection[str] | None = None
    ) -> None:
        """Make the files (``names``, default all) of the bundle at ``folder`` present (a team
        store downloads them)."""

    def prefetch(
        self, folders: Iterable[str | os.PathLike[str]], names: Collection[str] | None = None
    ) -> list[Problem]:
        """:meth:`fetch_files` for many bundles (a team store fetches them in parallel); returns
        the bundles whose files could not be fetched."""
        return []

    def after_sealed(self, folder: Path) -> None:
        """A run in this store was just sealed (a team store uploads it)."""

    def epoch_ended(self, folder: Path) -> None:
        """A running run appended an epoch (a team store uploads its metrics in the background)."""

    def stop_live(self, folder: Path) -> None:
        """The run stopped appending epochs (a team store stops its background upload)."""

    def write_project_settings(self, project: str, **changes: Any) -> dict[str, Any]:
        """Change a project's settings (:mod:`modelkb.project_settings`); a team store shares them."""
        from modelkb.project_settings import write_settings

        return write_settings(self.root, project, **changes)

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
        """Every non-hidden ``<project>/<id>`` folder: a bundle or not, :meth:`scan` tells."""
        if not self.root.is_dir():
            return
        for project in os.scandir(self.root):
            if project.name.startswith(".") or not project.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(project.path):
                if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                    continue
                yield Path(entry.path)

    def scan(
        self,
        *,
        current: Callable[[Path], bool] | None = None,
        validate: bool = True,
        seal_dead_runs: bool = False,
        settle_sealing: bool = False,
    ) -> Iterator[ScanEntry | Problem]:
        """Every bundle folder of the store, read, or the :class:`Problem` that kept it unread.

        The one walk over the store that :meth:`refresh`, :meth:`reindex` and the catalog build
        share. When the walk finishes, its problems are also kept in :attr:`problems`.

        Args:
            current: Called with each folder before it is read; ``True`` means the caller's copy
                is up to date, and the entry comes without a bundle (an incremental scan).
            validate: Check each ``metadata.json`` against the JSON Schema.
            seal_dead_runs: Seal unsealed runs whose process died (as ``interrupted``, or as they
                ended when ``run.json`` says so: a full disk kept ``metadata.json`` from being written).
                A run whose background sealer died is sealed by every scan, with a warning.
            settle_sealing: Wait for runs that ended and are being sealed in the background
                (:func:`modelkb.bundle.wait_sealed`), so what is read is the sealed bundle.
        """
        problems: list[Problem] = []
        for folder in self.iter_bundle_dirs():
            if current is not None and current(folder):
                yield ScanEntry(folder, None, None)
                continue
            try:
                stamp = metadata_stamp(folder)
                bundle = read_bundle(folder, validate=validate)
                settle = settle_sealing and ended_unsealed(bundle.metadata)
                orphaned = bundle.metadata.get("sealing") == SEALING_IN_PROGRESS
                dead = not bundle.live and (seal_dead_runs or orphaned)
                if not bundle.sealed and (settle or dead):
                    wait_sealed(folder) if settle else seal_interrupted(bundle)
                    stamp = metadata_stamp(folder)
                    bundle = read_bundle(folder, validate=validate)
            except (BundleError, OSError) as err:
                problem = Problem.from_error(folder, err)
                problems.append(problem)
                yield problem
                continue
            yield ScanEntry(folder, stamp, bundle)
        self.problems = problems

    # -- keeping the index in step with the disk -------------------------------------------------
    def refresh(self) -> list[Problem]:
        """Bring the index up to date with the bundles on disk; returns unreadable bundles.

        New bundles are indexed, vanished ones dropped, unsealed (running) ones re-checked. A sealed
        bundle is immutable for the store; edits go through :meth:`update_metadata` (or a
        ``modelkb reindex`` after editing files by hand), so refresh costs one directory listing
        per project, not one ``stat`` per bundle.
        """
        known = self.index.states()

        def indexed_and_sealed(folder: Path) -> bool:
            state = known.get(folder.name)
            return state is not None and state[1] and state[0] == self.index.relative(folder)

        seen: set[str] = set()
        pending = []
        for entry in self.scan(current=indexed_and_sealed):
            if isinstance(entry, Problem):
                continue
            if entry.bundle is None:
                seen.add(entry.folder.name)
                continue
            pending.append(_index_row(entry.bundle, entry.stamp))
            seen.add(entry.bundle.id)
        if pending:
            self.index.upsert_many(pending)
        gone = [experiment_id for experiment_id in known if experiment_id not in seen]
        if gone:
            self.index.remove(gone)
        for problem in self.problems:
            logger.warning("skipped %s", problem)
        return self.problems

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
        entries = [
            _index_row(entry.bundle, entry.stamp)
            for entry in self.scan(seal_dead_runs=seal_dead_runs)
            if isinstance(entry, ScanEntry) and entry.bundle is not None
        ]
        self.index.clear()
        count = self.index.upsert_many(entries)
        return count, self.problems

    def record(self, bundle_path: Path) -> None:
        """Index one bundle just written (best effort: the next refresh catches up anyway)."""
        try:
            stamp = metadata_stamp(bundle_path)
            bundle = read_bundle(bundle_path, validate=False)
            self.index.upsert_many([_index_row(bundle, stamp)])
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

    def get(self, id_or_prefix: str, *, files: bool = True) -> Bundle:
        """Read the bundle of an experiment by id, unique prefix or name.

        ``files=False``: the metadata is enough (a team store then leaves weights in S3).
        """
        experiment_id = self.resolve(id_or_prefix)
        entry = self.index.get(experiment_id)
        if entry is None or not Path(entry.path).is_dir():
            raise BundleNotFoundError(
                f"bundle of {experiment_id} is gone from {self.root}", hint="Run `modelkb reindex`."
            )
        bundle = read_bundle(entry.path)
        if not bundle.sealed and ended_unsealed(bundle.metadata):
            wait_sealed(entry.path)  # a reader gets the sealed bundle, not a half-written one
            bundle = read_bundle(entry.path)
        return bundle

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


def _index_row(bundle: Bundle, stamp: Stamp | None) -> tuple[dict[str, Any], str, bool, int]:
    """What the index keeps of a read bundle; its ``mtime_ns`` is ``-1`` while the run is unsealed."""
    mtime_ns = stamp.mtime_ns if stamp is not None and bundle.sealed else -1
    return bundle.metadata, str(bundle.path), bundle.sealed, mtime_ns


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
