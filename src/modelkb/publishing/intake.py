"""Adding a bundle that arrived from elsewhere to the local store, all or nothing.

Files are gathered in a staging folder under ``<store>/.modelkb/incoming/`` (same filesystem as the
store, ignored by the index), checked, and moved into ``<store>/<project>/<id>/`` with one
``os.replace``. A failure at any point removes the staging folder and leaves the store as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelkb.bundle import parse_json, read_bundle
from modelkb.errors import BundleExistsError, IntegrityError
from modelkb.publishing.integrity import METADATA_FILE, bundle_identity, verify_files
from modelkb.store import INDEX_DIR, Store

logger = logging.getLogger(__name__)

INCOMING_DIR = "incoming"


@contextmanager
def staging_area(store: Store) -> Iterator[Path]:
    """A fresh folder inside the store for an incoming bundle; removed on exit whatever happens."""
    parent = store.root / INDEX_DIR / INCOMING_DIR
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="in-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_metadata_file(path: Path) -> dict[str, Any]:
    """Parse an incoming ``metadata.json``.

    Raises:
        IntegrityError: Missing, not JSON or not an object.
    """
    try:
        data = parse_json(path.read_text(encoding="utf-8"), "metadata.json")
    except FileNotFoundError as err:
        raise IntegrityError("no metadata.json: this is not a ModelKB bundle") from err
    except UnicodeDecodeError as err:
        raise IntegrityError("metadata.json is not UTF-8 text") from err
    except ValueError as err:
        raise IntegrityError(str(err)) from err
    if not isinstance(data, dict):
        raise IntegrityError("metadata.json must hold a JSON object")
    return data


def ensure_absent(store: Store, metadata: dict[str, Any]) -> Path:
    """Where the bundle will go; refuses if the store already has this experiment.

    Raises:
        BundleExistsError: The id is already in the store.
        IntegrityError: The metadata's id or project is unusable.
    """
    project, experiment_id = bundle_identity(metadata)
    target = store.bundle_dir(project, experiment_id)
    entry = store.index.get(experiment_id)
    if target.exists() or (entry is not None and Path(entry.path).exists()):
        raise BundleExistsError(
            f"experiment {experiment_id} is already in {store.root}",
            hint=f"Remove it first with `modelkb rm {experiment_id}` to replace it.",
        )
    return target


def install_bundle(store: Store, source: Path, staging: Path) -> Path:
    """Verify the bundle at ``source`` (inside ``staging``) and move it into the store.

    Only ``metadata.json`` and the files it lists are kept; anything else in ``source`` (an export's
    ``serving/`` folder, download caches) is left behind in the staging folder.

    Args:
        store: The local store.
        source: Folder holding ``metadata.json`` and the artifacts.
        staging: The staging folder (from :func:`staging_area`) ``source`` lives in.

    Returns:
        The bundle folder in the store.

    Raises:
        IntegrityError: A file is missing or differs from metadata.json.
        BundleSchemaError: metadata.json does not follow the bundle format.
        BundleExistsError: The store already has this experiment.
    """
    metadata = read_metadata_file(source / METADATA_FILE)
    target = ensure_absent(store, metadata)
    entries = verify_files(source, metadata)
    assembled = staging / ".bundle"
    assembled.mkdir()
    for relpath in [entry["path"] for entry in entries] + [METADATA_FILE]:
        destination = assembled / relpath
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source / relpath, destination)
    read_bundle(assembled)  # schema check of metadata.json
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(assembled, target)
    except OSError as err:  # created meanwhile by someone else: never merge into it
        raise BundleExistsError(f"cannot move the bundle into {target}: {err}") from err
    store.record(target)
    store.after_sealed(target)  # a team store uploads it
    logger.info("added %s to %s", metadata["id"], store)
    return target
