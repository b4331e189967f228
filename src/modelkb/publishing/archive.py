"""Writing zip/tar archives, and unpacking untrusted ones safely.

:func:`safe_extract` inspects every entry before writing a byte: an entry that would land outside
the target (``../``, an absolute path, a drive letter), a symlink, hardlink, device or FIFO, an
encrypted zip entry, a duplicate name, too many entries or too many bytes (declared or actually
decompressed) is refused with :class:`~modelkb.errors.UnsafeArchiveError`. Files are created with
``O_EXCL`` and mode 0644, so nothing is overwritten and no permission bits are carried over.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from modelkb.errors import UnsafeArchiveError
from modelkb.fsutil import atomic_target
from modelkb.publishing.integrity import SizeLimits

_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Entry:
    name: str
    is_dir: bool
    size: int


def write_archive(out: Path, files: Iterable[tuple[str, Path]], *, fmt: str = "zip") -> Path:
    """Atomically write ``files`` (``(name in archive, source file)``) as a zip or ``tar.gz``.

    Raises:
        ValueError: Unknown ``fmt``.
    """
    if fmt not in ("zip", "tar.gz"):
        raise ValueError(f"Expected fmt 'zip' or 'tar.gz'. Received: fmt={fmt!r}")
    with atomic_target(out) as tmp:
        if fmt == "zip":
            with zipfile.ZipFile(
                tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6
            ) as archive:
                for name, source in files:
                    archive.write(source, name)
        else:
            with tarfile.open(tmp, "w:gz") as archive:
                for name, source in files:
                    info = archive.gettarinfo(str(source), arcname=name)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mode = 0o644
                    with open(source, "rb") as handle:
                        archive.addfile(info, handle)
    return out


def _clean_name(raw: str, archive: str) -> tuple[str, bool]:
    """``(normalised name, is a folder)``; refuses names that could escape the target."""
    is_dir = raw.endswith("/")
    name = raw.rstrip("/")
    while name.startswith("./"):
        name = name[2:]
    if not name or name == ".":
        return "", True
    if "\x00" in name or "\\" in name:
        raise UnsafeArchiveError(
            f"entry {raw!r} has a backslash or NUL in its name", archive=archive, member=raw
        )
    pure = PurePosixPath(name)
    if name.startswith("/") or pure.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"entry {raw!r} has an absolute path", archive=archive, member=raw)
    if ".." in pure.parts:
        raise UnsafeArchiveError(
            f"entry {raw!r} would be written outside the target folder", archive=archive, member=raw
        )
    return pure.as_posix(), is_dir


def _zip_entries(archive: zipfile.ZipFile, label: str) -> list[tuple[_Entry, zipfile.ZipInfo]]:
    entries = []
    for info in archive.infolist():
        name, is_dir = _clean_name(info.filename, label)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            what = "a symlink" if kind == stat.S_IFLNK else "a device, FIFO or socket"
            raise UnsafeArchiveError(
                f"entry {info.filename!r} is {what}", archive=label, member=info.filename
            )
        if info.flag_bits & 0x1:
            raise UnsafeArchiveError(
                f"entry {info.filename!r} is encrypted", archive=label, member=info.filename
            )
        is_dir = is_dir or info.is_dir() or kind == stat.S_IFDIR
        if name:
            entries.append((_Entry(name, is_dir, 0 if is_dir else info.file_size), info))
    return entries


def _tar_entries(archive: tarfile.TarFile, label: str) -> list[tuple[_Entry, tarfile.TarInfo]]:
    entries = []
    for info in archive.getmembers():
        name, _ = _clean_name(info.name, label)
        if info.issym() or info.islnk():
            raise UnsafeArchiveError(
                f"entry {info.name!r} is a {'symlink' if info.issym() else 'hardlink'} (to {info.linkname!r})",
                archive=label,
                member=info.name,
            )
        if not (info.isreg() or info.isdir()):
            raise UnsafeArchiveError(
                f"entry {info.name!r} is a device, FIFO or other special file",
                archive=label,
                member=info.name,
            )
        if name:
            entries.append((_Entry(name, info.isdir(), 0 if info.isdir() else info.size), info))
    return entries


def _check(entries: list[_Entry], limits: SizeLimits, label: str) -> None:
    if len(entries) > limits.max_entries:
        raise UnsafeArchiveError(
            f"has {len(entries)} entries, more than the limit of {limits.max_entries}",
            archive=label,
            hint="Raise the limit with --max-entries if you trust the archive.",
        )
    seen: dict[str, bool] = {}
    total = 0
    for entry in entries:
        if entry.name in seen and not (entry.is_dir and seen[entry.name]):
            raise UnsafeArchiveError(
                f"entry {entry.name!r} appears twice", archive=label, member=entry.name
            )
        seen[entry.name] = entry.is_dir
        if entry.size > limits.max_file_bytes:
            raise UnsafeArchiveError(
                f"entry {entry.name!r} is {entry.size} bytes, over the per-file limit of {limits.max_file_bytes}",
                archive=label,
                member=entry.name,
                hint="Raise the limit with --max-file-size if you trust the archive.",
            )
        total += entry.size
    if total > limits.max_total_bytes:
        raise UnsafeArchiveError(
            f"unpacks to {total} bytes, over the limit of {limits.max_total_bytes}",
            archive=label,
            hint="Raise the limit with --max-size if you trust the archive.",
        )
    for entry in entries:  # a file may not also be used as a folder (``a`` and ``a/b``)
        for parent in PurePosixPath(entry.name).parents:
            if parent.as_posix() != "." and seen.get(parent.as_posix()) is False:
                raise UnsafeArchiveError(
                    f"entry {entry.name!r} is inside the file {parent.as_posix()!r}",
                    archive=label,
                    member=entry.name,
                )


def _copy_limited(
    source: IO[bytes],
    target: Path,
    *,
    entry: _Entry,
    budget: list[int],
    limits: SizeLimits,
    label: str,
) -> None:
    """Stream one member into a new file, stopping as soon as a limit is passed (lying headers)."""
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as handle:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            written += len(chunk)
            budget[0] += len(chunk)
            if (
                written > max(entry.size, 0)
                or written > limits.max_file_bytes
                or budget[0] > limits.max_total_bytes
            ):
                raise UnsafeArchiveError(
                    f"entry {entry.name!r} unpacks to more bytes than it declares or the limits allow",
                    archive=label,
                    member=entry.name,
                )
            handle.write(chunk)


def _within(root: Path, name: str) -> Path:
    target = root / name
    if os.path.commonpath([root, target.resolve()]) != str(root):
        raise UnsafeArchiveError(
            f"entry {name!r} resolves outside the target folder", archive=str(root), member=name
        )
    return target


def safe_extract(
    archive_path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    limits: SizeLimits | None = None,
) -> list[str]:
    """Unpack a zip or tar (optionally gz/bz2/xz) archive into the empty folder ``dest``.

    Every entry is checked before anything is written; see the module docstring for what is refused.

    Returns:
        The names of the files written, relative to ``dest``.

    Raises:
        UnsafeArchiveError: The archive breaks a rule or a limit.
        FileNotFoundError: ``archive_path`` does not exist.
    """
    limits = limits or SizeLimits()
    source = Path(archive_path)
    label = str(source)
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if not source.is_file():
        raise FileNotFoundError(f"no archive at {source}")
    if zipfile.is_zipfile(source):
        try:
            with zipfile.ZipFile(source) as archive:
                zip_entries = _zip_entries(archive, label)
                _check([entry for entry, _ in zip_entries], limits, label)
                return list(
                    _write(
                        root,
                        ((entry, lambda i=info: archive.open(i)) for entry, info in zip_entries),
                        limits,
                        label,
                    )
                )
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as err:
            raise UnsafeArchiveError(
                f"is a damaged or unsupported zip archive ({err})", archive=label
            ) from err
    try:
        tar = tarfile.open(source, "r:*")  # noqa: SIM115 - closed by the with-block below
    except tarfile.TarError as err:
        raise UnsafeArchiveError("is neither a zip nor a tar archive", archive=label) from err
    with tar:
        try:
            tar_entries = _tar_entries(tar, label)
        except (tarfile.TarError, EOFError, OSError) as err:
            raise UnsafeArchiveError(f"is a damaged tar archive ({err})", archive=label) from err
        _check([entry for entry, _ in tar_entries], limits, label)
        try:
            return list(
                _write(
                    root,
                    ((entry, lambda i=info: tar.extractfile(i)) for entry, info in tar_entries),
                    limits,
                    label,
                )
            )
        except (tarfile.TarError, EOFError, zlib.error) as err:
            raise UnsafeArchiveError(f"is a damaged tar archive ({err})", archive=label) from err


def _write(
    root: Path, items: Iterator[tuple[_Entry, object]], limits: SizeLimits, label: str
) -> Iterator[str]:
    budget = [0]
    for entry, opener in items:
        target = _within(root, entry.name)
        if entry.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _within(root, entry.name)  # the parents just made are plain folders, but check again
        stream = opener()  # type: ignore[operator]
        if stream is None:
            raise UnsafeArchiveError(
                f"entry {entry.name!r} has no data", archive=label, member=entry.name
            )
        with stream:
            _copy_limited(stream, target, entry=entry, budget=budget, limits=limits, label=label)
        yield entry.name
