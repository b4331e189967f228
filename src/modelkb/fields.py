"""The flat field view of ``metadata.json`` that queries, the index and the catalog see.

:func:`flatten` turns one bundle's metadata into ``{dotted.key: scalar}``; :func:`resolve` maps
what a user types (``optimizer``, ``lr``, ``final.accuracy``) to one of those keys. The rules are
written up for users in ``docs/query.md``; the JavaScript catalog ports them, so they stay plain.

Flattening rules:

* Keys are lowercased and joined with ``.``: ``hyperparameters.optimizer.name``.
* Scalar leaves (``str``, ``int``, ``float``, ``bool``) are kept as they are; booleans stay
  ``bool`` and timestamps (``created``, ``finished``) stay ISO strings.
* ``null`` leaves and empty lists are left out, so ``seed = null`` / ``tags = null`` find them.
* A list of strings becomes one string joined with ``", "`` (``tags`` -> ``"a, b"``, still
  searchable with ``tags ~ a``). Any other list of scalars becomes a tuple-style string,
  ``[null, 8, 8, 1]`` -> ``"(None, 8, 8, 1)"`` (``null`` -> ``None``, booleans ->
  ``true``/``false``), the way frameworks print shapes. Lists holding objects or lists are left out.
* Left out entirely: ``metrics.history``, ``architecture.layers``, ``artifacts``, ``warnings``,
  ``context.git.diff`` and ``context.env``. In their place come the derived counts
  ``metrics.epochs_run``, ``architecture.layer_count`` and ``warnings.count`` (only when the
  list is present).
"""

from __future__ import annotations

import calendar
import datetime as dt
import difflib
import math
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "ALIASES",
    "DATE_KEYS",
    "flatten",
    "resolve",
    "suggest",
    "text_form",
    "to_number",
]

DATE_KEYS: frozenset[str] = frozenset({"created", "finished"})
"""Keys whose values are ISO-8601 timestamps."""

_SKIPPED: frozenset[str] = frozenset(
    {
        "metrics.history",
        "architecture.layers",
        "artifacts",
        "warnings",
        "context.git.diff",
        "context.env",
    }
)
_COUNTED: dict[str, str] = {
    "metrics.history": "metrics.epochs_run",
    "architecture.layers": "architecture.layer_count",
    "warnings": "warnings.count",
}

ALIASES: dict[str, str] = {
    "optimizer": "hyperparameters.optimizer.name",
    "lr": "hyperparameters.learning_rate",
    "learning_rate": "hyperparameters.learning_rate",
    "loss": "metrics.final.loss",
    "loss_fn": "hyperparameters.loss",
    "loss_function": "hyperparameters.loss",
    "accuracy": "metrics.final.accuracy",
    "acc": "metrics.final.accuracy",
    "val_accuracy": "metrics.final.val_accuracy",
    "val_acc": "metrics.final.val_accuracy",
    "val_loss": "metrics.final.val_loss",
    "epochs": "hyperparameters.epochs",
    "batch_size": "hyperparameters.batch_size",
    "batch": "hyperparameters.batch_size",
    "framework": "framework.name",
    "layers": "architecture.layer_count",
    "params": "architecture.parameter_count",
    "parameters": "architecture.parameter_count",
    "kind": "dataset.kind",
    "owner": "user",
    "date": "created",
    "timestamp": "created",
    "git": "context.git.commit",
    "commit": "context.git.commit",
    "branch": "context.git.branch",
}
"""Short names tried before anything else (see :func:`resolve`)."""

# Section ranks for suffix matches (lower wins), tried in this order; anything else ranks last.
_SECTION_RANKS: tuple[tuple[str, int], ...] = (
    ("metrics.final.", 1),
    ("hyperparameters.params.", 3),  # before "hyperparameters." so the longer prefix is seen first
    ("hyperparameters.", 2),
    ("dataset.", 4),
    ("architecture.", 5),
    ("framework.", 6),
    ("context.", 7),
)
_OTHER_RANK = 8

NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
"""A number, as a query literal or a numeric string in metadata (full match)."""

TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?"
)
"""An ISO-8601 date or timestamp as found in metadata (full match); no zone means UTC."""


def flatten(metadata: Mapping[str, object]) -> dict[str, object]:
    """Flatten one bundle's metadata into ``{lowercase.dotted.key: scalar}``.

    Args:
        metadata: The parsed ``metadata.json`` (or ``run.json``) object.

    Returns:
        Every kept scalar leaf under its dotted key, following the module's rules.
    """
    flat: dict[str, object] = {}
    derived: dict[str, object] = {}
    _walk(metadata, "", flat, derived)
    flat.update(derived)  # derived counts win over a stored value of the same name
    return flat


def _walk(
    node: Mapping[str, object], prefix: str, flat: dict[str, object], derived: dict[str, object]
) -> None:
    for raw_key, value in node.items():
        key = prefix + str(raw_key).lower()
        if key in _COUNTED and isinstance(value, list):
            derived[_COUNTED[key]] = len(value)
        if key in _SKIPPED:
            continue
        if isinstance(value, Mapping):
            _walk(value, key + ".", flat, derived)
        elif isinstance(value, list):
            joined = _join(value)
            if joined is not None:
                flat[key] = joined
        elif isinstance(value, (str, int, float)):  # bool is an int
            flat[key] = value


