"""The reproducibility checklist of a run: the 13 items of the NeurIPS checklist, filled from the bundle.

Computed on demand from ``metadata.json`` plus the other runs of the project (hyperparameter
ranges, number of runs, groups), so it never goes stale. Each item has a ``status``:

- ``filled``: ModelKB recorded everything the item asks for;
- ``needs_user_input``: part of the answer needs the author's words; ``how_to_complete`` says where
  to add them (``Experiment(notes=...)``, ``exp.log_params(...)``, ``exp.set_dataset(...)``);
- ``missing``: ModelKB could record it but did not for this run; ``how_to_complete`` says how;
- ``project_level`` (only with ``checklist(..., project_level=False)``): the answer is the mean ± std
  of the run's group, which only the project's other runs can give.

Three items depend on the project's other runs (``PROJECT_ITEMS``). The catalog computes their
project part once per project with :func:`project_summary` and renders each run's page with
``project_level=False``: those items then carry ``parts`` (text pieces, some ``{"project": path,
"text": fallback}`` to look up in the summary) so that adding a run never re-renders old pages.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from modelkb.bundle import CODE_DIR, LOCK_FILE, Bundle
from modelkb.ids import utc_now
from modelkb.store import Store

logger = logging.getLogger(__name__)

CHECKLIST_VERSION = 1

# (id, title, what the NeurIPS reproducibility checklist asks)
ITEMS: tuple[tuple[str, str, str], ...] = (
    (
        "model",
        "Model description",
        "A clear description of the mathematical setting, algorithm and/or model.",
    ),
    (
        "complexity",
        "Complexity",
        "An analysis of the complexity (time, space, sample size) of the algorithm.",
    ),
    ("code", "Source code", "A link to downloadable source code."),
    (
        "dependencies",
        "Dependencies",
        "A specification of all dependencies, including external libraries.",
    ),
    (
        "data_statistics",
        "Dataset statistics",
        "The relevant statistics of each dataset, such as the number of examples.",
    ),
    ("data_splits", "Data splits", "The details of the train / validation / test splits."),
    (
        "data_preprocessing",
        "Pre-processing",
        "An explanation of any data that were excluded, and all pre-processing steps.",
    ),
    (
        "data_location",
        "Data availability",
        "A link to a downloadable version of the dataset or simulation environment.",
    ),
    (
        "hyperparameters",
        "Hyperparameters",
        "The range of hyperparameters considered, the method to select the best configuration, "
        "and all hyperparameters used.",
    ),
    ("runs", "Number of runs", "The exact number of training and evaluation runs."),
    (
        "metrics",
        "Metrics",
        "A clear definition of the specific measures or statistics used to report results.",
    ),
    (
        "variation",
        "Central tendency and variation",
        "Results with central tendency (e.g. mean) and variation (e.g. error bars).",
    ),
    (
        "infrastructure",
        "Computing infrastructure",
        "A description of the computing infrastructure used.",
    ),
)

PROJECT_ITEMS = ("hyperparameters", "runs", "variation")
"""Items whose answer depends on the project's other runs."""

FLOPS_MAX_BYTES = 64 * 1024 * 1024
"""Largest ``model.onnx`` the catalog estimates FLOPs for while rendering (about 5 ms per MB)."""

_METRIC_DEFINITIONS = {
    "loss": "the training objective ({loss}) averaged over the epoch's batches",
    "accuracy": "fraction of samples whose predicted class equals the label",
    "sparse_categorical_accuracy": "fraction of samples whose predicted class equals the integer label",
    "categorical_accuracy": "fraction of samples whose predicted class equals the one-hot label's class",
    "binary_accuracy": "fraction of samples whose thresholded prediction (0.5) equals the label",
    "mae": "mean absolute error",
    "mean_absolute_error": "mean absolute error",
    "mse": "mean squared error",
    "mean_squared_error": "mean squared error",
    "rmse": "root mean squared error",
    "root_mean_squared_error": "root mean squared error",
    "auc": "area under the ROC curve",
    "precision": "true positives / predicted positives",
    "recall": "true positives / actual positives",
    "f1": "harmonic mean of precision and recall",
    "top_5_accuracy": "fraction of samples whose label is among the 5 highest-scored classes",
    "lr": "learning rate at the end of the epoch",
}


