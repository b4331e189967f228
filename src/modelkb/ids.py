"""Experiment ids: lowercase ULIDs, unique across processes and sortable by creation time."""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timezone

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
ID_LENGTH = 26
ID_PATTERN = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")


def new_id(now_ms: int | None = None) -> str:
    """Return a new 26-character id: 48 bits of milliseconds then 80 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(ID_LENGTH):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_id(text: str) -> bool:
    """Whether ``text`` is a well-formed experiment id."""
    return bool(ID_PATTERN.match(text))


def id_time(experiment_id: str) -> datetime:
    """The creation time encoded in an id."""
    value = 0
    for char in experiment_id[:10]:
        value = value * 32 + _ALPHABET.index(char)
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


def slugify(text: str) -> str:
    """A filesystem- and URL-safe slug of a project title (``"Digits CNN!"`` -> ``"digits-cnn"``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:64] or "project"


def auto_name(project: str, experiment_id: str) -> str:
    """The default run name: project slug, start time and the id's last four characters."""
    stamp = id_time(experiment_id).strftime("%Y%m%d-%H%M%S")
    return f"{slugify(project)}-{stamp}-{experiment_id[-4:]}"


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
