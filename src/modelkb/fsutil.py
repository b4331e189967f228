"""Atomic file writes: a reader never sees a half-written file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_TEMP_NAME = re.compile(r"\..+\.tmp|\.[^/]+-[a-z0-9_]{8}\.[A-Za-z0-9]+")


def is_temp_file(name: str) -> bool:
    """True for the name of a file being written: ``.<name>.XXXXXXXX.tmp`` (the writers here) or
    ``.<stem>-XXXXXXXX.<suffix>`` (a framework's writer that needs the suffix, e.g. Keras'
    ``model.export``), and any ``*.tmp``. A kill can leave one behind; it is never an artifact."""
    return name.endswith(".tmp") or _TEMP_NAME.fullmatch(name) is not None


@contextlib.contextmanager
def atomic_target(
    path: str | os.PathLike[str],
    *,
    mode: int = 0o644,
    durable: bool = True,
    keep_suffix: bool = False,
) -> Iterator[Path]:
    """A temporary path beside ``path`` for any writer (a zip, an exporter); moved into place on success.

    The one way a file is written in place: the name follows :func:`is_temp_file` (so a kill never
    leaves something taken for an artifact), the file gets ``mode`` and, with ``durable``, an fsync
    before ``os.replace``; on any failure the temporary file is removed. ``keep_suffix`` keeps the
    target's suffix for writers that insist on it (Keras' ``model.save`` wants ``.keras``).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if keep_suffix:
        fd, name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.stem}-", suffix=target.suffix
        )
    else:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        if durable:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644, durable: bool = True
) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    ``durable=False`` skips the ``fsync``: readers still never see a torn file, and a killed process
    loses nothing; only a power cut could (used for the transient ``run.json``).
    """
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except FileNotFoundError:  # create the folder only when it is missing (a mkdir per write costs)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_safe(value: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) with ``None``, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def dumps_json(obj: Any) -> str:
    """The house JSON form: sorted keys, two-space indent, UTF-8, trailing newline."""
    return (
        json.dumps(_json_safe(obj), indent=2, sort_keys=True, ensure_ascii=False, default=str)
        + "\n"
    )


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, durable: bool = True) -> None:
    """Atomically write ``obj`` as house-style JSON."""
    atomic_write_bytes(path, dumps_json(obj).encode("utf-8"), durable=durable)


def jsonl_line(obj: Any) -> str:
    """``obj`` as one JSON line (NaN and infinities become ``null``)."""
    try:  # the C encoder, no copy: the common case
        text = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str, allow_nan=False)
    except (ValueError, TypeError):  # a NaN or an infinity, or a key that is not a plain scalar
        text = json.dumps(_json_safe(obj), sort_keys=True, ensure_ascii=False, default=str)
    return text + "\n"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
