"""Collect a store's bundles into the catalog's data model.

Reads bundles directly (``metadata.json`` is the truth), so the build never depends on the SQLite
index being current: the walk is the store's own :meth:`~modelkb.store.Store.scan`. A bundle that
cannot be read or used is reported as a :class:`~modelkb.store.Problem` and skipped. Each
experiment is summarised as a :class:`ExperimentSummary`: everything the dashboard, project tables
and search index need, small enough to cache between builds.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from modelkb.bundle import METADATA_FILE, read_bundle
from modelkb.errors import BundleError
from modelkb.fields import flatten
from modelkb.ids import slugify
from modelkb.query import field_rows
from modelkb.store import Problem, Store

logger = logging.getLogger(__name__)

SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
"""Experiment ids become folder names in the site: nothing else is accepted."""

RESERVED_SLUGS = frozenset({"index", "assets", "search"})
"""Project slugs that would collide with the catalog's own pages."""

_MAX_SAFE_INT = 2**53


@dataclass
class ExperimentSummary:
    """What the catalog knows about one experiment without re-reading its bundle.

    Attributes:
        id: Experiment id.
        project: Project title.
        slug: Project slug (the store folder name, made unique against :data:`RESERVED_SLUGS`).
        name: Run name.
        path: The bundle folder.
        stamp: ``[mtime_ns, size]`` of ``metadata.json`` (``None`` for an unsealed run).
        cells: ``{flat key: cell}``, the flat view encoded for JavaScript (see :func:`encode_cell`).
        display: Values shown but not queryable (input/output shape).
        has_model: Whether the bundle holds ``model.onnx``.
    """

    id: str
    project: str
    slug: str
    name: str
    path: str
    stamp: list[int] | None
    cells: dict[str, Any]
    display: dict[str, str] = field(default_factory=dict)
    has_model: bool = False

    def text(self, key: str) -> str | None:
        """The text form of a flat value, or ``None`` when missing."""
        cell = self.cells.get(key)
        return None if cell is None else decode_cell(cell)[0]

    def number(self, key: str) -> float | None:
        """The number of a flat value, or ``None``."""
        cell = self.cells.get(key)
        return None if cell is None else decode_cell(cell)[1]

    def to_json(self) -> dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies every cell, which dominates the
        # cache write of a large store.
        return {name: getattr(self, name) for name in _FIELD_NAMES}


_FIELD_NAMES = tuple(f.name for f in fields(ExperimentSummary))


def _js_number_text(number: float) -> str | None:
    """``String(number)`` in JavaScript, when it is certain to be computable here; else ``None``."""
    if math.isinf(number) or math.isnan(number):
        return None
    if number.is_integer() and abs(number) < _MAX_SAFE_INT:
        return str(int(number))
    text = repr(number)
    # Outside exponent notation both languages print the same shortest round-trip digits.
    return None if "e" in text or abs(number) < 1e-6 else text


def encode_cell(number: float | None, text: str) -> Any:
    """Encode one flat value compactly for the browser (decoded by ``query.js`` ``decodeCell``).

    A bare JSON number when JavaScript's ``String(n)`` reproduces ``text``; a bare string when the
    value has no number; else ``[text, number]`` (infinities as the strings ``"Infinity"``).
    """
    if number is None:
        return text
    if _js_number_text(number) == text:
        return int(number) if number.is_integer() else number
    if math.isinf(number):
        return [text, "Infinity" if number > 0 else "-Infinity"]
    return [text, int(number) if number.is_integer() and abs(number) < _MAX_SAFE_INT else number]


def decode_cell(cell: Any) -> tuple[str, float | None]:
    """Inverse of :func:`encode_cell` (for Python-side consumers and tests)."""
    if isinstance(cell, bool):
        raise TypeError("cells never hold booleans")
    if isinstance(cell, (int, float)):
        return _js_number_text(float(cell)) or repr(cell), float(cell)
    if isinstance(cell, str):
        return cell, None
    text, number = cell
    return text, float(number)


LONG_VALUE = 2000
"""Characters of one value the catalog shows; longer ones are shortened (the bundle has them whole)."""


def shorten(text: str) -> str:
    """``text``, or its first :data:`LONG_VALUE` characters and how long it was: a 1 MB parameter
    must not make every page that shows it (table, experiment page, compare) megabytes long."""
    if len(text) <= LONG_VALUE:
        return text
    return f"{text[:LONG_VALUE]}… [{len(text):,} characters in all; the whole value is in the bundle's metadata.json]"


def for_people(value: Any) -> str:
    """A number with 4 significant digits (``0.9583`` for ``0.95833333333333334``); the page keeps
    the full value in the element's ``title``. Text that is not a number is shown as it is."""
    if value is None or value == "":
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return str(value)
    return f"{number:.4g}"


def nested(metadata: Mapping[str, Any], *path: str) -> Any:
    """``metadata[path[0]][path[1]]...``, or ``None`` where the path leaves the mappings."""
    node: Any = metadata
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _shape_text(shape: object) -> str:
    if not isinstance(shape, list):
        return ""
    return "(" + ", ".join("None" if dim is None else str(dim) for dim in shape) + ")"


