"""The generated inference package (handler, predict.py, Dockerfile, SAM template), when available.

Publishing ships it next to the bundle as ``serving/``. The generator lives in
``modelkb.serverless`` and needs onnxruntime; it is looked up at call time, and when it is absent
or cannot package this run the bundle is shared without it and the reason is returned as a note.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from modelkb.errors import ModelKBError

logger = logging.getLogger(__name__)

SERVING_DIR = "serving"


def render_serving(
    bundle_path: Path, metadata: dict[str, Any], out_dir: Path
) -> tuple[list[str], str | None]:
    """Render the inference package of a run into ``out_dir``.

    Returns:
        ``(file names relative to out_dir, None)`` on success, or ``([], note)`` saying why not.
    """
    try:
        module = importlib.import_module("modelkb.serverless.render")
    except ImportError as err:
        return [], f"serving files skipped: the serverless generator is not available ({err})"
    render = getattr(module, "render_package", None)
    if render is None:
        return [], "serving files skipped: modelkb.serverless.render has no render_package"
    try:
        render(bundle_path, metadata, out_dir)
    except (ModelKBError, ImportError, OSError, ValueError) as err:
        logger.info("no serving package for %s: %s", metadata.get("id"), err)
        return [], f"serving files skipped: {err}"
    files = sorted(
        p.relative_to(out_dir).as_posix()
        for p in out_dir.rglob("*")
        if p.is_file() and not p.is_symlink()
    )
    return files, None
