"""Extend mkdocs-material's ``search/search_index.json`` with projects and experiments.

Experiment pages never pass through mkdocs, so its search plugin does not see them; each gets
one entry here (title: the run name; text: id, project, tags, framework, optimizer, owner, notes),
which the theme's bundled search worker indexes in the browser like any other page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from modelkb.site_builder.catalog import ExperimentSummary
from modelkb.site_builder.mkdocs_shell import CHROME_PAGE, TITLE_TOKEN
from modelkb.site_builder.pages import ProjectInfo

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


def experiment_entry(summary: ExperimentSummary) -> dict[str, str]:
    """The search entry of one experiment page."""
    parts = []
    for key, label in SEARCH_KEYS:
        text = summary.text(key)
        if text:
            parts.append(f"{label}: {text}")
    # The theme renders ``text`` as HTML in the results: escape user text.
    return {
        "location": f"experiments/{summary.id}/",
        "title": escape(summary.name),
        "text": escape(" · ".join(parts)),
    }


def project_entry(project: ProjectInfo) -> dict[str, str]:
    text = (
        f"Project {project.title}: {project.count} experiments. "
        f"Owners: {', '.join(project.owners)}. Tags: {', '.join(project.tags)}."
    )
    return {
        "location": f"projects/{project.slug}/",
        "title": escape(project.title),
        "text": escape(text),
    }


def write_search_index(
    shell_index: Path,
    target: Path,
    projects: list[ProjectInfo],
    experiment_fragments: Iterable[str],
) -> None:
    """Write the site's search index: mkdocs' own entries (minus shell artefacts) plus ours.

    Args:
        shell_index: mkdocs' ``search_index.json`` of the shell.
        target: Where the site's index goes.
        projects: One entry each.
        experiment_fragments: Per project, its experiments' entries as a JSON array's text (the
            build caches them, so an unchanged project is never re-serialised).
    """
    data: dict[str, Any] = json.loads(shell_index.read_text(encoding="utf-8"))
    docs = [
        doc
        for doc in data.pop("docs", [])
        if not doc.get("location", "").startswith((CHROME_PAGE, "projects/"))
        or doc.get("location", "").startswith("projects/#")
        or doc.get("location") == "projects/"
    ]
    docs = [doc for doc in docs if TITLE_TOKEN not in doc.get("title", "")]
    docs.extend(project_entry(project) for project in projects)
    parts = [_dumps(doc) for doc in docs]
    parts.extend(fragment[1:-1] for fragment in experiment_fragments if fragment.strip("[]"))
    head = _dumps(data)
    text = head[:-1] + ("," if data else "") + '"docs":[' + ",".join(parts) + "]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
