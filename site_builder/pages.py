"""Render the catalog's page bodies with Jinja (autoescaped), independent of mkdocs.

Every body is a fragment that :mod:`modelkb.site_builder.chrome` wraps in the mkdocs-material page
chrome. User text only ever reaches HTML through Jinja's autoescape, and JSON embedded in a page
goes through :func:`script_json`, which cannot close its ``<script>`` element.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from modelkb.card import imported_provenance
from modelkb.fields import flatten
from modelkb.preprocessing import lookup_choices, lookups_by_input
from modelkb.query import field_rows
from modelkb.site_builder.catalog import ExperimentSummary, for_people, nested, shorten
from modelkb.site_builder.checklist import run_checklists
from modelkb.site_builder.primary_metric import Best, best_run
from modelkb.site_builder.run_summary import summary_facts
from modelkb.site_builder.usage import usage
from modelkb.task import metric_direction, run_task

__all__ = ["ProjectInfo", "environment", "group_projects", "render_experiment", "script_json"]

FIELD_GROUPS = (
    ("Run", ""),
    ("Hyperparameters", "hyperparameters."),
    ("Metrics", "metrics."),
    ("Framework", "framework."),
    ("Dataset", "dataset."),
    ("Architecture", "architecture."),
    ("Determinism", "determinism."),
    ("ONNX", "onnx."),
    ("Context", "context."),
)


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The one Jinja environment of the catalog (autoescape on, missing variables fail)."""
    env = Environment(
        loader=PackageLoader("modelkb.site", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short_time"] = lambda text: (text or "")[:19].replace("T", " ")
    env.filters["for_people"] = for_people
    return env


def script_json(data: Any) -> Markup:
    """JSON safe to embed inside ``<script type="application/json">`` (no ``<``, ``>``, ``&``)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


@dataclass
class ProjectInfo:
    """One project of the catalog; ``metric_names`` are its primary metric choices (the
    project's setting, then the build's), see :mod:`modelkb.site_builder.primary_metric`."""

    title: str
    slug: str
    experiments: list[ExperimentSummary] = field(default_factory=list)
    metric_names: tuple[str | None, ...] = ()

    @property
    def count(self) -> int:
        return len(self.experiments)

    @cached_property
    def owners(self) -> list[str]:
        return sorted({s.text("user") for s in self.experiments if s.text("user")})  # type: ignore[misc]

    @cached_property
    def tags(self) -> list[str]:
        found: dict[str, None] = {}
        for summary in self.experiments:
            for tag in (summary.text("tags") or "").split(", "):
                if tag:
                    found[tag] = None
        return sorted(found)[:12]

    @cached_property
    def best(self) -> Best | None:
        """The best run by the primary metric, or ``None`` when no run has a score."""
        return best_run(self.experiments, self.metric_names)

    @property
    def latest(self) -> str:
        return max((s.text("created") or "" for s in self.experiments), default="")

    @cached_property
    def directions(self) -> dict[str, str]:
        """Which way each of its runs' metrics improves (what the plots start from)."""
        return _directions({key: None for s in self.experiments for key in s.cells})


def group_projects(
    summaries: Iterable[ExperimentSummary],
    *,
    metric_names: Mapping[str, Sequence[str | None]] | None = None,
) -> list[ProjectInfo]:
    """Group experiments by project slug; projects sorted by title, runs newest first.
    ``metric_names`` gives a project (by slug) its primary metric choices."""
    projects: dict[str, ProjectInfo] = {}
    names = metric_names or {}
    for summary in summaries:
        project = projects.get(summary.slug)
        if project is None:
            project = projects[summary.slug] = ProjectInfo(
                summary.project, summary.slug, metric_names=tuple(names.get(summary.slug, ()))
            )
        project.experiments.append(summary)
    for project in projects.values():
        project.experiments.sort(key=lambda s: (s.text("created") or "", s.id), reverse=True)
    return sorted(projects.values(), key=lambda p: (p.title.lower(), p.slug))


def recent(summaries: Iterable[ExperimentSummary], limit: int = 50) -> list[ExperimentSummary]:
    """The newest experiments across projects."""
    return sorted(summaries, key=lambda s: (s.text("created") or "", s.id), reverse=True)[:limit]


@dataclass(frozen=True)
class RecentRun:
    """A row of the dashboard's recent experiments: the run, and its value of its project's
    primary metric (``key`` is ``None`` when the project has no score)."""

    summary: ExperimentSummary
    key: str | None
    value: float | None

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[-1] if self.key else ""


def recent_runs(
    projects: Iterable[ProjectInfo], summaries: Iterable[ExperimentSummary]
) -> list[RecentRun]:
    """The newest experiments, each with its project's primary metric (the cards' metric)."""
    keys = {p.slug: p.best.key for p in projects if p.best}
    rows = []
    for summary in recent(summaries):
        key = keys.get(summary.slug)
        rows.append(RecentRun(summary, key, summary.number(key) if key else None))
    return rows


def render_dashboard(projects: list[ProjectInfo], summaries: Iterable[ExperimentSummary]) -> str:
    return (
        environment()
        .get_template("dashboard.html.j2")
        .render(projects=projects, runs=recent_runs(projects, summaries))
    )


def render_projects_index(projects: list[ProjectInfo]) -> str:
    return environment().get_template("projects.html.j2").render(projects=projects)


def render_project(project: ProjectInfo, *, plots: bool = True) -> str:
    """The project page; ``plots``: whether the catalog has ECharts to draw them."""
    start = {  # what site/js/plots.js starts from: the primary metric, which way metrics improve
        "metric": project.best.key if project.best else None,
        "directions": project.directions,
    }
    return (
        environment()
        .get_template("project.html.j2")
        .render(project=project, plots=plots, plots_json=script_json(start))
    )


def render_compare() -> str:
    return environment().get_template("compare.html.j2").render()


def render_about(*, version: str, count: int, problems: list[str]) -> str:
    return (
        environment()
        .get_template("about.html.j2")
        .render(version=version, count=count, problems=problems)
    )


def _group_fields(flat: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    rows = [(key, number, shorten(text)) for key, number, text in field_rows(flat)]
    groups: list[tuple[str, list[tuple[str, str]]]] = []
    taken: set[str] = set()
    for title, prefix in FIELD_GROUPS:
        if prefix:
            members = [(key, txt) for key, _, txt in rows if key.startswith(prefix)]
        else:
            members = [(key, txt) for key, _, txt in rows if "." not in key]
        taken.update(key for key, _ in members)
        if members:
            groups.append((title, sorted(members)))
    other = [(key, txt) for key, _, txt in rows if key not in taken]
    if other:
        groups.append(("Other", sorted(other)))
    return groups


def _recorded_checklist(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A checklist the author stored in ``metadata.checklist`` (list or mapping), shown as given."""
    given = metadata.get("checklist")
    if isinstance(given, list):
        items = []
        for entry in given:
            if isinstance(entry, Mapping):
                items.append(
                    {
                        "label": str(
                            entry.get("label") or entry.get("item") or entry.get("name") or ""
                        ),
                        "ok": bool(entry.get("ok", entry.get("done", entry.get("checked", False)))),
                        "detail": shorten(str(entry.get("detail") or entry.get("value") or "")),
                    }
                )
            else:
                items.append({"label": str(entry), "ok": True, "detail": ""})
        return items
    if isinstance(given, Mapping):
        return [
            {
                "label": str(k),
                "ok": bool(v),
                "detail": "" if isinstance(v, bool) else shorten(str(v)),
            }
            for k, v in given.items()
        ]
    return []


def experiment_data(
    metadata: Mapping[str, Any], summary: ExperimentSummary, *, examples: int = 0
) -> dict[str, Any]:
    """What the experiment page's scripts and the compare page read (``data.json``); ``examples``
    counts the example inputs the page can fetch (``examples.json`` beside it)."""
    metrics = metadata.get("metrics") if isinstance(metadata.get("metrics"), Mapping) else {}
    history = metrics.get("history") if isinstance(metrics.get("history"), list) else []
    dataset = metadata.get("dataset") if isinstance(metadata.get("dataset"), Mapping) else {}
    architecture = (
        metadata.get("architecture") if isinstance(metadata.get("architecture"), Mapping) else {}
    )
    return {
        "id": summary.id,
        "name": summary.name,
        "project": summary.project,
        "slug": summary.slug,
        "cells": summary.cells,
        "directions": _directions(summary.cells),
        "history": [_history_entry(entry) for entry in history if isinstance(entry, Mapping)],
        "model": summary.has_model,
        "examples": examples,
        "task": run_task(metadata),
        "inputs": _model_inputs(metadata, architecture),
        "outputs": architecture.get("outputs")
        if isinstance(architecture.get("outputs"), list)
        else [],
        "dataset": {
            "kind": dataset.get("kind"),
            "classes": dataset.get("classes") if isinstance(dataset.get("classes"), list) else None,
            "features": dataset.get("features")
            if isinstance(dataset.get("features"), list)
            else None,
            "preprocessing": dataset.get("preprocessing")
            if isinstance(dataset.get("preprocessing"), list)
            else [],
            "shapes": dataset.get("shapes") if isinstance(dataset.get("shapes"), Mapping) else {},
        },
    }


def _directions(cells: Iterable[str]) -> dict[str, str]:
    """``{final metric key: "lower" | "higher"}`` for the metrics whose name says which is better."""
    found = {key: metric_direction(key) for key in cells if key.startswith("metrics.final.")}
    return {key: direction for key, direction in found.items() if direction}


def _history_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"epoch": entry.get("epoch")}
    for split in ("train", "val"):
        values = entry.get(split)
        if isinstance(values, Mapping):
            out[split] = {
                k: v
                for k, v in values.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            }
    return out


def render_experiment(
    metadata: Mapping[str, Any],
    summary: ExperimentSummary,
    *,
    files: set[str],
    metric_names: Sequence[str | None] = (),
) -> str:
    """The body of one experiment page (``metric_names``: its project's primary metric choices;
    its script reads the run's ``data.json`` beside it)."""
    flat = flatten(metadata)
    architecture = (
        metadata.get("architecture") if isinstance(metadata.get("architecture"), Mapping) else {}
    )
    layers = [layer for layer in architecture.get("layers") or [] if isinstance(layer, Mapping)]
    warnings = (
        [w for w in metadata.get("warnings") or [] if isinstance(w, Mapping)]
        if isinstance(metadata.get("warnings"), list)
        else []
    )
    steps = nested(metadata, "dataset", "preprocessing")
    reproducibility, paper = run_checklists(metadata, summary)
    context = {
        "m": summary,
        "meta_title": summary.name,
        "status": str(metadata.get("status", "")),
        "notes": shorten(str(metadata.get("notes") or "")),
        "provenance": shorten(imported_provenance(metadata) or ""),
        "tags": [str(t) for t in metadata.get("tags") or []]
        if isinstance(metadata.get("tags"), list)
        else [],
        "groups": _group_fields(flat),
        "layers": [
            {
                "name": str(layer.get("name", "")),
                "type": str(layer.get("type", "")),
                "params": "" if layer.get("params") is None else str(layer.get("params")),
                "shape": ""
                if layer.get("output_shape") is None
                else json.dumps(layer.get("output_shape")),
            }
            for layer in layers[:500]
        ],
        "layer_overflow": max(0, len(layers) - 500),
        "steps": [
            shorten(json.dumps(step, ensure_ascii=False, sort_keys=True, default=str))
            for step in steps
            if isinstance(step, Mapping)
        ]
        if isinstance(steps, list)
        else [],
        "warnings": [shorten(str(w.get("message", ""))) for w in warnings],
        "checklist": reproducibility,
        "paper_checklist": paper,
        "recorded_checklist": _recorded_checklist(metadata),
        "has_model": summary.has_model,
        "has_card": "README.md" in files,
        "facts": summary_facts(metadata, summary, metric_names=metric_names),
        "use": usage(metadata, has_model=summary.has_model),
    }
    return environment().get_template("experiment.html.j2").render(**context)


def _model_inputs(metadata: Mapping[str, Any], architecture: Mapping[str, Any]) -> list[Any]:
    """The inputs ``model.onnx`` takes: the export's own when it starts after a replayed layer
    (token ids after a ``TextVectorization``), else the architecture's."""
    onnx = metadata.get("onnx") if isinstance(metadata.get("onnx"), Mapping) else {}
    graph = onnx.get("inputs") if isinstance(onnx.get("inputs"), list) else []
    graph = [i for i in graph if isinstance(i, Mapping)]
    if graph and (onnx.get("starts_after") or onnx.get("lookups_in_graph") or len(graph) > 1):
        lookups = lookups_by_input(nested(metadata, "dataset", "preprocessing"))
        inputs = []
        for graph_input in graph:
            entry = {
                **graph_input,
                "shape": [
                    d if isinstance(d, int) else None for d in graph_input.get("shape") or []
                ],
            }
            choices = lookup_choices(lookups.get(str(graph_input.get("name"))))
            if choices is not None:
                entry["choices"] = choices
            inputs.append(entry)
        return inputs
    inputs = architecture.get("inputs")
    return inputs if isinstance(inputs, list) else []