def summarize(
    metadata: Mapping[str, Any], *, folder: Path, slug: str, stamp: list[int] | None
) -> ExperimentSummary:
    """Summarise one bundle's metadata for the catalog."""
    flat = flatten(metadata)
    cells = {key: encode_cell(number, shorten(text)) for key, number, text in field_rows(flat)}
    architecture = (
        metadata.get("architecture") if isinstance(metadata.get("architecture"), dict) else {}
    )
    dataset = metadata.get("dataset") if isinstance(metadata.get("dataset"), dict) else {}
    display = {}
    for label, ios, shape_key in (("input_shape", "inputs", "x"), ("output_shape", "outputs", "y")):
        entries = architecture.get(ios)
        shape = (
            entries[0].get("shape")
            if isinstance(entries, list) and entries and isinstance(entries[0], dict)
            else None
        )
        if shape is None and isinstance(dataset.get("shapes"), dict):
            shape = dataset["shapes"].get(shape_key)
        text = _shape_text(shape)
        if text:
            display[label] = text
    return ExperimentSummary(
        id=str(metadata["id"]),
        project=str(metadata["project"]),
        slug=slug,
        name=str(metadata.get("name") or metadata["id"]),
        path=str(folder),
        stamp=stamp,
        cells=cells,
        display=display,
        has_model=_lists_model(metadata) or (folder / "model.onnx").is_file(),
    )


def _lists_model(metadata: Mapping[str, Any]) -> bool:
    """Whether the bundle's files include ``model.onnx`` (a team store's cache fetches it later)."""
    artifacts = metadata.get("artifacts")
    return isinstance(artifacts, list) and any(
        isinstance(a, Mapping) and a.get("path") == "model.onnx" for a in artifacts
    )


def project_slug(title: str) -> str:
    """The catalog slug of a project title (never one of :data:`RESERVED_SLUGS`)."""
    slug = slugify(title) or "project"
    return f"{slug}-project" if slug in RESERVED_SLUGS else slug


@dataclass
class ScanResult:
    """The outcome of :func:`scan`.

    Attributes:
        summaries: Every readable experiment, by id.
        changed: Ids whose bundle was (re)read in this scan (new or modified).
        metadata: The full metadata of the changed experiments (for rendering their pages).
        problems: Unreadable bundles, skipped.
    """

    summaries: dict[str, ExperimentSummary]
    changed: set[str]
    metadata: dict[str, dict[str, Any]]
    problems: list[Problem]


def scan(
    store: Store,
    *,
    previous: Mapping[str, ExperimentSummary] | None = None,
    projects: Iterable[str] | None = None,
    validate: bool = False,
) -> ScanResult:
    """Read the store, re-reading only bundles whose ``metadata.json`` changed since ``previous``.

    Args:
        store: The store to read.
        previous: Summaries from the last build, keyed by id (the incremental cache).
        projects: Keep only these project titles or slugs (``None``: every project).
        validate: Check each re-read ``metadata.json`` against the JSON Schema (slower).

    Returns:
        The summaries, the ids re-read, their metadata and the unreadable bundles.
    """
    wanted = (
        None if projects is None else {p for name in projects for p in (name, project_slug(name))}
    )
    by_path = {summary.path: summary for summary in (previous or {}).values()}

    def cached(folder: Path) -> bool:
        # One os.stat on a str path: this runs for every bundle of the store on every build.
        summary = by_path.get(str(folder))
        if summary is None or summary.stamp is None:
            return False
        try:
            info = os.stat(os.path.join(summary.path, METADATA_FILE))
        except OSError:
            return False
        return summary.stamp == [info.st_mtime_ns, info.st_size]

    result = ScanResult({}, set(), {}, [])
    for entry in store.scan(current=cached, validate=validate, settle_sealing=True):
        if isinstance(entry, Problem):
            result.problems.append(entry)
            continue
        folder = entry.folder
        if entry.bundle is None:
            summary = by_path[str(folder)]
        else:
            metadata = entry.bundle.metadata
            stamp = None if entry.stamp is None else list(entry.stamp)
            try:
                _check_identity(metadata)
                summary = summarize(
                    metadata, folder=folder, slug=project_slug(metadata["project"]), stamp=stamp
                )
            except (
                BundleError,
                OSError,
                TypeError,
                ValueError,
                KeyError,
                AttributeError,
                RecursionError,
            ) as err:
                result.problems.append(Problem.from_error(folder, err))
                continue
            result.changed.add(summary.id)
            result.metadata[summary.id] = metadata
        if wanted is not None and summary.project not in wanted and summary.slug not in wanted:
            result.changed.discard(summary.id)
            result.metadata.pop(summary.id, None)
            continue
        if summary.id in result.summaries:
            result.problems.append(Problem(str(folder), f"duplicate experiment id {summary.id}"))
            continue
        result.summaries[summary.id] = summary
    for problem in result.problems:
        logger.warning("skipped %s", problem)
    return result


def _check_identity(metadata: Mapping[str, Any]) -> None:
    """The catalog names pages and folders after the id and project: both must be usable."""
    if not isinstance(metadata.get("id"), str) or not isinstance(metadata.get("project"), str):
        raise BundleError("metadata.json lacks a string 'id' or 'project'")
    if not SAFE_ID.fullmatch(metadata["id"]):
        raise BundleError(
            f"unusable experiment id {metadata['id'][:80]!r} (letters, digits, '-', '_' only)"
        )


def load_metadata(summary: ExperimentSummary) -> dict[str, Any]:
    """Re-read the full metadata of one experiment (for pages that must be re-rendered)."""
    return read_bundle(summary.path, validate=False).metadata


def resummarize(summary: ExperimentSummary) -> ExperimentSummary:
    """Read a run's bundle again and summarise it (a cached summary that went missing)."""
    metadata = load_metadata(summary)
    _check_identity(metadata)
    return summarize(metadata, folder=Path(summary.path), slug=summary.slug, stamp=summary.stamp)


def summary_from_json(data: Mapping[str, Any]) -> ExperimentSummary:
    """Inverse of :meth:`ExperimentSummary.to_json`."""
    return ExperimentSummary(**data)
