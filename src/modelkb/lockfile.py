"""``requirements.lock``: the exact installed distributions, read with importlib.metadata (fast)."""

from __future__ import annotations

import platform
import re
import sys
from importlib import metadata
from pathlib import Path

from .fsutil import atomic_write_text
from .ids import utc_now


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> list[tuple[str, str]]:
    """``(name, version)`` of every importable distribution, PEP 503-normalised, first on sys.path wins."""
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if not name or not dist.version:
            continue
        seen.setdefault(_normalise(name), dist.version)
    return sorted(seen.items())


def render_lockfile(dists: list[tuple[str, str]]) -> str:
    """A pip-installable ``name==version`` file with a header saying where it came from."""
    header = [
        "# requirements.lock written by modelkb",
        f"# python {platform.python_version()} on {platform.system()} {platform.machine()}, {utc_now()}",
        "# every installed distribution (pip and setuptools included); local versions such as +cpu are kept",
    ]
    return "\n".join([*header, *(f"{name}=={version}" for name, version in dists)]) + "\n"


def write_lockfile(path: str | Path) -> Path:
    """Write the lockfile for the running interpreter."""
    target = Path(path)
    atomic_write_text(target, render_lockfile(installed_distributions()))
    return target


__all__ = ["installed_distributions", "render_lockfile", "write_lockfile", "sys"]
