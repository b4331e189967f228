"""A team store in S3: the local store's layout under ``s3://bucket/prefix``, through a local cache.

The cache is an ordinary local :class:`~modelkb.store.Store` (same folders, same SQLite index) that
knows its remote (``.modelkb/team.json``). What moves between the two:

* **pull** (every command, once): one paginated listing of the prefix; each ``metadata.json``
  whose ETag differs from the one recorded in ``.modelkb/remote.json`` is fetched (it holds all
  that ``ls``, ``query``, ``show`` and ``compare`` read, the metric history included). The other
  files come on demand (:meth:`TeamStore.fetch_files`: ``package``, ``serve``, ``reproduce``,
  ``clone``, the catalog's pages);
* **push**: a run trained into the cache is uploaded when it is sealed (by whichever process
  seals it), ``metadata.json`` last, with conditional writes (:mod:`modelkb.publishing.s3_writes`).
  A run that could not be uploaded stays in the cache, is reported, and goes up with the next
  command: a cached run that ``remote.json`` does not know is by definition not uploaded yet;
* **live metrics**: while a run trains, ``metrics.jsonl`` is uploaded from a background thread,
  at most once per epoch and never blocking one.

Training never waits for the network: it writes to the cache as it would to a local store.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelkb.bundle import METADATA_FILE, METRICS_FILE, read_bundle
from modelkb.errors import (
    IntegrityError,
    ModelKBError,
    PublishError,
    RemoteConflictError,
    RemoteUnavailableError,
    StoreError,
)
from modelkb.fsutil import atomic_target, atomic_write_json, sha256_file
from modelkb.ids import is_id, slugify
from modelkb.project_settings import SETTINGS_FILE
from modelkb.store import INDEX_DIR, Problem, Store

logger = logging.getLogger(__name__)

TEAM_FILE = "team.json"
"""In ``<cache>/.modelkb/``: the remote this cache folder is the copy of."""
REMOTE_STATE_FILE = "remote.json"
"""In ``<cache>/.modelkb/``: ``"<project>/<id>"`` -> ETag of its ``metadata.json`` as last seen."""
METADATA_LIMIT = 64 << 20
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
"""A project folder name as :func:`~modelkb.ids.slugify` makes it."""
PULL_THREADS = 16
"""Runs fetched at once by a pull (S3 latency, not bandwidth, bounds a pull of small files)."""


def cache_folder(address: str) -> Path:
    """Where the cache of a team store lives: ``$MODELKB_CACHE`` (else ``~/.cache/modelkb``)
    ``/stores/<bucket>/<prefix>``."""
    from modelkb.publishing.s3_client import S3Location

    location = S3Location.parse(address)
    base = os.environ.get("MODELKB_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "modelkb"
    )
    parts = [part for part in location.prefix.split("/") if part]
    if any(part in (".", "..") or part.startswith(".") for part in parts):
        raise StoreError(f"{address}: a prefix part may not start with a dot")
    return Path(base, "stores", location.bucket, *parts)


def team_address(root: Path) -> str | None:
    """The ``s3://`` address whose cache ``root`` is, or ``None`` for a plain local store."""
    try:
        data = json.loads((root / INDEX_DIR / TEAM_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    address = data.get("address") if isinstance(data, dict) else None
    return address if isinstance(address, str) and address.startswith("s3://") else None


class TeamStore(Store):
    """A store in S3, read and written through a local cache folder.

    Args:
        address: ``s3://bucket/prefix``.
        cache_dir: The cache folder (default :func:`cache_folder`).
        endpoint_url: An S3-compatible endpoint (default ``AWS_ENDPOINT_URL``, else AWS).
    """

    def __init__(
        self,
        address: str,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        from modelkb.publishing.s3_client import S3Location

        self.location = S3Location.parse(address)
        self.address = self.location.url()
        super().__init__(Path(cache_dir) if cache_dir is not None else cache_folder(address))
        self.endpoint_url = endpoint_url
        self._client: Any = None
        self._synced = False
        self._live: dict[Path, _LiveMetrics] = {}
        self._mark_cache()

    def __repr__(self) -> str:
        return f"TeamStore({self.address!r}, cache={str(self.root)!r})"

    def __str__(self) -> str:
        return self.address

    def reopened(self) -> TeamStore:
        return TeamStore(self.address, cache_dir=self.root, endpoint_url=self.endpoint_url)

    @property
    def client(self) -> Any:
        if self._client is None:
            from modelkb.publishing.s3_client import make_client

            self._client = make_client(self.endpoint_url)
        return self._client

    def _mark_cache(self) -> None:
        state = self.root / INDEX_DIR
        if team_address(self.root) == self.address:
            return
        if team_address(self.root) is not None:
            raise StoreError(
                f"{self.root} is the cache of {team_address(self.root)}, not of {self.address}",
                hint="Give another folder (cache_dir / $MODELKB_CACHE).",
            )
        state.mkdir(parents=True, exist_ok=True)
        atomic_write_json(state / TEAM_FILE, {"address": self.address})

    # -- the remote state as last seen ------------------------------------------------------------
    def _remote_state(self) -> dict[str, str]:
        try:
            data = json.loads((self.root / INDEX_DIR / REMOTE_STATE_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return (
            {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
        )

    def _update_remote_state(self, changes: dict[str, str | None]) -> None:
        """Record (``None``: forget) runs' remote ETags. Other processes sharing this cache record
        theirs too: the file is re-read and rewritten under a lock."""
        import fcntl

        if not changes:
            return
        with open(self.root / INDEX_DIR / "remote.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._remote_state()
            for relpath, etag in changes.items():
                if etag is None:
                    state.pop(relpath, None)
                else:
                    state[relpath] = etag
            atomic_write_json(self.root / INDEX_DIR / REMOTE_STATE_FILE, state, durable=False)

    # -- sync -------------------------------------------------------------------------------------
    def sync(self) -> None:
        """Pull what changed in S3 and upload the runs waiting in the cache (once per instance).

        A network failure is a warning, never fatal: the commands go on with the cache.
        """
        if self._synced:
            return
        self._synced = True
        from modelkb.publishing.s3_client import boto_errors, translate_error

        try:
            self.pull()
        except (*boto_errors(), PublishError) as err:
            error = (
                err
                if isinstance(err, PublishError)
                else translate_error(err, remote=self.address, action="read")
            )
            logger.warning("%s; showing the local copy of the team store", error)
            if isinstance(error, RemoteUnavailableError):  # no upload could get through either
                self.unsent = [folder.name for folder in self._waiting()]
                return
        self.push_waiting()

    def refresh(self) -> list[Any]:
        self.sync()
        return super().refresh()

    def resolve(self, id_or_prefix: str) -> str:
        self.sync()
        return super().resolve(id_or_prefix)

    def pull(self) -> list[str]:
        """Fetch the ``metadata.json`` (and small files) of every run new or changed in S3; drop
        the cached copies of runs gone from it. Returns the ``<project>/<id>`` fetched."""
        from modelkb.publishing.s3_client import remote_objects

        before = self._remote_state()  # read first: a run another process uploads meanwhile stays
        listing = remote_objects(self.client, self.location)
        skip = len(self.location.key()) + 1 if self.location.prefix else 0
        runs: dict[str, dict[str, dict[str, Any]]] = {}
        settings: dict[str, str] = {}  # <slug>/project.json -> ETag
        for key, info in listing.items():
            parts = key[skip:].split("/", 2)
            # <slug>/<id>/...: a key that names anything else (../, .hidden) is not a run
            if len(parts) == 3 and is_id(parts[1]) and _SLUG.fullmatch(parts[0]):
                runs.setdefault(f"{parts[0]}/{parts[1]}", {})[parts[2]] = info
            elif len(parts) == 2 and parts[1] == SETTINGS_FILE and _SLUG.fullmatch(parts[0]):
                settings[key[skip:]] = info["ETag"]
        todo = [
            (relpath, files)
            for relpath, files in runs.items()
            # no metadata.json: an upload under way (complete exactly when metadata.json is there)
            if METADATA_FILE in files
            and (
                before.get(relpath) != files[METADATA_FILE]["ETag"]
                or not (self.root / relpath / METADATA_FILE).is_file()
            )
        ]
        changes: dict[str, str | None] = {}

        def fetch(item: tuple[str, dict[str, dict[str, Any]]]) -> None:
            relpath, files = item
            try:
                self._fetch_run(relpath, files)
            except (IntegrityError, OSError) as err:
                logger.warning("skipped %s/%s: %s", self.address, relpath, err)
                return
            changes[relpath] = files[METADATA_FILE]["ETag"]

        with ThreadPoolExecutor(PULL_THREADS) as pool:
            list(pool.map(fetch, todo))
        for relpath, etag in settings.items():
            if before.get(relpath) != etag or not (self.root / relpath).is_file():
                body, modified = self._get(*relpath.split("/"), limit=1 << 20)
                with atomic_target(self.root / relpath) as tmp:
                    tmp.write_bytes(body)
                    _keep_time(tmp, modified)
                changes[relpath] = etag
        for relpath in before:
            if relpath.endswith("/" + SETTINGS_FILE):
                continue  # settings are changed, never deleted, by a team
            if METADATA_FILE not in runs.get(relpath, {}):
                changes[relpath] = None  # deleted in S3: the cached copy goes too
                shutil.rmtree(self.root / relpath, ignore_errors=True)
        self._update_remote_state(changes)
        for relpath in changes:
            if relpath in before and changes[relpath] is not None:
                self.record(self.root / relpath)  # a changed metadata.json: the index must see it
        return [relpath for relpath, etag in changes.items() if etag is not None]

    def _fetch_run(self, relpath: str, files: dict[str, dict[str, Any]]) -> None:
        experiment_id = relpath.split("/")[1]
        folder = self.root / relpath
        body, modified = self._get(relpath, METADATA_FILE, limit=METADATA_LIMIT)
        try:
            metadata = json.loads(body)
        except ValueError as err:
            raise IntegrityError(f"{METADATA_FILE} is not JSON: {err}") from err
        if not isinstance(metadata, dict) or metadata.get("id") != experiment_id:
            raise IntegrityError(f"{METADATA_FILE} is not the metadata of {experiment_id}")
        if (
            not isinstance(metadata.get("project"), str)
            or slugify(metadata["project"]) != relpath.split("/")[0]
        ):
            raise IntegrityError(
                f"{METADATA_FILE} of {experiment_id} belongs to another project folder"
            )
        try:
            previous = (folder / METADATA_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            previous = None
        with atomic_target(folder / METADATA_FILE) as tmp:
            tmp.write_bytes(body)
            _keep_time(tmp, modified)  # every cache gives a run the same stamp
            if previous is not None and tmp.stat().st_mtime_ns <= previous:
                # changed within S3's one-second resolution: the stamp must still change
                os.utime(tmp, ns=(previous + 1000, previous + 1000))

    def _get(self, relpath: str, name: str, *, limit: int) -> tuple[bytes, Any]:
        """A small object's bytes and its ``LastModified``."""
        response = self.client.get_object(
            Bucket=self.location.bucket, Key=self.location.key(relpath, name)
        )
        data = response["Body"].read(limit + 1)
        if len(data) > limit:
            raise IntegrityError(f"{self.location.url(relpath, name)} is over {limit} bytes")
        return data, response.get("LastModified")

    def _download(self, relpath: str, name: str, target: Path, *, size: int) -> None:
        from modelkb.publishing.s3 import download_limited
        from modelkb.publishing.s3_client import S3Location

        with atomic_target(target) as tmp:
            tmp.unlink()
            modified = download_limited(
                self.client,
                S3Location(self.location.bucket, self.location.key(relpath)),
                name,
                tmp,
                size=size,
            )
            _keep_time(tmp, modified)

    def fetch_files(
        self, folder: str | os.PathLike[str], names: Collection[str] | None = None
    ) -> None:
        """Download the files of a cached run that are not here yet (only ``names`` when given),
        each checked by its sha256."""
        from modelkb.publishing.integrity import (
            SizeLimits,
            artifact_entries,
            check_limits,
            check_relpath,
        )
        from modelkb.publishing.s3_client import boto_errors, translate_error

        folder = Path(folder)
        bundle = read_bundle(folder, validate=False)
        if not bundle.sealed:
            return
        relpath = f"{folder.parent.name}/{folder.name}"
        check_limits(bundle.metadata, SizeLimits(), source=self.location.url(relpath))
        for entry in artifact_entries(bundle.metadata):
            if names is not None and entry["path"] not in names:
                continue
            target = folder / check_relpath(entry["path"])
            if target.is_file() and target.stat().st_size == entry["size"]:
                continue
            try:
                self._download(relpath, entry["path"], target, size=entry["size"])
            except boto_errors() as err:
                raise translate_error(
                    err, remote=self.location.url(relpath, entry["path"]), action="download"
                ) from err
            if sha256_file(target) != entry["sha256"]:
                target.unlink()
                raise IntegrityError(
                    f"{self.location.url(relpath, entry['path'])} differs from its sha256 in "
                    "metadata.json",
                    path=entry["path"],
                    hint="Someone changed the object in S3; push the run again.",
                )

    def prefetch(
        self, wanted: Iterable[tuple[str | os.PathLike[str], Collection[str] | None]]
    ) -> list[Problem]:
        problems: list[Problem] = []

        def fetch(item: tuple[str | os.PathLike[str], Collection[str] | None]) -> None:
            folder, names = item
            try:
                self.fetch_files(folder, names)
            except (ModelKBError, OSError) as err:
                problems.append(Problem.from_error(Path(folder), err))

        with ThreadPoolExecutor(PULL_THREADS) as pool:
            list(pool.map(fetch, wanted))
        return problems

    def get(self, id_or_prefix: str, *, files: bool = True):  # type: ignore[override]
        bundle = super().get(id_or_prefix)
        if files and bundle.sealed:
            self.fetch_files(bundle.path)
        return bundle

    def remove(self, id_or_prefix: str) -> str:
        """Delete a run that is only in the cache; a run already in S3 is the team's, not removed here.

        Raises:
            StoreError: The run is in S3.
        """
        experiment_id = self.resolve(id_or_prefix)
        entry = self.index.get(experiment_id)
        if entry is not None:
            folder = Path(entry.path)
            relpath = f"{folder.parent.name}/{folder.name}"
            if relpath in self._remote_state():
                raise StoreError(
                    f"{experiment_id} is in the team store {self.address}; `modelkb rm` removes only "
                    "runs that were not uploaded",
                    hint=f"Delete {self.location.url(relpath)}/metadata.json in S3 (then the rest "
                    "of its folder); every machine drops its copy at its next command.",
                )
        return super().remove(experiment_id)

    def write_project_settings(self, project: str, **changes: Any) -> dict[str, Any]:
        """Change a project's settings here and in S3 (conditional on the ETag last seen).

        Raises:
            RemoteConflictError: Someone changed them in S3 since they were read here.
        """

        from modelkb.project_settings import settings_path

        self.sync()
        path = settings_path(self.root, project)
        relpath = f"{path.parent.name}/{SETTINGS_FILE}"
        before = path.read_bytes() if path.is_file() else None
        settings = super().write_project_settings(project, **changes)
        self._share_edit(
            relpath,
            path,
            before,
            what=f"the settings of {project!r}",
            etag=self._remote_state().get(relpath),
        )
        return settings

    def _share_edit(
        self,
        relpath: str,
        path: Path,
        before: bytes | None,
        *,
        what: str,
        etag: str | None,
        restored: Callable[[], None] | None = None,
    ) -> None:
        """Put the edited file ``path`` at ``relpath`` in S3 on the ETag last read (``None``: it
        must not exist yet); when that fails, the local file goes back to ``before``.

        Raises:
            RemoteConflictError: S3 holds another version (the next command fetches it).
        """
        from botocore.exceptions import ClientError

        from modelkb.publishing.s3_client import boto_errors, translate_error
        from modelkb.publishing.s3_writes import precondition_failed, put_file

        state_key = relpath.removesuffix("/" + METADATA_FILE)
        try:
            new_etag = put_file(
                self.client, self.location.bucket, self.location.key(relpath), path,
                sha256=sha256_file(path), if_match=etag,
            )  # fmt: skip
        except (ClientError, *boto_errors()) as err:
            if before is None:
                path.unlink()
            else:
                with atomic_target(path) as tmp:
                    tmp.write_bytes(before)
            if restored is not None:
                restored()
            if isinstance(err, ClientError) and precondition_failed(err):
                self._update_remote_state({state_key: None})
                raise RemoteConflictError(
                    f"{what} changed in {self.address} since it was read here; nothing was "
                    "overwritten",
                    remote=self.location.url(relpath),
                    hint="Run the command again: it reads the new version first.",
                ) from err
            raise translate_error(err, remote=self.location.url(relpath), action="update") from err
        self._update_remote_state({state_key: new_etag})

    # -- uploads ----------------------------------------------------------------------------------
    def push_waiting(self) -> list[str]:
        """Upload every sealed run of the cache that S3 does not have yet; returns their ids."""
        sent = []
        self.unsent = []
        for folder in self._waiting():
            if self.upload(folder):
                sent.append(folder.name)
            else:
                self.unsent.append(folder.name)
        return sent

    def _waiting(self) -> Iterator[Path]:
        """The sealed runs of the cache that S3 does not have yet."""
        known = self._remote_state()
        for folder in self.iter_bundle_dirs():
            if (
                f"{folder.parent.name}/{folder.name}" not in known
                and (folder / METADATA_FILE).is_file()
            ):
                yield folder

    def upload(self, folder: str | os.PathLike[str]) -> bool:
        """Upload one sealed run (``metadata.json`` last); ``False`` (and a warning) when it failed."""
        from modelkb.publishing.s3_client import S3Location, boto_errors, translate_error
        from modelkb.publishing.s3_writes import upload_bundle

        folder = Path(folder)
        relpath = f"{folder.parent.name}/{folder.name}"
        target = S3Location(self.location.bucket, self.location.key(relpath))
        self.stop_live(folder)
        try:
            bundle = read_bundle(folder, validate=False)
            etag = upload_bundle(self.client, folder, bundle.metadata, target)
        except boto_errors() as err:
            error = translate_error(err, remote=target.url(), action="upload to")
            logger.warning(
                "%s; the run stays in %s and goes up with the next command", error, self.root
            )
            return False
        except ModelKBError as err:
            logger.warning("%s is not uploaded: %s", target.url(), err)
            return False
        self._update_remote_state({relpath: etag})
        return True

    def after_sealed(self, folder: Path) -> None:
        self.upload(folder)

    def update_metadata(self, id_or_prefix: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a run's metadata here and in S3; the S3 write is conditional on the ETag last
        seen, so an edit made meanwhile by someone else is never overwritten.

        Raises:
            RemoteConflictError: ``metadata.json`` changed in S3 since it was read here.
        """

        self.sync()
        bundle = self.get(id_or_prefix, files=False)
        relpath = f"{bundle.path.parent.name}/{bundle.path.name}"
        etag = self._remote_state().get(relpath)
        meta_path = bundle.path / METADATA_FILE
        before = meta_path.read_bytes() if meta_path.is_file() else None
        metadata = super().update_metadata(bundle.id, changes)
        if etag is None:
            return metadata  # not uploaded yet: it goes up as it is now
        self._share_edit(
            f"{relpath}/{METADATA_FILE}",
            meta_path,
            before,
            what=f"the metadata of {bundle.id}",
            etag=etag,
            restored=lambda: self.record(bundle.path),
        )
        return metadata

    # -- metrics while a run trains ---------------------------------------------------------------
    def epoch_ended(self, folder: Path) -> None:
        """Ask for ``metrics.jsonl`` to be uploaded (returns at once; at most one upload runs)."""
        live = self._live.get(folder)
        if live is None:
            live = self._live[folder] = _LiveMetrics(self, folder)
        live.poke()

    def stop_live(self, folder: Path, timeout: float = 5.0) -> None:
        live = self._live.pop(Path(folder), None)
        if live is not None:
            live.stop(timeout)


def _keep_time(path: Path, modified: Any) -> None:
    """Give a fetched file its S3 ``LastModified`` (an HTTP date, or a datetime) as its mtime, so
    every cache of the store, a fresh one too, sees the same file times (the catalog's build cache
    keys runs by them, and ``bundle.zip`` entries carry them)."""
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    try:
        when = modified if isinstance(modified, datetime) else parsedate_to_datetime(str(modified))
    except (TypeError, ValueError):
        return
    os.utime(path, (when.timestamp(), when.timestamp()))


class _LiveMetrics:
    """A daemon thread that uploads a running run's ``metrics.jsonl`` when poked."""

    def __init__(self, store: TeamStore, folder: Path) -> None:
        from modelkb.publishing.s3_client import S3Location

        self.target = S3Location(
            store.location.bucket, store.location.key(folder.parent.name, folder.name)
        )
        self.path = folder / METRICS_FILE
        self.endpoint_url = store.endpoint_url
        self._wake = threading.Event()
        self._stopping = False
        self._etag: str | None = None
        self._thread = threading.Thread(target=self._run, name="modelkb-live-metrics", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self, timeout: float) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        client = None
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                if client is None:
                    from modelkb.publishing.s3_client import make_client

                    client = make_client(self.endpoint_url)
                self._send(client)
            except Exception as err:  # the network is down: training goes on, the end uploads all
                logger.debug("live metrics upload failed: %s", err)

    def _send(self, client: Any) -> None:
        from modelkb.publishing.s3_writes import put_file

        fd, name = tempfile.mkstemp(prefix=".metrics-live.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        snapshot = Path(name)
        try:
            shutil.copyfile(self.path, snapshot)  # the run appends while it goes up
            self._etag = put_file(
                client, self.target.bucket, self.target.key(METRICS_FILE), snapshot,
                sha256=sha256_file(snapshot), if_match=self._etag, live=True,
            )  # fmt: skip
        finally:
            snapshot.unlink(missing_ok=True)
