"""Extend the engine's search index with projects and experiments.

Experiment pages never pass through the engine, so its search does not see them; each gets one
entry here (title: the run name; text: id, project, tags, framework, optimizer, owner, notes),
which the theme's bundled search worker indexes in the browser like any other page. mkdocs-material
keeps its entries under ``docs`` in ``search/search_index.json``, Zensical under ``items`` in
``search.json``, with a few more fields: the engine says which (``Engine.search_entry``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelkb.site_builder.catalog import ExperimentSummary
from modelkb.site_builder.engines import Engine
from modelkb.site_builder.pages import ProjectInfo
from modelkb.site_builder.shell import CHROME_PAGE, TITLE_TOKEN

SEARCH_KEYS = (
    ("id", "id"),
    ("project", "project"),
    ("tags", "tags"),
    ("framework.name", "framework"),
    ("hyperparameters.optimizer.name", "optimizer"),
    ("user", "owner"),
    ("dataset.name", "dataset"),
    ("status", "status"),
    ("notes", "notes"),
)


def experiment_entry(summary: ExperimentSummary, engine: Engine) -> dict[str, Any]:
    """The search entry of one experiment page."""
    parts = []
    for key, label in SEARCH_KEYS:
        text = summary.text(key)
        if text:
            parts.append(f"{label}: {text}")
    return engine.search_entry(f"experiments/{summary.id}/", summary.name, " · ".join(parts))


def project_entry(project: ProjectInfo, engine: Engine) -> dict[str, Any]:
    text = (
        f"Project {project.title}: {project.count} experiments. "
        f"Owners: {', '.join(project.owners)}. Tags: {', '.join(project.tags)}."
    )
    return engine.search_entry(f"projects/{project.slug}/", project.title, text)


def write_search_index(
    shell_index: Path,
    target: Path,
    projects: list[ProjectInfo],
    experiment_fragments: Iterable[str],
    engine: Engine,
) -> None:
    """Write the site's search index: the engine's own entries (minus shell artefacts) plus ours.

    Args:
        shell_index: The engine's search index of the shell.
        target: Where the site's index goes.
        projects: One entry each.
        experiment_fragments: Per project, its experiments' entries (:func:`experiment_entry`)
            as a JSON array's text (the build caches them, so an unchanged project is never
            re-serialised).
        engine: Says where the entries go and their shape.
    """
    data: dict[str, Any] = json.loads(shell_index.read_text(encoding="utf-8"))
    docs = [
        doc
        for doc in data.pop(engine.entries_key, [])
        if not doc.get("location", "").startswith((CHROME_PAGE, "projects/"))
        or doc.get("location", "").startswith("projects/#")
        or doc.get("location") == "projects/"
    ]
    docs = [doc for doc in docs if TITLE_TOKEN not in doc.get("title", "")]
    docs.extend(project_entry(project, engine) for project in projects)
    parts = [_dumps(doc) for doc in docs]
    parts.extend(fragment[1:-1] for fragment in experiment_fragments if fragment.strip("[]"))
    head = _dumps(data)
    text = head[:-1] + ("," if data else "") + f'"{engine.entries_key}":[' + ",".join(parts) + "]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
