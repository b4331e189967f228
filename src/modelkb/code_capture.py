"""Snapshot of the training source: the entry script, the project's own modules, notebook cells."""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkb.fsutil import atomic_write_bytes
from modelkb.redact import redact_text

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 1 << 20
MAX_FILES = 200
NOTEBOOK_FILE = "notebook_cells.py"


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

    Runs over every imported module (thousands once TensorFlow is loaded), so it reads ``__file__``
    from the module's namespace (no lazy-loader ``__getattr__``), compares path strings first and
    touches the filesystem only for the few candidates left.
    """
    roots = _library_roots()
    prefixes = (
        os.path.join(str(project_root), ""),
        os.path.join(os.path.realpath(project_root), ""),
    )
    library_marker = "-packages" + os.sep
    found: set[Path] = set()
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        file = namespace.get("__file__") if isinstance(namespace, dict) else None
        if not isinstance(file, str) or not file.endswith(".py"):
            continue
        if not file.startswith(prefixes):
            if os.path.isabs(file) or not os.path.abspath(file).startswith(prefixes):
                continue
            file = os.path.abspath(file)
        if library_marker in file:
            continue
        path = Path(file).resolve()
        if _is_library(path, roots):
            continue
        found.add(path)
    return sorted(found)


@dataclass
class CodeSnapshot:
    """The training source read into memory (redacted), to be written into a bundle's ``code/``.

    Attributes:
        files: ``(relative path, text)`` pairs, the entry script first.
        info: The bundle's ``code`` section: ``{"entry", "files", "notebook", "skipped"}``.
    """

    files: list[tuple[str, str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def collect_code(*, extra_files: list[str | os.PathLike[str]] | None = None) -> CodeSnapshot:
    """Read the training source: the entry script, the project's own modules or the notebook cells.

    Nothing is written: :func:`write_code` puts the snapshot into a bundle.
    """
    script = entry_script()
    project_root = (script.parent if script else Path.cwd()).resolve()
    paths: list[Path] = []
    if script is not None:
        paths.append(script)
    paths.extend(path for path in project_modules(project_root) if path not in paths)
    paths.extend(Path(path).resolve() for path in extra_files or [])
    snapshot = CodeSnapshot()
    skipped: list[str] = []
    for path in paths[:MAX_FILES]:
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
        snapshot.files.append((rel, redact_text(text)))
    skipped.extend(f"{path}: over the {MAX_FILES}-file limit" for path in paths[MAX_FILES:])
    cells = notebook_cells() if script is None else None
    if cells:
        text = "\n\n".join(f"# %% [cell {n}]\n{cell}" for n, cell in enumerate(cells, 1))
        snapshot.files.append((NOTEBOOK_FILE, redact_text(text) + "\n"))
    taken = [rel for rel, _ in snapshot.files]
    entry = taken[0] if script is not None and taken else (NOTEBOOK_FILE if cells else None)
    snapshot.info = {"entry": entry, "files": taken, "notebook": bool(cells), "skipped": skipped}
    return snapshot


def write_code(snapshot: CodeSnapshot, dest: Path) -> dict[str, Any]:
    """Write ``snapshot`` under ``dest`` and return its ``code`` section.

    Not fsynced: a killed process loses nothing, and ``metadata.json`` (written durably at the end)
    is what makes a bundle complete.
    """
    for rel, text in snapshot.files:
        atomic_write_bytes(dest / rel, text.encode("utf-8"), durable=False)
    return dict(snapshot.info)
