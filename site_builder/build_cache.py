"""The build's cache in ``<out>/.modelkb-build/``, split by project so one new run costs one project.

* ``manifest.json``: the render key, each project's key, a light index of every run (project slug
  and ``[mtime_ns, size]`` of its ``metadata.json``) and each project's *digest*: what the
  dashboard and projects index show of it (owners, tags, best run, newest runs).
* ``runs/<slug>.json``: the project's full :class:`~modelkb.site_builder.catalog.ExperimentSummary`
  objects (every flat cell), read only when that project changed or everything is re-rendered.
* ``search/<slug>.json``: the project's experiment entries of the search index, as JSON text.

A build loads the index and digests, gives the scan a *stub* summary per cached run (id, project,
path, stamp; no cells), and loads a project's full summaries only when its runs changed, so a new
run rewrites its project's files and the small index, never the other projects'.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from modelkb.site_builder.catalog import ExperimentSummary, summary_from_json
from modelkb.site_builder.pages import ProjectInfo, recent
from modelkb.site_builder.primary_metric import Best

FORMAT = 2
DIGEST_KEYS = (
    "created",
    "user",
    "framework.name",
    "status",
    "metrics.final.val_accuracy",
    "metrics.final.accuracy",
)
"""The cells a digest keeps of a project's newest and best runs (what the dashboard shows)."""

WriteText = Callable[[Path, str], None]


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def slim(summary: ExperimentSummary, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """A summary reduced to what the dashboard shows (for a digest); ``extra``: more cells kept
    (the project's primary metric)."""
    data = summary.to_json()
    keys = DIGEST_KEYS + extra
    data["cells"] = {key: summary.cells[key] for key in keys if key in summary.cells}
    data["display"] = {}
    return data


def project_digest(project: ProjectInfo) -> dict[str, Any]:
    """What the dashboard and projects index show of a project, to reuse while it is unchanged."""
    best = project.best
    metric = () if best is None else (best.key,)  # the dashboard's recent runs show it
    return {
        "title": project.title,
        "owners": project.owners,
        "tags": project.tags,
        "best": None if best is None else [best.key, best.value, slim(best.summary, metric)],
        "recent": [slim(s, metric) for s in recent(project.experiments)],
        "directions": project.directions,
    }


def hydrate_project(project: ProjectInfo, digest: Mapping[str, Any]) -> list[ExperimentSummary]:
    """Give an unchanged project (its runs are stubs) the digest's owners, tags, best run and
    metric directions; returns its newest runs (for the dashboard)."""
    best = digest.get("best")
    project.__dict__.update(  # the cached_property slots of ProjectInfo
        owners=list(digest.get("owners", [])),
        tags=list(digest.get("tags", [])),
        best=None if best is None else Best(best[0], best[1], summary_from_json(best[2])),
        directions=dict(digest.get("directions", {})),
    )
    return [summary_from_json(item) for item in digest.get("recent", [])]


class BuildCache:
    """What the last build wrote, by project (see the module docstring)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.render_key = ""
        self.projects: dict[str, str] = {}
        self.runs: dict[str, list[Any]] = {}  # id -> [slug, path, stamp]
        self.digests: dict[str, dict[str, Any]] = {}  # slug -> digest
        self.shell_files: list[str] = []  # what the engine's shell put in the site
        self.metric_names: dict[str, list[str]] = {}  # slug -> primary metric choices

    @property
    def _manifest(self) -> Path:
        return self.work / "manifest.json"

    def load(self) -> None:
        """Read the index (an unreadable or older cache reads as empty: everything is rebuilt)."""
        try:
            data = json.loads(self._manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(data, dict):
            return
        if data.get("format") == 1:  # the single manifest of older builds: only what it built
            summaries = data.get("summaries", {})
            self.runs = {i: [s.get("slug"), s.get("path"), None] for i, s in summaries.items()}
            self.projects = dict.fromkeys(data.get("projects", {}), "")
            return
        if data.get("format") != FORMAT:
            return
        self.render_key = data.get("render_key", "")
        self.projects = data.get("projects", {})
        self.runs = data.get("runs", {})
        self.digests = data.get("digests", {})
        self.shell_files = data.get("shell_files", [])
        self.metric_names = data.get("metric_names", {})

    def stubs(self) -> dict[str, ExperimentSummary]:
        """A cell-less summary per cached run, enough for the scan's "unchanged?" test."""
        titles = {slug: digest.get("title", slug) for slug, digest in self.digests.items()}
        return {
            experiment_id: ExperimentSummary(
                id=experiment_id,
                project=titles.get(slug, slug),
                slug=slug,
                name=experiment_id,
                path=path,
                stamp=stamp,
                cells={},
            )
            for experiment_id, (slug, path, stamp) in self.runs.items()
        }

    def shard(self, slug: str) -> dict[str, ExperimentSummary]:
        """The full summaries of one project's runs (empty when the file is missing or bad)."""
        try:
            data = json.loads((self.work / "runs" / f"{slug}.json").read_text(encoding="utf-8"))
            return {item["id"]: summary_from_json(item) for item in data["summaries"]}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def search_fragment(self, slug: str) -> str | None:
        """The project's search entries as JSON array text, or ``None``."""
        try:
            return (self.work / "search" / f"{slug}.json").read_text(encoding="utf-8")
        except OSError:
            return None

    def save_project(
        self,
        slug: str,
        experiments: list[ExperimentSummary],
        digest: dict[str, Any],
        search_entries: list[dict[str, str]],
        write_text: WriteText,
    ) -> str:
        """Write one project's shard and search entries; returns the search entries' JSON text."""
        write_text(
            self.work / "runs" / f"{slug}.json",
            _dumps({"summaries": [s.to_json() for s in experiments]}),
        )
        fragment = _dumps(search_entries)
        write_text(self.work / "search" / f"{slug}.json", fragment)
        self.digests[slug] = digest
        return fragment

    def save(
        self,
        *,
        render_key: str,
        projects: Mapping[str, str],
        summaries: Iterable[ExperimentSummary],
        write_text: WriteText,
    ) -> None:
        """Write the index; forget (and delete) projects that are gone."""
        self.render_key = render_key
        self.projects = dict(projects)
        self.runs = {s.id: [s.slug, s.path, s.stamp] for s in summaries}
        self.digests = {slug: d for slug, d in self.digests.items() if slug in self.projects}
        for kind in ("runs", "search"):
            folder = self.work / kind
            if folder.is_dir():
                for name in os.listdir(folder):
                    if name.endswith(".json") and name[:-5] not in self.projects:
                        (folder / name).unlink(missing_ok=True)
        write_text(
            self._manifest,
            _dumps(
                {
                    "format": FORMAT,
                    "render_key": self.render_key,
                    "projects": self.projects,
                    "runs": self.runs,
                    "digests": self.digests,
                    "shell_files": self.shell_files,
                    "metric_names": self.metric_names,
                }
            ),
        )
