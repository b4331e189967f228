"""Checking a bundle's files against the sizes and sha256 sums its ``metadata.json`` lists."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from modelkb.errors import IntegrityError
from modelkb.fsutil import sha256_file
from modelkb.ids import is_id

METADATA_FILE = "metadata.json"
GIB = 1 << 30


@dataclass(frozen=True)
class SizeLimits:
    """The most an archive or a remote bundle may hold before ModelKB refuses to unpack it.

    Attributes:
        max_total_bytes: All files together.
        max_file_bytes: Any single file.
        max_entries: Number of entries (files and folders).
    """

    max_total_bytes: int = 2 * GIB
    max_file_bytes: int = 1 * GIB
    max_entries: int = 10_000


def check_relpath(path: Any) -> str:
    """Return ``path`` if it is a clean relative POSIX path inside a bundle.

    Raises:
        IntegrityError: Absolute, empty, with ``..``, a backslash, a NUL or a drive letter.
    """
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        raise IntegrityError(f"artifact path {path!r} is not a relative POSIX path", path=str(path))
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0] or pure.as_posix() != path:
        raise IntegrityError(f"artifact path {path!r} would leave the bundle folder", path=path)
    if path == METADATA_FILE:
        raise IntegrityError("metadata.json must not list itself as an artifact", path=path)
    return path


def bundle_identity(metadata: Mapping[str, Any]) -> tuple[str, str]:
    """``(project, id)`` of a bundle's metadata, checked so they are safe to build a path from.

    Raises:
        IntegrityError: The id is not a ModelKB id or the project is missing.
    """
    experiment_id = metadata.get("id")
    project = metadata.get("project")
    if not isinstance(experiment_id, str) or not is_id(experiment_id):
        raise IntegrityError(f"metadata.json has no valid experiment id (id={experiment_id!r})")
    if not isinstance(project, str) or not project.strip():
        raise IntegrityError(f"metadata.json of {experiment_id} names no project")
    return project, experiment_id


def artifact_entries(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``artifacts`` list, each with a safe path, an int size and a sha256.

    Raises:
        IntegrityError: The list is missing or an entry is malformed or duplicated.
    """
    artifacts = metadata.get("artifacts")
    if not isinstance(artifacts, list):
        raise IntegrityError(
            "metadata.json has no artifacts list; only sealed bundles can be shared"
        )
    seen: set[str] = set()
    entries = []
    for item in artifacts:
        if not isinstance(item, Mapping):
            raise IntegrityError(f"malformed artifact entry {item!r}")
        path = check_relpath(item.get("path"))
        size, digest = item.get("size"), item.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise IntegrityError(f"artifact {path!r} has no valid size", path=path)
        if not isinstance(digest, str) or len(digest) != 64:
            raise IntegrityError(f"artifact {path!r} has no sha256", path=path)
        if path in seen:
            raise IntegrityError(f"artifact {path!r} is listed twice", path=path)
        seen.add(path)
        entries.append(dict(item))
    return entries


def check_limits(metadata: Mapping[str, Any], limits: SizeLimits, *, source: str) -> None:
    """Refuse a bundle whose listed artifacts exceed ``limits`` (before downloading anything).

    Raises:
        IntegrityError: Too many files, a file or the total too large.
    """
    entries = artifact_entries(metadata)
    if len(entries) + 1 > limits.max_entries:
        raise IntegrityError(
            f"{source} lists {len(entries)} files, more than the limit of {limits.max_entries}",
            hint="Raise the limit with --max-entries if you trust the source.",
        )
    for entry in entries:
        if entry["size"] > limits.max_file_bytes:
            raise IntegrityError(
                f"{source}: {entry['path']} is {entry['size']} bytes, "
                f"over the per-file limit of {limits.max_file_bytes}",
                path=entry["path"],
                hint="Raise the limit with --max-file-size if you trust the source.",
            )
    total = sum(entry["size"] for entry in entries)
    if total > limits.max_total_bytes:
        raise IntegrityError(
            f"{source} holds {total} bytes, over the limit of {limits.max_total_bytes}",
            hint="Raise the limit with --max-size if you trust the source.",
        )


def verify_files(
    folder: str | os.PathLike[str], metadata: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Check every artifact of ``metadata`` is a regular file in ``folder`` with its size and sha256.

    Returns:
        The artifact entries.

    Raises:
        IntegrityError: A file is missing, a link, or differs in size or content.
    """
    root = Path(folder)
    entries = artifact_entries(metadata)
    for entry in entries:
        path = entry["path"]
        full = root / path
        try:
            info = full.lstat()
        except FileNotFoundError as err:
            raise IntegrityError(f"artifact {path} is missing", path=path) from err
        if not stat.S_ISREG(info.st_mode):
            raise IntegrityError(f"artifact {path} is not a regular file", path=path)
        if info.st_size != entry["size"]:
            raise IntegrityError(
                f"artifact {path} is {info.st_size} bytes; metadata.json says {entry['size']}",
                path=path,
                hint="The copy is damaged or was changed; fetch it again.",
            )
        digest = sha256_file(full)
        if digest != entry["sha256"]:
            raise IntegrityError(
                f"artifact {path} has sha256 {digest}; metadata.json says {entry['sha256']}",
                path=path,
                hint="The copy is damaged or was changed; fetch it again.",
            )
    return entries
