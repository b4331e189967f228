"""The SQLite index of a store: a cache of every bundle's flattened metadata for fast queries.

The bundles are the truth; the index can always be dropped and rebuilt from them
(``modelkb reindex``). Many processes may write at once: WAL mode, a long busy timeout and one
short ``BEGIN IMMEDIATE`` transaction per bundle.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from modelkb.fields import flatten
from modelkb.ids import slugify
from modelkb.query import FIELDS_DDL, Query, field_rows

logger = logging.getLogger(__name__)

INDEX_VERSION = 3  # 3: bundle paths are relative to the store root

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info(k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS experiments(
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    name TEXT,
    status TEXT,
    created TEXT,
    path TEXT NOT NULL,
    sealed INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    flat TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS experiments_project ON experiments(project);
CREATE TABLE IF NOT EXISTS keys(key TEXT PRIMARY KEY);
"""


@dataclass(frozen=True)
class IndexedRun:
    """One row of the index: where a bundle is and its flattened metadata."""

    id: str
    project: str
    path: str
    sealed: bool
    mtime_ns: int
    flat: dict[str, Any]


class Index:
    """SQLite index at ``<store>/.modelkb/index.sqlite``.

    Bundle paths are kept relative to ``root`` (``<project>/<id>``) and handed out absolute, so a
    store folder that is copied, moved, restored or synced keeps a valid index.
    """

    def __init__(self, path: str | Path, root: str | Path) -> None:
        self.path = Path(path)
        self.root = Path(root)
        self.persistent = True
        try:
            self._conn = self._open_file()
        except (OSError, sqlite3.OperationalError) as err:
            # A read-only store (a mounted share, a CD, a container layer) is still readable: the
            # index lives in memory for this process, filled from the saved one when there is one.
            logger.warning(
                "the store at %s is read-only (%s): its index is kept in memory and not saved",
                self.root,
                getattr(err, "strerror", None) or err,
            )
            self.persistent = False
            self._conn = self._open_memory()
        self._conn.executescript(_SCHEMA + ";\n".join(FIELDS_DDL) + ";")
        self._check_version()

    def _open_file(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")  # can this process write here at all?
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            conn.close()
            raise
        return conn

    def _open_memory(self) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if self.path.is_file():
            try:  # immutable: no lock, journal or -shm file is needed to read it
                saved = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True)
                saved.backup(conn)
                saved.close()
            except sqlite3.Error:
                pass  # unreadable: the bundles are the truth, the store rescans them
        return conn

    def _check_version(self) -> None:
        """An index written by another version is dropped and rebuilt from the bundles."""
        row = self._conn.execute("SELECT v FROM info WHERE k = 'version'").fetchone()
        if row is not None and row[0] == str(INDEX_VERSION):
            return
        with self.transaction() as conn:
            if row is not None:
                conn.execute("DELETE FROM fields")
                conn.execute("DELETE FROM experiments")
                conn.execute("DELETE FROM keys")
            conn.execute(
                "INSERT OR REPLACE INTO info(k, v) VALUES ('version', ?)", (str(INDEX_VERSION),)
            )

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken eagerly so concurrent writers queue instead of failing."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def relative(self, path: str | Path) -> str:
        """The store-relative form of a bundle folder (``<project>/<id>``)."""
        folder = Path(path)
        try:
            return folder.relative_to(self.root).as_posix()
        except ValueError:
            return PurePosixPath(*folder.parts[-2:]).as_posix()

    def _upsert(
        self,
        conn: sqlite3.Connection,
        metadata: dict[str, Any],
        path: str,
        sealed: bool,
        mtime_ns: int,
    ) -> None:
        path = self.relative(path)
        flat = flatten(metadata)
        row = conn.execute(
            "SELECT rowid FROM experiments WHERE id = ?", (metadata["id"],)
        ).fetchone()
        values = (
            metadata["project"],
            metadata.get("name"),
            metadata.get("status"),
            metadata.get("created"),
            path,
            int(sealed),
            mtime_ns,
            json.dumps(flat, ensure_ascii=False, default=str),
        )
        if row is None:
            cur = conn.execute(
                "INSERT INTO experiments(project, name, status, created, path, sealed, mtime_ns, flat, id)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (*values, metadata["id"]),
            )
            rowid = cur.lastrowid
        else:
            rowid = row[0]
            conn.execute(
                "UPDATE experiments SET project=?, name=?, status=?, created=?, path=?, sealed=?, mtime_ns=?, flat=?"
                " WHERE rowid=?",
                (*values, rowid),
            )
            conn.execute("DELETE FROM fields WHERE exp = ?", (rowid,))
        rows = field_rows(flat)
        conn.executemany(
            "INSERT INTO fields(exp, key, num, txt) VALUES (?,?,?,?)", [(rowid, *r) for r in rows]
        )
        conn.executemany("INSERT OR IGNORE INTO keys(key) VALUES (?)", [(r[0],) for r in rows])

    def upsert_many(self, entries: Iterable[tuple[dict[str, Any], str, bool, int]]) -> int:
        """Add or replace many entries in one transaction; returns how many."""
        count = 0
        with self.transaction() as conn:
            for metadata, path, sealed, mtime_ns in entries:
                self._upsert(conn, metadata, path, sealed, mtime_ns)
                count += 1
        return count

    def remove(self, experiment_ids: Iterable[str]) -> None:
        """Drop entries by id."""
        with self.transaction() as conn:
            for experiment_id in experiment_ids:
                row = conn.execute(
                    "SELECT rowid FROM experiments WHERE id = ?", (experiment_id,)
                ).fetchone()
                if row:
                    conn.execute("DELETE FROM fields WHERE exp = ?", (row[0],))
                    conn.execute("DELETE FROM experiments WHERE rowid = ?", (row[0],))

    def clear(self) -> None:
        """Forget everything (before a rebuild)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM fields")
            conn.execute("DELETE FROM experiments")
            conn.execute("DELETE FROM keys")

    def states(self) -> dict[str, tuple[str, bool, int]]:
        """``id -> (store-relative path, sealed, mtime_ns)`` for every entry (to sync with the disk)."""
        cur = self._conn.execute("SELECT id, path, sealed, mtime_ns FROM experiments")
        return {row[0]: (row[1], bool(row[2]), row[3]) for row in cur}

    def known_keys(self) -> list[str]:
        """Every flattened field key present in at least one entry."""
        return [row[0] for row in self._conn.execute("SELECT key FROM keys")]

    def ids_with_prefix(self, prefix: str, limit: int = 50) -> list[str]:
        """Ids starting with ``prefix`` (case-insensitive)."""
        prefix = prefix.lower()
        cur = self._conn.execute(
            "SELECT id FROM experiments WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
            (prefix, prefix + "\uffff", limit),
        )
        return [row[0] for row in cur]

    def get(self, experiment_id: str) -> IndexedRun | None:
        cur = self._conn.execute(
            "SELECT id, project, path, sealed, mtime_ns, flat FROM experiments WHERE id = ?",
            (experiment_id,),
        )
        row = cur.fetchone()
        return None if row is None else self._row(row)

    def search(self, query: Query | None = None, *, project: str | None = None) -> list[IndexedRun]:
        """Entries matching ``query`` (all when ``None``), newest first.

        Raises:
            QuerySyntaxError: The query names a field no experiment has.
        """
        where, params = ["1"], []
        if query is not None:
            sql, qparams = query.sql(self.known_keys())
            where.append(f"({sql})")
            params.extend(qparams)
        if project is not None:
            where.append("(e.project = ? COLLATE NOCASE OR e.path LIKE ?)")
            params.extend([project, f"{slugify(project)}/%"])
        cur = self._conn.execute(
            "SELECT e.id, e.project, e.path, e.sealed, e.mtime_ns, e.flat FROM experiments e"
            f" WHERE {' AND '.join(where)} ORDER BY e.id DESC",
            params,
        )
        return [self._row(row) for row in cur]

    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]

    def _row(self, row: tuple[Any, ...]) -> IndexedRun:
        return IndexedRun(
            row[0], row[1], str(self.root / row[2]), bool(row[3]), row[4], json.loads(row[5])
        )