def _item(
    item_id: str, status: str, value: dict[str, Any], text: str, how: str | None = None
) -> dict[str, Any]:
    entry = {"id": item_id, "status": status, "value": value, "text": text}
    if how:
        entry["how_to_complete"] = how
    return entry


def _join(parts: list[Any]) -> str:
    """The text of ``parts``: strings as they are, project look-ups by their fallback text."""
    return "".join(p if isinstance(p, str) else p["text"] for p in parts)


def _project_part(ctx: dict[str, Any], path: list[str], text: str | None, fallback: str) -> Any:
    """``text`` when the project is known, else a look-up of ``path`` in :func:`project_summary`."""
    if ctx["project_level"]:
        return text or ""
    return {"project": path, "text": fallback}


def _model(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    arch = meta.get("architecture") or {}
    hyper = meta.get("hyperparameters") or {}
    layers = arch.get("layers") or []
    framework = meta.get("framework") or {}
    value = {
        "framework": f"{framework.get('name', '?')} {framework.get('version', '')}".strip(),
        "layers": [f"{layer.get('type')}" for layer in layers if isinstance(layer, dict)],
        "inputs": arch.get("inputs"),
        "outputs": arch.get("outputs"),
        "loss": hyper.get("loss"),
        "optimizer": (hyper.get("optimizer") or {}).get("name"),
        "description": meta.get("notes"),
    }
    shown = " → ".join(value["layers"][:12])
    text = (
        f"{len(layers)}-layer {value['framework']} model ({shown}), loss {value['loss']}, "
        f"optimizer {value['optimizer']}"
    )
    if not layers:
        return _item(
            "model",
            "missing",
            value,
            "no architecture recorded",
            "Train with a ModelKB framework callback, or call exp.set_architecture(...).",
        )
    if not meta.get("notes"):
        return _item(
            "model",
            "needs_user_input",
            value,
            text,
            "Describe the model and its mathematical setting in Experiment(..., notes='...').",
        )
    return _item("model", "filled", value, f"{text}. {meta['notes']}")


def _complexity(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    arch = meta.get("architecture") or {}
    history = (meta.get("metrics") or {}).get("history") or []
    epoch_times = [e["time_s"] for e in history if isinstance(e.get("time_s"), (int, float))]
    value = {
        "parameter_count": arch.get("parameter_count"),
        "trainable_parameter_count": arch.get("trainable_parameter_count"),
        "flops_per_sample": ctx["flops"].get("flops") if ctx["flops"] else None,
        "flops": ctx["flops"],
        "training_time_s": meta.get("duration_s"),
        "mean_epoch_time_s": round(sum(epoch_times) / len(epoch_times), 4) if epoch_times else None,
        "peak_memory_mb": (meta.get("resources") or {}).get("peak_rss_mb"),
        "train_samples": ((meta.get("dataset") or {}).get("samples") or {}).get("train"),
    }
    parts = [
        f"{value['parameter_count']} parameters" if value["parameter_count"] is not None else None,
        f"{value['flops_per_sample']:,} FLOPs per forward sample"
        if value["flops_per_sample"]
        else None,
        f"training {value['training_time_s']} s" if value["training_time_s"] is not None else None,
        f"peak RSS {value['peak_memory_mb']} MiB" if value["peak_memory_mb"] is not None else None,
    ]
    missing = [
        k
        for k in ("parameter_count", "flops_per_sample", "training_time_s", "peak_memory_mb")
        if value[k] is None
    ]
    text = ", ".join(p for p in parts if p) or "nothing recorded"
    if missing:
        fixes = {
            "parameter_count": "train with a ModelKB framework callback (architecture summary)",
            "flops_per_sample": _flops_fix(meta, ctx),
            "training_time_s": "finish the run (exp.finish() or a `with` block)",
            "peak_memory_mb": "peak memory is recorded when the run finishes "
            "(runs from older ModelKB versions lack it)",
        }
        return _item(
            "complexity",
            "missing",
            {**value, "missing": missing},
            text,
            "; ".join(f"{k}: {fixes[k]}" for k in missing) + ".",
        )
    return _item("complexity", "filled", value, text)


def _flops_fix(meta: dict[str, Any], ctx: dict[str, Any]) -> str:
    if ctx["flops"] and ctx["flops"].get("error"):
        return f"FLOPs could not be estimated from model.onnx ({ctx['flops']['error']})"
    if ctx["has_model"]:
        return f"FLOPs were not estimated here: run `modelkb checklist {meta.get('id')}` (needs the onnx package)"
    return "FLOPs are estimated from model.onnx: keep export_onnx=True and install onnx"


def _code(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    code = meta.get("code") or {}
    git = ((meta.get("context") or {}).get("git")) or {}
    value = {
        "entry": code.get("entry"),
        "files": code.get("files"),
        "bundle_folder": f"{CODE_DIR}/",
        "git_remote": git.get("remote"),
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "command": (meta.get("context") or {}).get("command"),
    }
    if not code.get("entry"):
        return _item(
            "code",
            "missing",
            value,
            "no training source captured",
            "Keep Experiment(capture_code=True) (the default) and run a script.",
        )
    where = (
        f"{git['remote']} @ {str(git.get('commit'))[:12]}"
        if git.get("remote")
        else "the bundle's code/ folder"
    )
    return _item(
        "code",
        "filled",
        value,
        f"entry {code['entry']} ({len(code.get('files') or [])} file(s)) in {where}; "
        f"re-run with `modelkb reproduce {meta.get('id')}`",
    )


def _dependencies(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    framework = meta.get("framework") or {}
    value = {
        "lockfile": LOCK_FILE if ctx["lock_pins"] is not None else None,
        "pinned_distributions": ctx["lock_pins"],
        "framework_versions": framework.get("versions"),
        "python": (meta.get("context") or {}).get("python"),
    }
    if ctx["lock_pins"] is None:
        return _item(
            "dependencies",
            "missing",
            value,
            "no requirements.lock",
            "Keep Experiment(capture_environment=True) (the default).",
        )
    return _item(
        "dependencies",
        "filled",
        value,
        f"{ctx['lock_pins']} pinned distributions in {LOCK_FILE} (Python {value['python']}); "
        "rebuild with `modelkb reproduce --env locked`",
    )


def _data_statistics(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    data = meta.get("dataset") or {}
    value = {
        k: data.get(k)
        for k in ("name", "kind", "shapes", "samples", "dtype", "num_classes", "classes")
    }
    samples = data.get("samples") or {}
    text = (
        f"{data.get('name') or 'unnamed'} ({data.get('kind', '?')}): "
        + ", ".join(f"{k} {v}" for k, v in samples.items())
        + f"; x shape {(data.get('shapes') or {}).get('x')}"
    )
    if not samples:
        return _item(
            "data_statistics",
            "missing",
            value,
            "no dataset statistics recorded",
            "Pass the data to fit() with a ModelKB callback, or call exp.set_dataset(samples={...}).",
        )
    if not data.get("name"):
        return _item(
            "data_statistics",
            "needs_user_input",
            value,
            text,
            "Name the dataset: exp.set_dataset(name='...').",
        )
    return _item("data_statistics", "filled", value, text)


def _data_splits(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    samples = (meta.get("dataset") or {}).get("samples") or {}
    value = {"samples": samples}
    if not samples:
        return _item(
            "data_splits",
            "missing",
            value,
            "no splits recorded",
            "exp.set_dataset(samples={'train': ..., 'val': ..., 'test': ...})",
        )
    return _item("data_splits", "filled", value, ", ".join(f"{k}: {v}" for k, v in samples.items()))


def _data_preprocessing(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    data = meta.get("dataset") or {}
    steps = data.get("preprocessing") or []
    value = {"steps": steps, "notes": data.get("notes")}
    ops = [str(step.get("op")) if isinstance(step, dict) else str(step) for step in steps]
    text = ("steps: " + ", ".join(ops)) if ops else "no pre-processing recorded"
    if data.get("notes"):
        return _item("data_preprocessing", "filled", value, f"{text}. {data['notes']}")
    return _item(
        "data_preprocessing",
        "needs_user_input",
        value,
        text,
        "State which data were excluded (or that none were): exp.set_dataset(notes='...').",
    )


def _data_location(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    data = meta.get("dataset") or {}
    loading = data.get("loading") or []
    calls = [call.get("call") if isinstance(call, dict) else str(call) for call in loading]
    value = {"location": data.get("location"), "loading": calls}
    if data.get("location"):
        return _item("data_location", "filled", value, str(data["location"]))
    if calls:
        return _item(
            "data_location", "filled", value, "loaded with " + ", ".join(str(c) for c in calls)
        )
    return _item(
        "data_location",
        "needs_user_input",
        value,
        "no location recorded",
        "exp.set_dataset(location='https://...')",
    )


def _hyperparameters(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    hyper = meta.get("hyperparameters") or {}
    used = {
        k: v
        for k, v in hyper.items()
        if k not in ("params", "optimizer") and not isinstance(v, (dict, list))
    }
    if isinstance(hyper.get("optimizer"), dict):
        used["optimizer"] = hyper["optimizer"].get("name")
    used.update(
        {
            f"params.{k}": v
            for k, v in (hyper.get("params") or {}).items()
            if not isinstance(v, (dict, list))
        }
    )
    ranges = ctx["ranges"]
    params = hyper.get("params") or {}
    selection = params.get("selection") or params.get("hparam_selection")
    value = {
        "used": used,
        "ranges_in_project": ranges,
        "project_runs": ctx["project_runs"],
        "selection": selection,
    }
    parts: list[Any] = [
        f"{len(used)} hyperparameters recorded; ",
        _project_part(
            ctx,
            ["hyperparameters"],
            ranges is not None and _ranges_text(ranges, ctx["project_runs"]),
            "ranges across the project's runs: see the catalog or `modelkb checklist`",
        ),
    ]
    if selection:
        parts.append(f"; selection: {selection}")
    entry = _item(
        "hyperparameters",
        "filled" if selection else "needs_user_input",
        value,
        _join(parts),
        None
        if selection
        else "Say how the configuration was chosen: exp.log_params(hparam_selection='grid search over ...').",
    )
    return _with_parts(entry, parts, ctx)


def _ranges_text(ranges: dict[str, dict[str, Any]], project_runs: int) -> str:
    varied = {k: r for k, r in ranges.items() if r.get("distinct", 1) > 1}
    return f"across {project_runs} run(s) of the project " + (
        "varied: " + "; ".join(f"{k} {_range_text(r)}" for k, r in sorted(varied.items()))
        if varied
        else "none was varied"
    )


def _with_parts(entry: dict[str, Any], parts: list[Any], ctx: dict[str, Any]) -> dict[str, Any]:
    if not ctx["project_level"]:
        entry["parts"] = [p for p in parts if p != ""]
    return entry


def _runs(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    value = {
        "project_runs": ctx["project_runs"],
        "group": meta.get("group"),
        "group_runs": ctx["group"]["n"] if ctx["group"] else None,
        "reproductions": ctx["reproductions"],
        "seed": meta.get("seed"),
        "determinism": meta.get("determinism"),
        "epochs": len((meta.get("metrics") or {}).get("history") or []),
    }
    parts: list[Any] = [
        f"this run: 1 training run of {value['epochs']} epoch(s), seed {meta.get('seed')}",
        _project_part(
            ctx,
            ["runs_text"],
            _project_runs_text(ctx["project_runs"]),
            "; runs in the project: see the catalog or `modelkb checklist`",
        ),
    ]
    if ctx["group"] or (not ctx["project_level"] and meta.get("group")):
        group_id = str(meta.get("group"))
        parts.append(
            _project_part(
                ctx,
                ["groups", group_id, "runs_text"],
                ctx["group"] and _group_runs_text(group_id, ctx["group"]["n"]),
                f"; group {group_id}",
            )
        )
    parts.append(
        _project_part(
            ctx,
            ["reproduced", str(meta.get("id"))],
            _reproduced_text(len(ctx["reproductions"] or [])),
            "",
        )
    )
    return _with_parts(_item("runs", "filled", value, _join(parts)), parts, ctx)


def _project_runs_text(project_runs: int) -> str:
    return f"; project: {project_runs} run(s)"


def _group_runs_text(group_id: str, n: int) -> str:
    return f"; group {group_id}: {n} run(s)"


def _reproduced_text(count: int) -> str:
    return f"; reproduced {count} time(s)" if count else ""


def _metrics(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    final = (meta.get("metrics") or {}).get("final") or {}
    params = (meta.get("hyperparameters") or {}).get("params") or {}
    user = (
        params.get("metric_definitions")
        if isinstance(params.get("metric_definitions"), dict)
        else {}
    )
    loss = (meta.get("hyperparameters") or {}).get("loss")
    definitions: dict[str, str | None] = {}
    for name in sorted(final):
        base = name.removeprefix("val_")
        known = user.get(name) or user.get(base) or _METRIC_DEFINITIONS.get(base)
        if known:
            known = known.format(loss=loss or "loss") + (
                " on the validation split" if name.startswith("val_") else " on the training split"
            )
        definitions[name] = known
    undefined = [n for n, d in definitions.items() if d is None]
    value = {"definitions": definitions, "final": final, "undefined": undefined}
    if not final:
        return _item(
            "metrics",
            "missing",
            value,
            "no metrics recorded",
            "Log metrics with exp.log_metrics(...) or a callback.",
        )
    text = "; ".join(f"{n}: {d or '?'}" for n, d in definitions.items())
    if undefined:
        return _item(
            "metrics",
            "needs_user_input",
            value,
            text,
            "Define them: exp.log_params(metric_definitions={'" + undefined[0] + "': '...'}).",
        )
    return _item("metrics", "filled", value, text)


def _variation(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    if not ctx["project_level"] and meta.get("group"):
        group_id = str(meta["group"])
        entry = _item(
            "variation",
            "project_level",
            {"group": group_id},
            f"mean ± std over the runs of group {group_id}: see the catalog, "
            f"`modelkb group {group_id}` or `modelkb checklist {meta.get('id')}`",
        )
        entry["project"] = ["groups", group_id, "variation"]
        return entry
    return _variation_of_group(ctx["group"], meta.get("group"), str(meta.get("id")))


def _variation_of_group(
    group: dict[str, Any] | None, group_id: Any, experiment_id: str
) -> dict[str, Any]:
    if not group or group["n"] < 2:
        return _item(
            "variation",
            "missing",
            {"group": group_id},
            "single run: no mean ± std",
            f"Run `modelkb repeat {experiment_id} -n 5` to get mean ± std over seeds.",
        )
    text = (
        "; ".join(
            f"{name} {m['mean']:.4g} ± {m['std']:.2g}" for name, m in group["metrics"].items()
        )
        + f" (n={group['n']}, seeds {group['seeds']})"
    )
    return _item("variation", "filled", group, text)


def _infrastructure(meta: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    context = meta.get("context") or {}
    value = {
        k: context.get(k)
        for k in ("cpu", "cpu_count", "memory_gb", "gpu", "os", "platform", "python")
    }
    if not context:
        return _item(
            "infrastructure",
            "missing",
            value,
            "no context recorded",
            "Keep Experiment(capture_environment=True).",
        )
    gpus = (
        ", ".join(g.get("name", "?") for g in context.get("gpu") or [] if isinstance(g, dict))
        or "no GPU"
    )
    return _item(
        "infrastructure",
        "filled",
        value,
        f"{context.get('cpu')} ({context.get('cpu_count')} cores), "
        f"{context.get('memory_gb')} GB RAM, {gpus}; {context.get('os')}, "
        f"Python {context.get('python')}",
    )


_BUILDERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    "model": _model,
    "complexity": _complexity,
    "code": _code,
    "dependencies": _dependencies,
    "data_statistics": _data_statistics,
    "data_splits": _data_splits,
    "data_preprocessing": _data_preprocessing,
    "data_location": _data_location,
    "hyperparameters": _hyperparameters,
    "runs": _runs,
    "metrics": _metrics,
    "variation": _variation,
    "infrastructure": _infrastructure,
}


def _range_text(entry: dict[str, Any]) -> str:
    if "min" in entry:
        return f"{entry['min']}–{entry['max']}"
    return "{" + ", ".join(map(str, entry.get("values", []))) + "}"


def hyperparameter_ranges(runs_metadata: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scalar hyperparameter: ``{min, max, distinct}`` for numbers, ``{values, distinct}`` otherwise."""
    seen: dict[str, list[Any]] = {}
    for meta in runs_metadata:
        hyper = meta.get("hyperparameters") or {}
        flat = {k: v for k, v in hyper.items() if not isinstance(v, (dict, list))}
        if isinstance(hyper.get("optimizer"), dict):
            flat["optimizer"] = hyper["optimizer"].get("name")
        flat.update(
            {
                f"params.{k}": v
                for k, v in (hyper.get("params") or {}).items()
                if not isinstance(v, (dict, list))
            }
        )
        flat["seed"] = meta.get("seed")
        for key, value in flat.items():
            if value is not None:
                seen.setdefault(key, []).append(value)
    ranges: dict[str, dict[str, Any]] = {}
    for key, values in seen.items():
        distinct = sorted({str(v) for v in values})
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            ranges[key] = {"min": min(values), "max": max(values), "distinct": len(set(values))}
        else:
            ranges[key] = {"values": distinct[:20], "distinct": len(distinct)}
    return ranges


def _lock_pins(bundle: Bundle) -> int | None:
    path = bundle.file(LOCK_FILE)
    if not path.is_file():
        return None
    return sum(
        1
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )


def model_path(bundle: Bundle) -> Path:
    """Where the bundle's ONNX model is (or would be)."""
    return bundle.file(str((bundle.metadata.get("onnx") or {}).get("path") or "model.onnx"))


def model_flops(bundle: Bundle) -> dict[str, Any] | None:
    """FLOPs per sample estimated from ``model.onnx`` (``{"flops": None, "error"}`` when it cannot
    be); ``None`` without a model."""
    onnx_path = model_path(bundle)
    if not onnx_path.is_file():
        return None
    try:
        from modelkb.reproducibility.flops import estimate_flops

        return estimate_flops(onnx_path)
    except Exception as err:
        logger.warning("FLOPs not estimated for %s: %s", bundle.id, err)
        return {"flops": None, "error": f"{type(err).__name__}: {err}"}


def checklist(
    bundle: Bundle,
    store: Store | None = None,
    *,
    flops: bool | Mapping[str, Any] = True,
    project_level: bool = True,
) -> dict[str, Any]:
    """Fill the reproducibility checklist of one run.

    Args:
        bundle: The run.
        store: Its store, for the project-level items (hyperparameter ranges, number of runs,
            group mean ± std, reproductions). Without it those items cover this run only.
        flops: Estimate FLOPs from ``model.onnx`` (needs the ``onnx`` package); or an estimate
            already made (the result of :func:`~modelkb.reproducibility.flops.estimate_flops`).
        project_level: ``False`` leaves out the project's other runs (``store`` is not read):
            the items of :data:`PROJECT_ITEMS` then carry ``parts`` (and ``variation`` of a
            grouped run the status ``project_level`` and a ``project`` path) to complete from
            :func:`project_summary`, instead of answering for this run alone.

    Returns:
        ``{"checklist_version", "experiment", "project", "computed", "items": [13 items],
        "summary": {status: count}}``; each item is ``{"id", "title", "question", "status",
        "text", "value", "how_to_complete"?}``.
    """
    meta = bundle.metadata
    project_meta: list[dict[str, Any]] = [meta]
    reproductions: list[dict[str, Any]] = []
    group = None
    if store is not None and project_level:
        runs = [r for r in store.search(project=bundle.project) if r.sealed]
        project_meta = []
        for run in runs:
            project_meta.append(
                meta
                if run.id == bundle.id
                else {"hyperparameters": _unflatten_hyper(run.flat), "seed": run.flat.get("seed")}
            )
            if run.flat.get("reproduces") == bundle.id:
                reproductions.append({"id": run.id, "status": run.flat.get("status")})
        if not any(m is meta for m in project_meta):
            project_meta.append(meta)
        if meta.get("group"):
            from modelkb.reproducibility.repeat import group_statistics

            group = group_statistics(store, str(meta["group"]))
    if isinstance(flops, Mapping):
        estimate: dict[str, Any] | None = dict(flops)
    else:
        estimate = model_flops(bundle) if flops else None
    ctx = {
        "flops": estimate,
        "has_model": model_path(bundle).is_file(),
        "lock_pins": _lock_pins(bundle),
        "ranges": hyperparameter_ranges(project_meta) if project_level else None,
        "project_runs": len(project_meta) if project_level else None,
        "reproductions": reproductions if project_level else None,
        "group": group,
        "project_level": project_level,
    }
    items = []
    for item_id, title, question in ITEMS:
        entry = _BUILDERS[item_id](meta, ctx)
        items.append(
            {
                "id": item_id,
                "title": title,
                "question": question,
                **{k: v for k, v in entry.items() if k != "id"},
            }
        )
    summary: dict[str, int] = {}
    for entry in items:
        summary[entry["status"]] = summary.get(entry["status"], 0) + 1
    return {
        "checklist_version": CHECKLIST_VERSION,
        "experiment": bundle.id,
        "project": bundle.project,
        "computed": utc_now(),
        "items": items,
        "summary": summary,
    }


def project_summary(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The project part of the checklist, once for all the runs of a project.

    Args:
        runs: The flat fields (:func:`modelkb.fields.flatten`) of the project's sealed runs;
            read are ``id``, ``seed``, ``group``, ``reproduces``, ``hyperparameters.*`` and
            ``metrics.final.*``.

    Returns:
        ``{"checklist_version", "runs", "runs_text", "hyperparameters", "ranges", "groups":
        {group: {"n", "runs", "seeds", "metrics", "runs_text", "variation"}}, "reproduced":
        {id: text}}``: what the ``parts`` and ``project`` paths of a ``project_level=False``
        checklist point at, with the texts :func:`checklist` would write with a store.
    """
    runs = list(runs)
    ranges = hyperparameter_ranges(
        [
            {"hyperparameters": _unflatten_hyper(dict(flat)), "seed": flat.get("seed")}
            for flat in runs
        ]
    )
    members: dict[str, list[Mapping[str, Any]]] = {}
    reproductions: dict[str, int] = {}
    for flat in sorted(runs, key=lambda f: str(f.get("id"))):
        if flat.get("group") is not None:
            members.setdefault(str(flat["group"]), []).append(flat)
        if flat.get("reproduces") is not None:
            reproductions[str(flat["reproduces"])] = (
                reproductions.get(str(flat["reproduces"]), 0) + 1
            )
    groups = {}
    for group_id, flats in sorted(members.items()):
        stats = _group_stats(group_id, flats)
        groups[group_id] = {
            **stats,
            "runs_text": _group_runs_text(group_id, stats["n"]),
            "variation": _variation_of_group(stats, group_id, stats["runs"][0]),
        }
        del groups[group_id]["variation"]["id"]
        groups[group_id]["variation"].pop("value")
    return {
        "checklist_version": CHECKLIST_VERSION,
        "runs": len(runs),
        "runs_text": _project_runs_text(len(runs)),
        "hyperparameters": _ranges_text(ranges, len(runs)),
        "ranges": ranges,
        "groups": groups,
        "reproduced": {
            run_id: _reproduced_text(count) for run_id, count in sorted(reproductions.items())
        },
    }


def _group_stats(group_id: str, flats: list[Mapping[str, Any]]) -> dict[str, Any]:
    """:func:`modelkb.reproducibility.repeat.group_statistics` from flat fields (no bundle reads)."""
    values: dict[str, list[float]] = {}
    for flat in flats:
        for key, value in flat.items():
            if (
                key.startswith("metrics.final.")
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                values.setdefault(key[len("metrics.final.") :], []).append(float(value))
    metrics = {
        name: {
            "mean": statistics.fmean(series),
            "std": statistics.stdev(series) if len(series) > 1 else 0.0,
            "min": min(series),
            "max": max(series),
            "n": len(series),
            "values": series,
        }
        for name, series in sorted(values.items())
    }
    return {
        "group": group_id,
        "n": len(flats),
        "runs": [str(f.get("id")) for f in flats],
        "seeds": [f.get("seed") for f in flats],
        "metrics": metrics,
    }


def _unflatten_hyper(flat: dict[str, Any]) -> dict[str, Any]:
    """The scalar hyperparameters of an indexed run, back in metadata shape (for ranges)."""
    hyper: dict[str, Any] = {}
    for key, value in flat.items():
        if not key.startswith("hyperparameters."):
            continue
        rest = key[len("hyperparameters.") :]
        if rest == "optimizer.name":
            hyper["optimizer"] = {"name": value}
        elif rest.startswith("params.") and rest.count(".") == 1:
            hyper.setdefault("params", {})[rest[7:]] = value
        elif "." not in rest:
            hyper[rest] = value
    return hyper


_STATUS_MARK = {
    "filled": "[x]",
    "needs_user_input": "[ ] needs your input:",
    "missing": "[ ] missing:",
}


def render_markdown(result: dict[str, Any]) -> str:
    """The checklist as Markdown (one numbered item per line, the fix under open items)."""
    lines = [f"# Reproducibility checklist — {result['project']} / {result['experiment']}", ""]
    summary = ", ".join(f"{count} {status}" for status, count in sorted(result["summary"].items()))
    lines += [f"{len(result['items'])} items: {summary}.", ""]
    for number, item in enumerate(result["items"], 1):
        mark = _STATUS_MARK.get(item["status"], f"[{item['status']}]")
        lines.append(f"{number}. **{item['title']}** {mark} {item['text']}")
        lines.append(f"   - _{item['question']}_")
        if item.get("how_to_complete"):
            lines.append(f"   - To complete: {item['how_to_complete']}")
    return "\n".join(lines) + "\n"
