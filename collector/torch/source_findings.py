"""What the training source adds to the dataset section the live PyTorch objects described.

:func:`modelkb.collector.source_analysis.analyze_training_source` reads the captured code and finds
``loading`` calls and ``preprocessing`` steps. Some of them are the very objects
:func:`~modelkb.collector.torch.describe.describe_loader` already described at run time (the
training ``DataLoader`` and its ``transforms.Compose``). :func:`merge_source_findings` keeps one
entry per object, and turns the analysis' ``problems`` into bundle warnings: they are about the
code, not the data, so they never go into ``dataset``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelkb.collector.preprocessing_steps import library_steps

if TYPE_CHECKING:
    from modelkb.experiment import Experiment

__all__ = ["merge_source_findings"]

_STEP_KEY = ("op", "layer", "name", "mean", "std")
"""Step fields compared to tell pipelines apart; sizes and augmentation kwargs are left out because
a live object's ``repr`` and the source spell them differently (``size=[32]`` vs ``32``)."""

_LOADER_DEFAULTS = {"batch_size": 1, "num_workers": 0, "drop_last": False}
"""``DataLoader`` settings when the call leaves them out."""


def merge_source_findings(
    experiment: Experiment, runtime: Mapping[str, Any], found: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``found`` (an ``analyze_training_source`` result) into warnings and dataset fields.

    Args:
        experiment: Receives one ``warn(..., source="code")`` per problem.
        runtime: The dataset section described from the live objects (not modified).
        found: What source analysis reported (not modified).

    Returns:
        ``(runtime, found)``: copies in which each ``DataLoader`` and ``transforms`` pipeline is
        listed once, ready to merge; ``found`` holds neither ``problems`` nor empty lists.
    """
    runtime, found = copy.deepcopy(dict(runtime)), copy.deepcopy(dict(found))
    for problem in found.pop("problems", None) or []:
        experiment.warn(_problem_message(problem), source="code")
    found["preprocessing"] = _without_live_pipeline(
        runtime.get("preprocessing") or [], found.get("preprocessing") or []
    )
    found["loading"] = _without_live_loaders(
        runtime.get("loading") or [], found.get("loading") or []
    )
    return runtime, {k: v for k, v in found.items() if v}


def _problem_message(problem: Any) -> str:
    if not isinstance(problem, Mapping):
        return f"reading the training source: {problem}"
    where = problem.get("file") or "?"
    if problem.get("line") is not None:
        where = f"{where}:{problem['line']}"
    return f"reading the training source ({where}): {problem.get('message')}"


# -- preprocessing -----------------------------------------------------------------------------------


def _without_live_pipeline(
    live: list[dict[str, Any]], steps: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Drop the source pipelines that are the live ``transforms`` object seen again.

    The live steps win (they hold the values the run really used). They are written in torchvision
    class names (``Normalize``), the source steps in the preprocessing vocabulary (``normalize``),
    so each live step is translated with the same ``library_steps`` the source analysis uses and
    the two are compared as sequences of :data:`_STEP_KEY` fields, one ``Compose`` (``pipeline``)
    at a time. A source pipeline that differs (the test ``Compose``, other normalization values)
    stays; one that cannot be told apart from the live one is the same pipeline and goes.
    """
    live = [s for s in live if s.get("source") == "transforms"]
    if not live or not steps:
        return steps
    wanted = [_step_key(v) for s in live for v in _vocabulary_steps(s)]
    pipelines: dict[tuple[Any, str], list[Any]] = {}
    for step in steps:
        if step.get("pipeline"):
            pipelines.setdefault((step.get("file"), step["pipeline"]), []).append(_step_key(step))
    same = {key for key, keys in pipelines.items() if keys == wanted}
    return [s for s in steps if (s.get("file"), s.get("pipeline")) not in same]


def _vocabulary_steps(step: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A live step (``{"op": "Normalize", "mean": ...}``) in the source analysis' vocabulary."""
    kwargs = {k: v for k, v in step.items() if k not in ("op", "source")}
    return library_steps(f"torchvision.transforms.{step['op']}", "torch", [], kwargs)


def _step_key(step: Mapping[str, Any]) -> list[Any]:
    return [_canonical(step.get(field)) for field in _STEP_KEY]


def _canonical(value: Any) -> Any:
    """Tuples as lists and numbers as floats, so ``(0.5,)`` equals ``[0.5]`` and ``1`` equals ``1.0``."""
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


# -- loading ---------------------------------------------------------------------------------------


def _without_live_loaders(
    live: list[dict[str, Any]], calls: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Drop the source call that built a live loader; the live entry gets its ``file`` and ``line``.

    A call matches when it builds the same class, its dataset argument (when it is a call) builds
    the same dataset class, and its literal ``batch_size``/``num_workers``/``drop_last`` (defaults
    when left out) equal the live ones. Only the training loader is described live, so among several
    matches the one with ``shuffle=True`` is taken, else the first (scripts build it first).
    """
    calls = list(calls)
    for entry in live:
        if "file" in entry:  # already located (a source entry, or matched before)
            continue
        matches = [c for c in calls if _built_by(entry, c)]
        if not matches:
            continue
        chosen = next((c for c in matches if (c.get("kwargs") or {}).get("shuffle") is True), None)
        chosen = chosen or matches[0]
        calls.remove(chosen)
        entry.update({k: chosen[k] for k in ("file", "line") if chosen.get(k) is not None})
    return calls


def _built_by(entry: Mapping[str, Any], call: Mapping[str, Any]) -> bool:
    if str(call.get("call") or "").rsplit(".", 1)[-1] != entry.get("call"):
        return False
    args, kwargs = list(call.get("args") or []), dict(call.get("kwargs") or {})
    dataset = kwargs.get("dataset", args[0] if args else None)
    built = dataset.split("(", 1)[0].rsplit(".", 1)[-1].strip() if isinstance(dataset, str) else ""
    if "(" in str(dataset) and entry.get("dataset") and built != entry["dataset"]:
        return False  # DataLoader(OtherDataset(...)) is another loader
    given = {
        "batch_size": kwargs.get(
            "batch_size", args[1] if len(args) > 1 else _LOADER_DEFAULTS["batch_size"]
        ),
        "num_workers": kwargs.get("num_workers", _LOADER_DEFAULTS["num_workers"]),
        "drop_last": kwargs.get("drop_last", _LOADER_DEFAULTS["drop_last"]),
    }
    # a setting the source computes (kept as source text) cannot contradict the live value
    return all(
        not isinstance(value, (bool, int)) or name not in entry or entry[name] == value
        for name, value in given.items()
    )
