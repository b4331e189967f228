"""``modelkb export`` / ``modelkb import``: one archive file for people without ModelKB, and back.

Layout of an export (``<project-slug>-<id>.zip``)::

    <project-slug>-<id>/
      EXPORT.md          how to check, run and re-import it
      SHA256SUMS         ``sha256sum -c SHA256SUMS`` checks every bundle file
      metadata.json, README.md, model.onnx, code/, requirements.lock, ...   the bundle itself
      serving/           handler.py, predict.py, Dockerfile, template.yaml, README.md (if available)
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modelkb.bundle import Bundle
from modelkb.errors import IntegrityError
from modelkb.fsutil import atomic_write_text
from modelkb.ids import slugify
from modelkb.publishing.archive import safe_extract, write_archive
from modelkb.publishing.intake import install_bundle, staging_area
from modelkb.publishing.integrity import METADATA_FILE, SizeLimits, verify_files
from modelkb.publishing.serving import SERVING_DIR, render_serving
from modelkb.store import Store

logger = logging.getLogger(__name__)

FORMATS = {"zip": ".zip", "tar.gz": ".tar.gz"}


@dataclass
class ExportResult:
    """An archive written by :func:`export_bundle`.

    Attributes:
        path: The archive file.
        files: Names inside the archive.
        serving_note: Why the serving files are missing, or ``None`` when they are included.
    """

    path: Path
    files: list[str]
    serving_note: str | None


def default_archive_name(bundle: Bundle, fmt: str = "zip") -> str:
    """``<project-slug>-<id>.zip``."""
    return f"{slugify(bundle.project)}-{bundle.id}{FORMATS[fmt]}"


def _export_readme(bundle: Bundle, *, top: str, serving: list[str], note: str | None) -> str:
    meta = bundle.metadata
    lines = [
        f"# {meta.get('name', bundle.id)} (exported from ModelKB)",
        "",
        f"Experiment `{bundle.id}` of project *{bundle.project}*. `README.md` is the model card;",
        "`metadata.json` records everything about the run (parameters, metrics, environment) and",
        "lists every file with its size and sha256.",
        "",
        "## Check the files",
        "",
        "```bash",
        f"cd {top} && sha256sum -c SHA256SUMS",
        "```",
        "",
        "## Run the model",
        "",
    ]
    if serving:
        lines += [
            "`serving/` holds a ready inference package (see `serving/README.md`):",
            "",
            "```bash",
            "cd serving",
            "pip install -r requirements.txt",
            "python predict.py model.onnx INPUT      # one prediction from the command line",
            "```",
            "",
            "`serving/handler.py` is an AWS Lambda handler (`POST /predict`, `GET /health`, `GET /metadata`),",
            "`serving/Dockerfile` builds its container image and `serving/template.yaml` deploys it with SAM.",
        ]
    else:
        lines += [
            "The model is `model.onnx` (any ONNX runtime: `pip install onnxruntime`) and/or the native weights.",
            f"No serving package is included ({note or 'not generated'}).",
        ]
    lines += [
        "",
        "## Re-create the environment",
        "",
        "```bash",
        "pip install -r requirements.lock   # the exact versions the run used",
        "```",
        "",
        "The training code is in `code/`.",
        "",
        "## Add it to a ModelKB store",
        "",
        "```bash",
        "modelkb import THIS-ARCHIVE",
        "```",
        "",
    ]
    return "\n".join(lines)


def export_bundle(
    bundle: Bundle, out: Path, *, fmt: str = "zip", include_serving: bool = True
) -> ExportResult:
    """Write ``bundle`` (checked against its metadata first) as an archive at ``out``.

    Raises:
        IntegrityError: The bundle's files no longer match its metadata.json.
    """
    if not bundle.sealed:
        raise IntegrityError(f"{bundle.id} is still running; only finished runs can be exported")
    entries = verify_files(bundle.path, bundle.metadata)
    top = f"{slugify(bundle.project)}-{bundle.id}"
    with tempfile.TemporaryDirectory(prefix="modelkb-export-") as tmp:
        extra = Path(tmp)
        serving_files: list[str] = []
        note: str | None = "not requested"
        if include_serving:
            serving_files, note = render_serving(bundle.path, bundle.metadata, extra / SERVING_DIR)
        atomic_write_text(
            extra / "EXPORT.md", _export_readme(bundle, top=top, serving=serving_files, note=note)
        )
        sums = "".join(f"{entry['sha256']}  {entry['path']}\n" for entry in entries)
        atomic_write_text(extra / "SHA256SUMS", sums)
        files = [(f"{top}/{entry['path']}", bundle.path / entry["path"]) for entry in entries]
        files.append((f"{top}/{METADATA_FILE}", bundle.path / METADATA_FILE))
        files += [
            (f"{top}/EXPORT.md", extra / "EXPORT.md"),
            (f"{top}/SHA256SUMS", extra / "SHA256SUMS"),
        ]
        files += [
            (f"{top}/{SERVING_DIR}/{name}", extra / SERVING_DIR / name) for name in serving_files
        ]
        write_archive(out, files, fmt=fmt)
    logger.info("exported %s to %s", bundle.id, out)
    return ExportResult(
        path=out, files=[name for name, _ in files], serving_note=None if serving_files else note
    )


def _bundle_root(unpacked: Path, archive: Path) -> Path:
    if (unpacked / METADATA_FILE).is_file():
        return unpacked
    candidates = [p for p in unpacked.iterdir() if p.is_dir() and (p / METADATA_FILE).is_file()]
    if len(candidates) == 1:
        return candidates[0]
    raise IntegrityError(
        f"{archive} holds no ModelKB bundle (no metadata.json at its top or in one top folder)",
        hint="Only archives written by `modelkb export` (or a zipped bundle folder) can be imported.",
    )


def import_archive(store: Store, archive: Path, *, limits: SizeLimits | None = None) -> Path:
    """Add the bundle in ``archive`` to ``store``: unpack safely, verify every sha256, move into place.

    Returns:
        The new bundle folder.

    Raises:
        UnsafeArchiveError: The archive breaks a safety rule or limit (nothing is kept).
        IntegrityError: A file is missing or differs from metadata.json.
        BundleExistsError: The store already has this experiment.
    """
    if not archive.is_file():
        raise FileNotFoundError(f"no archive at {archive}")
    with staging_area(store) as staging:
        unpacked = staging / "unpacked"
        safe_extract(archive, unpacked, limits)
        return install_bundle(store, _bundle_root(unpacked, archive), staging)
