"""The project table's data: columnar, one file per field, loaded lazily by ``site/js/table.js``.

Layout, per project (``docs/catalog.md``, "Project table data")::

    data/projects/<slug>/index.json   manifest: project, slug, rows, version, fields (key, file, stats)
    data/projects/<slug>/<n>.json     one field's cell for every row (newest run first)

A page fetches the manifest, the ``id`` column and the columns it shows; a query fetches the fields
it names; nothing else. A column file is ``{"values": [cell or null, ...]}`` or, when few distinct
values repeat (optimizer, loss, framework, ...), ``{"dict": [cell or null, ...], "codes": [...]}``
with ``codes[i]`` indexing ``dict``. Cells keep the ``txt``/``num`` encoding of
:func:`~modelkb.site_builder.catalog.encode_cell`, so the browser compares exactly Python's text.
Display-only columns (input and output shape) are fields whose key starts with ``@``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelkb.site_builder.catalog import ExperimentSummary

FORMAT = 2
MANIFEST = "index.json"
DISPLAY_LABELS = {"input_shape": "input shape", "output_shape": "output shape"}
"""Display-only columns (``ExperimentSummary.display``), shown as ``@<name>``."""

_COLUMN_FILE = re.compile(r"[0-9]+\.json")
_DICT_MAX_SHARE = 4
"""Dictionary-encode a column when it has at most one distinct value per this many rows."""


def _number(cell: Any) -> float | None:
    if cell is None or isinstance(cell, str):
        return None
    value = cell[1] if type(cell) is list else cell
    if isinstance(value, str):  # "Infinity" / "-Infinity"
        return None
    return float(value) if math.isfinite(value) else None


def encode_column(cells: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One column's file payload and its stats.

    Args:
        cells: One encoded cell (or ``None``: the run lacks the field) per row.

    Returns:
        ``(payload, stats)``; stats are ``present`` (rows with a value), ``distinct``, ``kind``
        (``num``: every value has a number, ``text``: none has, else ``mixed``) and, when some
        value has a finite number, ``min`` and ``max``.
    """
    codes: dict[Any, int] = {}
    values: list[Any] = []
    indexes = []
    append = indexes.append
    for cell in cells:  # the hot loop of a table rewrite: 100,000 rows x every field
        key = ("L", cell[0], cell[1]) if type(cell) is list else (type(cell), cell)
        code = codes.get(key)
        if code is None:
            code = codes[key] = len(values)
            values.append(cell)
        append(code)
    missing = codes.get((type(None), None))
    present = len(cells) - (0 if missing is None else indexes.count(missing))
    numbers = [n for n in map(_number, values) if n is not None]
    with_number = sum(1 for v in values if v is not None and not isinstance(v, str))
    real = [v for v in values if v is not None]
    kind = "num" if with_number == len(real) else "text" if with_number == 0 else "mixed"
    stats: dict[str, Any] = {"present": present, "distinct": len(real), "kind": kind}
    if numbers:
        stats["min"], stats["max"] = min(numbers), max(numbers)
    if len(values) * _DICT_MAX_SHARE <= len(cells):
        return {"dict": values, "codes": indexes}, stats
    return {"values": list(cells)}, stats


def table_columns(experiments: Sequence[ExperimentSummary]) -> dict[str, list[Any]]:
    """``{key: cells}`` over the runs (rows in the given order), display columns as ``@name``."""
    keys = sorted({key for s in experiments for key in s.cells})
    columns: dict[str, list[Any]] = {key: [s.cells.get(key) for s in experiments] for key in keys}
    for name in DISPLAY_LABELS:
        cells = [s.display.get(name) for s in experiments]
        if any(cell is not None for cell in cells):
            columns["@" + name] = cells
    return columns


def write_project_table(
    folder: Path,
    *,
    title: str,
    slug: str,
    version: str,
    experiments: Sequence[ExperimentSummary],
    write_text: Callable[[Path, str], None],
) -> int:
    """Write a project's table data into ``folder`` (replacing what was there).

    Returns:
        The number of files written.
    """
    return write_columns(
        folder,
        title=title,
        slug=slug,
        version=version,
        columns=table_columns(experiments),
        write_text=write_text,
    )


def write_columns(
    folder: Path,
    *,
    title: str,
    slug: str,
    version: str,
    columns: Mapping[str, Sequence[Any]],
    write_text: Callable[[Path, str], None],
) -> int:
    """Write table data from ``{key: cells}`` (every list one cell or ``None`` per row)."""
    folder.mkdir(parents=True, exist_ok=True)
    fields = []
    for number, (key, cells) in enumerate(columns.items()):
        payload, stats = encode_column(cells)
        name = f"{number}.json"
        write_text(folder / name, _dumps(payload))
        entry: dict[str, Any] = {"key": key, "file": name, **stats}
        if key.startswith("@"):
            entry["kind"], entry["label"] = "display", DISPLAY_LABELS[key[1:]]
        fields.append(entry)
    manifest = {
        "format": FORMAT,
        "project": title,
        "slug": slug,
        "rows": len(next(iter(columns.values()), [])),
        "version": version,
        "fields": fields,
    }
    write_text(folder / MANIFEST, _dumps(manifest))
    keep = {entry["file"] for entry in fields}
    for stale in os.listdir(folder):  # only column files of an earlier build, nothing else
        if _COLUMN_FILE.fullmatch(stale) and stale not in keep:
            (folder / stale).unlink(missing_ok=True)
    return len(fields) + 1


def remove_project_table(data_dir: Path, slug: str) -> None:
    """Delete a project's table data (and the single-file table of ModelKB before columns)."""
    shutil.rmtree(data_dir / slug, ignore_errors=True)
    (data_dir / f"{slug}.json").unlink(missing_ok=True)


def read_project_table(folder: Path) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The manifest and every column (decoded to cells), for tests and Python consumers."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    columns = {}
    for entry in manifest["fields"]:
        payload = json.loads((folder / entry["file"]).read_text(encoding="utf-8"))
        if "dict" in payload:
            columns[entry["key"]] = [payload["dict"][code] for code in payload["codes"]]
        else:
            columns[entry["key"]] = payload["values"]
    return manifest, columns


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
