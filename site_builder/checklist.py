"""The reproducibility checklist on experiment pages, kept current without re-rendering old pages.

Ten of the 13 items (:mod:`modelkb.reproducibility.checklist`) depend on the run alone: they are
rendered into its page. Three depend on the project's other runs (hyperparameter ranges, number
of runs, the group's mean ± std): the page carries their per-run part and a fallback, and
``site/js/experiment.js`` completes them from ``data/checklist/<slug>.json``, written by
:func:`project_checklist` whenever the project's set of runs changes. Adding a run therefore
rewrites that one small JSON file, not the pages of the project's other runs.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelkb.bundle import Bundle, read_bundle
from modelkb.errors import BundleError
from modelkb.extras import available
from modelkb.reproducibility.checklist import (
    FLOPS_MAX_BYTES,
    ITEMS,
    checklist,
    model_flops,
    model_path,
    project_summary,
)
from modelkb.reproducibility.neurips import paper_checklist
from modelkb.site_builder.catalog import ExperimentSummary, decode_cell, shorten

logger = logging.getLogger(__name__)

STATUS_LABELS = {
    "filled": "recorded",
    "needs_user_input": "needs your words",
    "missing": "missing",
    "project_level": "project-level",
}
STATUS_MARKS = {"filled": "✔", "needs_user_input": "✎", "missing": "✘", "project_level": "…"}

_PROJECT_KEYS = ("id", "seed", "group", "reproduces")
_PROJECT_PREFIXES = ("hyperparameters.", "metrics.final.")


def _flops(bundle: Bundle) -> bool | dict[str, Any]:
    """An estimate for small enough models when ``onnx`` is installed; else ``False`` (the item says how)."""
    try:
        size = model_path(bundle).stat().st_size
    except OSError:
        return False
    if size > FLOPS_MAX_BYTES or not available("onnx"):
        return False
    return model_flops(bundle) or False


def run_checklists(
    metadata: Mapping[str, Any], summary: ExperimentSummary
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The 13 reproducibility items of one run (project parts as look-ups) and its 16 NeurIPS
    paper checklist answers, shaped for ``experiment.html.j2``."""
    bundle = Bundle(Path(summary.path), dict(metadata), sealed=summary.stamp is not None)
    result = checklist(bundle, flops=_flops(bundle), project_level=False)
    paper = paper_checklist([(bundle, result)], scope=f"{bundle.project} / {bundle.id}")
    answers = [
        {
            "id": item["id"],
            "title": item["title"],
            "question": item["question"],
            "answer": item["answer"],
            "label": ANSWER_LABELS[item["answer"]],
            "justification": shorten(item["justification"]),
            "how": str(item.get("how_to_complete") or ""),
        }
        for item in paper["items"]
    ]
    return _reproducibility_items(result), answers


ANSWER_LABELS = {"yes": "Yes", "no": "No", "na": "NA", "needs_authors": "TODO"}
"""As the paper's LaTeX marks them (``\\answerTODO{}``: the authors answer)."""


def _reproducibility_items(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = []
    for item in result["items"]:
        parts = item.get("parts") or [item["text"]]
        items.append(
            {
                "id": item["id"],
                "title": item["title"],
                "question": item["question"],
                "status": item["status"],
                "label": STATUS_LABELS.get(item["status"], item["status"]),
                "mark": STATUS_MARKS.get(item["status"], "?"),
                "parts": [
                    (shorten(p), "")
                    if isinstance(p, str)
                    else (shorten(p["text"]), json.dumps(p["project"], ensure_ascii=False))
                    for p in parts
                ],
                "how": str(item.get("how_to_complete") or ""),
                "project": json.dumps(item["project"], ensure_ascii=False)
                if item.get("project")
                else "",
            }
        )
    return items


def typed_value(cell: Any) -> Any:
    """The flat value behind a catalog cell, with its Python type where the text shows it."""
    text, number = decode_cell(cell)
    if number is None:
        return text
    if text in ("true", "false") and number in (0.0, 1.0):
        return text == "true"
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        if str(value) == text and (kind is int or math.isfinite(value)):
            return value
    return text


def project_checklist(experiments: list[ExperimentSummary]) -> dict[str, Any]:
    """``data/checklist/<slug>.json``: :func:`~modelkb.reproducibility.checklist.project_summary`
    over the project's sealed runs, from the cached summaries (no bundle is read), and the items'
    questions (kept out of the pages, which are many, to keep them small)."""
    flats = []
    typed: dict[Any, Any] = {}  # cells repeat across runs: each distinct one is decoded once
    for summary in experiments:
        if summary.stamp is None:
            continue
        flat = {}
        for key, cell in summary.cells.items():
            if key in _PROJECT_KEYS or key.startswith(_PROJECT_PREFIXES):
                token = (cell[0], cell[1]) if type(cell) is list else (type(cell), cell)
                value = typed.get(token, typed)
                if value is typed:
                    value = typed[token] = typed_value(cell)
                flat[key] = value
        flats.append(flat)
    summary = project_summary(flats)
    return {
        **summary,
        "questions": {item_id: question for item_id, _, question in ITEMS},
        "paper": project_paper_checklist(experiments, summary),
    }


PAPER_CHECKLIST_RUNS = 200
"""The project page's NeurIPS checklist reads at most this many bundles (the newest sealed runs)."""


def project_paper_checklist(
    experiments: list[ExperimentSummary], summary: Mapping[str, Any]
) -> dict[str, Any]:
    """The NeurIPS paper checklist answered across a project's sealed runs (the newest
    :data:`PAPER_CHECKLIST_RUNS`), its groups' mean ± std taken from ``summary``; rewritten with
    the project's data file whenever its set of runs changes."""
    sealed = [e for e in experiments if e.stamp is not None]
    pairs = []
    for experiment in sealed[:PAPER_CHECKLIST_RUNS]:
        try:
            bundle = read_bundle(experiment.path)
            pairs.append((bundle, checklist(bundle, flops=False, project_level=False)))
        except (BundleError, OSError, ValueError, TypeError, AttributeError, KeyError) as err:
            # a bundle the catalog lists as a problem, or one whose values no checklist can use
            logger.warning("checklist: %s left out: %s", experiment.id, err)
    if not pairs:
        return {}
    shown = f"the newest {len(pairs)} of {len(sealed)}" if len(pairs) < len(sealed) else len(sealed)
    try:
        result = paper_checklist(pairs, scope=f"project {pairs[0][0].project} ({shown} runs)")
    except (ValueError, TypeError, AttributeError, KeyError) as err:  # values of hostile bundles
        logger.warning("project checklist not drafted: %s", err)
        return {}
    variations = [
        f"group {group_id}: {group['variation']['text']}"
        for group_id, group in sorted((summary.get("groups") or {}).items())
        if (group.get("variation") or {}).get("status") == "filled"
    ]
    result.pop("computed", None)  # the time of the build: the file would change with every one
    for item in result["items"]:
        if item["id"] == "significance" and variations:
            item.update(
                answer="yes",
                justification="Mean ± standard deviation over runs with different seeds ("
                + "; ".join(variations)
                + ").",
            )
    return result
