"""Snapshot of the training source: the entry script, the project's own modules, notebook cells."""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

from .fsutil import atomic_write_text
from .redact import redact_text

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 1 << 20
MAX_FILES = 200


def _library_roots() -> list[Path]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    return [Path(root).resolve() for root in roots]


def _is_library(path: Path, roots: list[Path]) -> bool:
    parts = set(path.parts)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return any(root == path or root in path.parents for root in roots)


def entry_script() -> Path | None:
    """The script being run (``python train.py``), if any."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    return path if path.suffix == ".py" and path.is_file() else None


def notebook_cells() -> list[str] | None:
    """The executed cells of the running IPython/Jupyter kernel, if there is one."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        shell = ipython.get_ipython()
    except AttributeError:
        return None
    if shell is None:
        return None
    history = shell.user_ns.get("In") or []
    return [cell for cell in history if isinstance(cell, str) and cell.strip()]


def project_modules(project_root: Path) -> list[Path]:
    """Source files of imported modules that live under ``project_root`` (not libraries).

    Runs over every imported module (thousands once TensorFlow is loaded), so it compares path
    strings first and touches the filesystem only for the few candidates left.
    """
    roots = _library_roots()
    prefixes = {os.path.join(str(project_root), ""), os.path.join(os.path.realpath(project_root), "")}
    found: set[Path] = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not isinstance(file, str) or not file.endswith(".py"):
            continue
        absolute = file if os.path.isabs(file) else os.path.abspath(file)
        if not absolute.startswith(tuple(prefixes)) or "-packages" + os.sep in absolute:
            continue
        path = Path(absolute).resolve()
        if _is_library(path, roots):
            continue
        found.add(path)
    return sorted(found)


def snapshot_code(dest: Path, *, extra_files: list[str | os.PathLike[str]] | None = None) -> dict[str, Any]:
    """Copy the training source into ``dest`` (redacted) and describe what was taken.

    Returns:
        ``{"entry": relpath | None, "files": [relpaths], "notebook": bool, "skipped": [...]}``.
    """
    script = entry_script()
    project_root = (script.parent if script else Path.cwd()).resolve()
    files: list[Path] = []
    if script is not None:
        files.append(script)
    files.extend(path for path in project_modules(project_root) if path not in files)
    files.extend(Path(path).resolve() for path in extra_files or [])
    taken: list[str] = []
    skipped: list[str] = []
    for path in files[:MAX_FILES]:
        try:
            rel = path.relative_to(project_root).as_posix()
        except ValueError:
            rel = path.name
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                skipped.append(f"{rel}: larger than {MAX_FILE_BYTES} bytes")
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            skipped.append(f"{rel}: {err}")
            continue
        atomic_write_text(dest / rel, redact_text(text))
        taken.append(rel)
    skipped.extend(f"{path}: over the {MAX_FILES}-file limit" for path in files[MAX_FILES:])
    cells = notebook_cells() if script is None else None
    if cells:
        text = "\n\n".join(f"# %% [cell {n}]\n{cell}" for n, cell in enumerate(cells, 1))
        atomic_write_text(dest / "notebook_cells.py", redact_text(text) + "\n")
        taken.append("notebook_cells.py")
    entry = taken[0] if script is not None and taken else ("notebook_cells.py" if cells else None)
    return {"entry": entry, "files": taken, "notebook": bool(cells), "skipped": skipped}