def _join(items: list[object]) -> str | None:
    if not items or any(isinstance(item, (Mapping, list)) for item in items):
        return None
    if all(isinstance(item, str) for item in items):
        return ", ".join(items)  # type: ignore[arg-type]
    return "(" + ", ".join("None" if item is None else text_form(item) for item in items) + ")"


def text_form(value: object) -> str:
    """Return the text a query's ``~`` and string comparisons see for a flattened value.

    Args:
        value: A value from :func:`flatten`.

    Returns:
        Strings unchanged, booleans as ``"true"``/``"false"``, numbers as Python's ``str()``
        (shortest round-tripping form: ``0.001``, ``1e-05``, ``10``, ``10.0``).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_number(value: object) -> float | None:
    """Return the number a value compares as, or ``None`` if it has none.

    Args:
        value: A flattened value (or anything else).

    Returns:
        Booleans as ``1.0``/``0.0``; ints and floats as ``float`` (NaN has no number); strings that
        fully match :data:`NUMBER_RE` as that number; ISO dates and timestamps (matching
        :data:`TIMESTAMP_RE`, UTC unless they carry a zone) as POSIX seconds; else ``None``.
    """
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int beyond the float range, e.g. 10**400 in the JSON
            return math.inf if value > 0 else -math.inf
        return None if math.isnan(number) else number
    if not isinstance(value, str):
        return None
    if NUMBER_RE.fullmatch(value):
        return float(value)
    return timestamp_seconds(value)


def timestamp_seconds(text: str) -> float | None:
    """Parse an ISO-8601 date or timestamp into POSIX seconds (UTC), or ``None``.

    Args:
        text: ``2026-11-01``, ``2026-11-01T10:00``, ``2026-11-29T02:45:12.123Z``,
            ``2026-11-01T10:00:00+01:00`` and the like.

    Returns:
        ``(whole seconds - zone offset) + fraction`` as a float, or ``None`` when ``text`` is not
        a valid date.
    """
    match = TIMESTAMP_RE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    parts = [int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)]
    try:
        dt.datetime(*parts)  # validates the ranges; timegm alone would wrap month 13
    except ValueError:
        return None
    offset = 0
    if zone and zone.upper() != "Z":
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 60 + int(digits[2:])) * 60 * (-1 if zone[0] == "-" else 1)
    whole = calendar.timegm((*parts, 0, 0, 0)) - offset
    return whole + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def _rank(key: str) -> int:
    if "." not in key:
        return 0
    for prefix, rank in _SECTION_RANKS:
        if key.startswith(prefix):
            return rank
    return _OTHER_RANK


def resolve(name: str, known_keys: Iterable[str]) -> str | None:
    """Map a field name as the user typed it to one full flattened key.

    Rules, first hit wins (all case-insensitive):

    1. An alias from :data:`ALIASES`, if its target is among ``known_keys``.
    2. A full key equal to ``name``.
    3. Keys ending in ``"." + name``; among several, the best section wins (top-level keys, then
       ``metrics.final``, ``hyperparameters``, ``hyperparameters.params``, ``dataset``,
       ``architecture``, ``framework``, ``context``, anything else), then the shortest key, then
       the alphabetically first.

    An empty ``known_keys`` means "no schema information" (an empty store): every name is accepted,
    aliases map to their targets and anything else is taken as a full key.

    Args:
        name: The field name from the query, e.g. ``optimizer`` or ``final.accuracy``.
        known_keys: Every key that occurs in at least one experiment.

    Returns:
        The full key, or ``None`` when nothing matches.
    """
    wanted = name.lower()
    keys = {key.lower(): key for key in known_keys}
    if not keys:
        return ALIASES.get(wanted, wanted)
    alias = ALIASES.get(wanted)
    if alias is not None and alias in keys:
        return keys[alias]
    if wanted in keys:
        return keys[wanted]
    suffix = "." + wanted
    candidates = [low for low in keys if low.endswith(suffix)]
    if not candidates:
        return None
    best = min(candidates, key=lambda low: (_rank(low), len(low), low))
    return keys[best]


def suggest(name: str, known_keys: Iterable[str], *, limit: int = 3) -> list[str]:
    """Return up to ``limit`` names close to ``name``, for a "did you mean" hint.

    Args:
        name: The unknown field name.
        known_keys: Every key that occurs in at least one experiment.
        limit: How many suggestions at most.

    Returns:
        Full keys, usable aliases and last key segments, closest first.
    """
    keys = {key.lower() for key in known_keys}
    pool = set(keys)
    pool.update(alias for alias, target in ALIASES.items() if target in keys)
    pool.update(key.rsplit(".", 1)[-1] for key in keys)
    return difflib.get_close_matches(name.lower(), sorted(pool), n=limit, cutoff=0.6)
