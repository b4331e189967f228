"""Validation of ``metadata.json`` against the shipped JSON Schema (bundle format v1).

The schema is package data (``modelkb/schemas/metadata-v1.schema.json``). ``jsonschema`` is imported
only when something is validated, so ``import modelkb`` stays light.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from modelkb.errors import BundleSchemaError

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

SCHEMA_FILE = "metadata-v1.schema.json"
_MAX_MESSAGE = 300
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$"
)


@functools.lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    text = resources.files("modelkb.schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_schema() -> dict[str, Any]:
    """The JSON Schema of ``metadata.json`` (format v1).

    Returns:
        A fresh copy of the schema; the parsed file is cached, so mutating the result is safe.
    """
    return copy.deepcopy(_schema())


def is_datetime(value: object) -> bool:
    """Whether ``value`` is an RFC 3339 timestamp (``2026-11-29T02:45:12.123Z``); non-strings pass.

    The check is ours rather than jsonschema's optional ``rfc3339-validator``, so validation gives
    the same answer whichever extras are installed.
    """
    if not isinstance(value, str):
        return True
    match = _RFC3339.match(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    offset_h, offset_m = match.group(7), match.group(8)
    if offset_h is not None and (int(offset_h) > 23 or int(offset_m) > 59):
        return False
    try:
        # A leap second (:60) is valid RFC 3339 but not a valid ``datetime``.
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return second <= 60


@functools.lru_cache(maxsize=1)
def _validator() -> Validator:
    from jsonschema import Draft202012Validator, FormatChecker

    checker = FormatChecker(formats=())
    checker.checks("date-time")(is_datetime)
    validator: Validator = Draft202012Validator(_schema(), format_checker=checker)
    return validator


def json_path(parts: Iterable[str | int]) -> str:
    """Dotted form of a JSON location, ``"(root)"`` for the document itself.

    Example: ``["metrics", "history", 0, "epoch"]`` -> ``metrics.history[0].epoch``.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _strip_formats(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_formats(v) for k, v in node.items() if k != "format"}
    if isinstance(node, list):
        return [_strip_formats(v) for v in node]
    return node


@functools.lru_cache(maxsize=1)
def _fast_check() -> Any:
    """A compiled (fastjsonschema) validator of the same schema, ~70x faster than jsonschema.

    The schema uses only keywords draft-07 shares with 2020-12; formats are left out here and the
    three timestamps are checked by :func:`is_datetime`. Returns None when fastjsonschema is absent.
    """
    return _compiled(_schema())


@functools.cache
def fast_section_check(section: str) -> Any:
    """A compiled validator of one top-level section (``None`` without fastjsonschema): a
    collector checks what it records during training without importing jsonschema (~60 ms)."""
    schema = _schema()
    return _compiled({**schema["properties"].get(section, {}), "$defs": schema.get("$defs", {})})


def _compiled(schema: dict[str, Any]) -> Any:
    try:
        import fastjsonschema
    except ImportError:
        return None
    text = (
        json.dumps(_strip_formats(schema))
        .replace('"$defs"', '"definitions"')
        .replace("#/$defs/", "#/definitions/")
    )
    draft7 = json.loads(text)
    draft7["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(draft7)


def _passes_fast(meta: Any) -> bool:
    check = _fast_check()
    if check is None:
        return False
    try:
        check(meta)
    except Exception:
        return False
    warnings = meta.get("warnings") or []
    stamps = [meta.get("created"), meta.get("finished")]
    stamps += [w.get("time") for w in warnings if isinstance(w, dict)]
    return all(is_datetime(stamp) for stamp in stamps)


def validate_metadata(meta: dict[str, Any], *, path: str | None = None) -> None:
    """Check ``meta`` against the bundle format, raising on the most relevant error.

    Args:
        meta: The parsed ``metadata.json``.
        path: Where the metadata comes from (a bundle folder), prefixed to the error message.

    Raises:
        BundleSchemaError: ``meta`` does not follow the format. The message is one line naming the
            JSON location, e.g. ``metrics.final.accuracy: 'high' is not of type 'number', 'null'``.
    """
    if _passes_fast(meta):
        return
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(meta))
    if error is None:
        return
    where = json_path(deque(error.absolute_path))
    message = re.sub(r"\s*[\r\n]+\s*", " ", error.message)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    exc = BundleSchemaError(f"{where}: {message}", path=path)
    if (
        where == "schema_version"
        and isinstance(meta, dict)
        and isinstance(meta.get("schema_version"), int)
    ):
        exc.hint = (
            "This bundle was written by another version of ModelKB; upgrade modelkb to read it."
        )
    raise exc from error
