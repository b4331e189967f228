"""A project's own settings: ``<store>/<project folder>/project.json``.

Titles, owners and tags are facts of the runs (each bundle records them); a setting is a choice
about the project as a whole, made once by its people. The file sits beside the project's bundle
folders (the store's walk reads folders only, so it is never taken for a bundle)::

    {"schema_version": 1, "primary_metric": "val_f1"}

``primary_metric`` names the metric the catalog ranks the project's runs by (see
:mod:`modelkb.site_builder.primary_metric`). Unknown keys survive a read-modify-write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelkb.errors import ProjectSettingsError
from modelkb.fsutil import atomic_write_json
from modelkb.ids import slugify

__all__ = ["SETTINGS_FILE", "read_settings", "settings_path", "write_settings"]

SETTINGS_FILE = "project.json"
SCHEMA_VERSION = 1
_TEXT_KEYS = ("primary_metric",)


def settings_path(store_root: str | Path, project: str) -> Path:
    """Where the settings of ``project`` (its title) live in the store at ``store_root``."""
    return Path(store_root) / slugify(project) / SETTINGS_FILE


def read_settings(store_root: str | Path, project: str) -> dict[str, Any]:
    """The project's settings (``{}`` when it has none).

    Raises:
        ProjectSettingsError: The file is not a JSON object, or a known key has the wrong type.
    """
    path = settings_path(store_root, project)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ProjectSettingsError(path, f"cannot be read as JSON ({err})") from err
    if not isinstance(data, dict):
        raise ProjectSettingsError(path, f"expected a JSON object, found {type(data).__name__}")
    for key in _TEXT_KEYS:
        if key in data and not (data[key] is None or isinstance(data[key], str)):
            raise ProjectSettingsError(
                path, f"expected {key!r} to be a metric name. Received: {key}={data[key]!r}"
            )
    return data


def write_settings(store_root: str | Path, project: str, **changes: Any) -> dict[str, Any]:
    """Set (a value) or remove (``None``) settings of ``project``; returns the settings written."""
    data = read_settings(store_root, project)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    data["schema_version"] = SCHEMA_VERSION
    path = settings_path(store_root, project)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, data)
    return data
