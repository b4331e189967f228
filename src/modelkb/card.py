"""The model card (``README.md``) of a bundle: Hugging Face front matter plus a Markdown report.

The front matter is built as a dict and written with ``yaml.safe_dump``, never templated by hand,
so no user text can end it early or inject keys. The body comes from ``model_card.md.j2``; every
user-provided value goes through one of the escaping filters below (Markdown is the output, so
Jinja's HTML autoescape is off and escaping is explicit).
"""

from __future__ import annotations

import functools
import json
import math
import re
import shlex
from collections.abc import Mapping
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined

TEMPLATE = "model_card.md.j2"
MAX_LAYERS = 200
MAX_EPOCH_ROWS = 100
MAX_WARNINGS = 50
MAX_CLASSES = 20
_MAX_VALUE = 160

_TASKS = {
    "image": ("image-classification", "Image Classification"),
    "tabular": ("tabular-classification", "Tabular Classification"),
    "text": ("text-classification", "Text Classification"),
}
_OTHER_TASK = ("other", "Other")
_LIBRARIES = {
    "torch": "pytorch",
    "pytorch": "pytorch",
    "lightning": "pytorch",
    "pytorch_lightning": "pytorch",
}
_NUMPY_DTYPES = frozenset(
    ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]
)
_SPLITS = (("val_", "validation"), ("test_", "test"))
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


# -- escaping (Jinja filters) ----------------------------------------------------------------------
_SCRIPT_LINK = re.compile(
    r"(\]\(\s*|\]:[ \t]*)((?:java|vb|live)script|data|file)(\s*:)", re.IGNORECASE
)


def _html(text: str) -> str:
    # Entities render as the literal characters in Markdown, so "<script>" shows as text everywhere;
    # a link to javascript:/data:/vbscript:/file: becomes a harmless fragment link ("#blocked-javascript:").
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SCRIPT_LINK.sub(r"\1#blocked-\2\3", escaped)


def md_inline(value: Any) -> str:
    """User text for one line of Markdown: HTML-escaped, whitespace (newlines too) collapsed."""
    return " ".join(_html(_text(value)).split())


def md_cell(value: Any) -> str:
    """User text for a Markdown table cell: escaped ``|`` and ``\\``, line breaks as ``<br>``."""
    text = _html(_text(value)).replace("\\", "\\\\").replace("|", "\\|")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "<br>".join(line for line in lines if line) or " "


def md_block(value: Any) -> str:
    """User text kept as Markdown (HTML-escaped); a code fence left open is closed.

    An unclosed fence would otherwise turn the rest of the card into one code block.
    """
    lines = [line.rstrip() for line in _html(_text(value)).splitlines()]
    fence = ""
    for line in lines:
        match = _FENCE.match(line)
        if match is None:
            continue
        marker = match.group(1)
        if not fence:
            fence = marker
        elif (
            marker[0] == fence[0] and len(marker) >= len(fence) and not line[match.end() :].strip()
        ):
            fence = ""
    if fence:
        lines.append(fence)
    return "\n".join(lines).strip("\n")


def md_fence(code: str) -> str:
    """A backtick fence longer than any backtick run inside ``code``."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


# -- value formatting ------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return "" if value is None else str(value)


def fmt(value: Any) -> str:
    """A short display form of a metadata value (numbers to 4 significant digits)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def fmt_count(value: Any) -> str:
    """An integer with thousands separators (parameter counts)."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else fmt(value)


def fmt_shape(shape: Any) -> str:
    """``[None, 8, 8, 1]`` -> ``(None, 8, 8, 1)``; anything else as :func:`fmt`."""
    if isinstance(shape, list) and all(d is None or isinstance(d, int) for d in shape):
        return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
    return fmt(shape)


def _one_line(value: Any) -> str:
    # Front-matter strings are single-line: no multi-line YAML scalar can start a line with "---";
    # and HTML-escaped, so a renderer that pastes them into a page ("</script><script>") shows text.
    return " ".join(_html(_text(value)).split())


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    # A string where a list belongs must not be shown character by character.
    return list(value) if isinstance(value, (list, tuple)) else []


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# -- front matter ----------------------------------------------------------------------------------
def library_name(meta: Mapping[str, Any]) -> str | None:
    """The Hub ``library_name`` of the run's framework (``keras``, ``tf-keras``, ``pytorch``...)."""
    framework = _mapping(meta.get("framework"))
    name = _one_line(framework.get("name")).lower()
    if name == "keras":
        return "tf-keras" if _text(framework.get("version")).startswith("2.") else "keras"
    if name == "tensorflow":
        return "tf-keras"
    if name:
        return _LIBRARIES.get(name, name)
    return "onnx" if has_onnx(meta) else None


def has_onnx(meta: Mapping[str, Any]) -> bool:
    """Whether the bundle holds an ONNX export."""
    if meta.get("onnx"):
        return True
    return any(
        isinstance(a, Mapping) and a.get("kind") == "onnx" for a in _list(meta.get("artifacts"))
    )


def eval_results(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``model-index`` results: one per finite final metric, on the split its name implies."""
    dataset = _mapping(meta.get("dataset"))
    task_type, task_name = _TASKS.get(_text(dataset.get("kind")), _OTHER_TASK)
    dataset_name = _one_line(dataset.get("name")) or "custom"
    results = []
    for key, value in _mapping(_mapping(meta.get("metrics")).get("final")).items():
        if not _number(value):
            continue
        metric_type, split = _one_line(key), "train"
        for prefix, split_name in _SPLITS:
            if metric_type.startswith(prefix) and len(metric_type) > len(prefix):
                metric_type, split = metric_type[len(prefix) :], split_name
                break
        results.append(
            {
                "task": {"type": task_type, "name": task_name},
                "dataset": {"name": dataset_name, "type": dataset_name, "split": split},
                # float(): numpy scalars subclass float but yaml.safe_dump cannot represent them
                "metrics": [{"type": metric_type, "value": float(value), "name": _one_line(key)}],
            }
        )
    return results


def front_matter(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The card's YAML front matter as a dict (Hugging Face ``ModelCardData`` fields)."""
    data: dict[str, Any] = {}
    if meta.get("license"):
        data["license"] = _one_line(meta["license"])
    library = library_name(meta)
    if library:
        data["library_name"] = library
    dataset = _mapping(meta.get("dataset"))
    candidates = [
        "modelkb",
        _one_line(_mapping(meta.get("framework")).get("name")).lower(),
        _one_line(dataset.get("kind")),
        "onnx" if has_onnx(meta) else "",
        *(_one_line(tag) for tag in _list(meta.get("tags"))),
    ]
    data["tags"] = list(dict.fromkeys(tag for tag in candidates if tag))
    if dataset.get("name"):
        data["datasets"] = [_one_line(dataset["name"])]
    final = _mapping(_mapping(meta.get("metrics")).get("final"))
    if final:
        data["metrics"] = [_one_line(key) for key in final]
    results = eval_results(meta)
    if results:
        data["model-index"] = [{"name": _one_line(meta.get("name")) or "model", "results": results}]
    return data


def dump_front_matter(data: Mapping[str, Any]) -> str:
    """YAML text of the front matter (no ``---`` lines), one scalar per line."""
    return yaml.safe_dump(
        dict(data), sort_keys=False, allow_unicode=True, default_flow_style=False, width=math.inf
    )


# -- body ------------------------------------------------------------------------------------------
def framework_text(meta: Mapping[str, Any]) -> str | None:
    """``"keras 3.15.1 (tensorflow)"``: the run's framework, version and backend (``None`` if unknown)."""
    framework = _mapping(meta.get("framework"))
    text = " ".join(_text(framework.get(k)) for k in ("name", "version") if framework.get(k))
    if framework.get("backend"):
        text += f" ({framework['backend']})"
    return text.strip() or None


def _summary(meta: Mapping[str, Any]) -> list[tuple[str, Any]]:
    rows = [
        ("ID", meta.get("id")),
        ("User", meta.get("user")),
        ("Created", meta.get("created")),
        ("Finished", meta.get("finished")),
        ("Duration", f"{fmt(meta['duration_s'])} s" if _number(meta.get("duration_s")) else None),
        ("Status", meta.get("status")),
        ("Error", meta.get("error")),
        ("Framework", framework_text(meta)),
        ("Tags", ", ".join(_text(t) for t in _list(meta.get("tags"))) or None),
    ]
    return [(label, value) for label, value in rows if value not in (None, "")]


def _hyperparameters(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    hyper = _mapping(meta.get("hyperparameters"))
    rows: list[tuple[str, str]] = []
    for key, value in hyper.items():
        if key == "params":
            continue
        if key == "optimizer" and isinstance(value, Mapping):
            rows.append(("optimizer", fmt(value.get("name"))))
            if value.get("config"):
                rows.append(("optimizer config", fmt(value["config"])))
        elif key == "metrics" and isinstance(value, list):
            rows.append((key, ", ".join(_text(v) for v in value)))
        else:
            rows.append((key, fmt(value)))
    rows.extend(
        (f"params.{key}", fmt(value)) for key, value in _mapping(hyper.get("params")).items()
    )
    return rows


def _architecture(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    arch = _mapping(meta.get("architecture"))
    if not arch:
        return None
    layers = [layer for layer in _list(arch.get("layers")) if isinstance(layer, Mapping)]
    tensors = [
        (
            role,
            _mapping(t).get("name"),
            fmt_shape(_mapping(t).get("shape")),
            _mapping(t).get("dtype"),
        )
        for role in ("inputs", "outputs")
        for t in _list(arch.get(role))
    ]
    return {
        "layers": [
            (
                layer.get("name"),
                layer.get("type"),
                fmt_shape(layer.get("output_shape")),
                fmt_count(layer.get("params")),
            )
            for layer in layers[:MAX_LAYERS]
        ],
        "more_layers": max(0, len(layers) - MAX_LAYERS),
        "total": fmt_count(arch["parameter_count"]) if "parameter_count" in arch else None,
        "trainable": fmt_count(arch["trainable_parameter_count"])
        if "trainable_parameter_count" in arch
        else None,
        "tensors": tensors,
    }


def _preprocessing(steps: Any) -> str:
    lines = []
    for step in _list(steps):
        if isinstance(step, Mapping):
            args = ", ".join(f"{k}={fmt(v)}" for k, v in step.items() if k != "op")
            lines.append(f"{_text(step.get('op'))}({args})")
        else:
            lines.append(fmt(step))
    return "\n".join(lines)


def _dataset(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    ds = _mapping(meta.get("dataset"))
    samples = _mapping(ds.get("samples"))
    shapes = _mapping(ds.get("shapes"))
    classes = _list(ds.get("classes"))
    shown = ", ".join(_text(c) for c in classes[:MAX_CLASSES])
    rows = [
        ("Name", ds.get("name")),
        ("Kind", ds.get("kind")),
        ("Samples", ", ".join(f"{k} {fmt_count(v)}" for k, v in samples.items())),
        ("Shapes", ", ".join(f"{k}: {fmt_shape(v)}" for k, v in shapes.items())),
        ("Data type", ds.get("dtype")),
        (
            "Classes",
            f"{len(classes)}: {shown}{' …' if len(classes) > MAX_CLASSES else ''}"
            if classes
            else None,
        ),
        ("Preprocessing", _preprocessing(ds.get("preprocessing"))),
        ("Loading", "\n".join(fmt(call) for call in _list(ds.get("loading")))),
        ("Location", ds.get("location")),
        ("Notes", ds.get("notes")),
    ]
    return [(label, fmt(value)) for label, value in rows if value not in (None, "")]


def _results(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    metrics = _mapping(meta.get("metrics"))
    final = [(key, fmt(value)) for key, value in _mapping(metrics.get("final")).items()]
    history = [entry for entry in _list(metrics.get("history")) if isinstance(entry, Mapping)]
    if not final and not history:
        return None
    train = list(dict.fromkeys(k for e in history for k in _mapping(e.get("train"))))
    val = list(dict.fromkeys(k for e in history for k in _mapping(e.get("val"))))
    extra = [k for k in ("lr", "time_s") if any(k in e for e in history)]
    columns = ["epoch", *train, *(f"val_{k}" for k in val), *extra]
    rows = [
        [
            fmt(e.get("epoch")),
            *(fmt(_mapping(e.get("train")).get(k)) for k in train),
            *(fmt(_mapping(e.get("val")).get(k)) for k in val),
            *(fmt(e.get(k)) for k in extra),
        ]
        for e in history
    ]
    if len(rows) > MAX_EPOCH_ROWS:
        half = MAX_EPOCH_ROWS // 2
        gap = [f"… {len(rows) - 2 * half} more"] + ["…"] * (len(columns) - 1)
        rows = [*rows[:half], gap, *rows[-half:]]
    return {"final": final, "columns": columns, "rows": rows}


def _environment_rows(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    ctx = _mapping(meta.get("context"))
    git = _mapping(ctx.get("git"))
    versions = _mapping(_mapping(meta.get("framework")).get("versions"))
    cores = f"{ctx['cpu_count']} cores" if ctx.get("cpu_count") else ""
    cpu = ", ".join(part for part in (_text(ctx.get("cpu")), cores) if part)
    rows = [
        ("Python", ctx.get("python")),
        ("OS", ctx.get("os")),
        ("Platform", ctx.get("platform")),
        ("CPU", cpu),
        ("Memory", f"{fmt(ctx['memory_gb'])} GB" if _number(ctx.get("memory_gb")) else None),
        ("GPU", ctx.get("gpu")),
        ("Packages", ", ".join(f"{k} {_text(v)}" for k, v in versions.items())),
        ("Git commit", git.get("commit")),
        ("Git branch", git.get("branch")),
        ("Uncommitted changes", git.get("dirty")),
    ]
    return [(label, fmt(value)) for label, value in rows if value not in (None, "", [])]


def _how_to_use(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    if not has_onnx(meta):
        return None
    inputs = _list(_mapping(meta.get("architecture")).get("inputs"))
    first = _mapping(inputs[0]) if inputs else {}
    dtype = _text(first.get("dtype"))
    shape = first.get("shape")
    known_shape = isinstance(shape, list) and all(d is None or isinstance(d, int) for d in shape)
    return {
        "dtype": dtype if dtype in _NUMPY_DTYPES else "float32",
        "shape": fmt_shape(shape) if known_shape and shape else None,
        "preprocessing": _preprocessing(_mapping(meta.get("dataset")).get("preprocessing")).replace(
            "\n", ", "
        ),
    }


def _reproducibility(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    det = _mapping(meta.get("determinism"))
    artifacts = [a for a in _list(meta.get("artifacts")) if isinstance(a, Mapping)]
    rows = []
    if "seed" in meta:
        rows.append(("Seed", "not seeded" if meta["seed"] is None else fmt(meta["seed"])))
    if _list(det.get("seeded")):
        rows.append(("Seeded generators", ", ".join(_text(s) for s in _list(det["seeded"]))))
    if "deterministic_ops" in det:
        rows.append(("Deterministic ops", fmt(det["deterministic_ops"])))
    if det.get("effect"):
        rows.append(("Effect on the numbers", _text(det["effect"])))
    if any(a.get("kind") == "lockfile" or a.get("path") == "requirements.lock" for a in artifacts):
        rows.append(("Lockfile", "requirements.lock (pip install -r requirements.lock)"))
    rows.extend(
        (label.capitalize(), _text(meta[label]))
        for label in ("reproduces", "group")
        if meta.get(label)
    )
    command = _list(_mapping(meta.get("context")).get("command"))
    command_text = shlex.join(_text(arg) for arg in command) if command else None
    if not rows and not command_text:
        return None
    return {"rows": rows, "command": command_text, "fence": md_fence(command_text or "")}


def _warnings(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    items = [w if isinstance(w, Mapping) else {"message": w} for w in _list(meta.get("warnings"))]
    if not items:
        return None
    shown = [(_text(w.get("source")) or "modelkb", w.get("message")) for w in items[:MAX_WARNINGS]]
    return {"entries": shown, "more": max(0, len(items) - MAX_WARNINGS)}


def imported_provenance(meta: Mapping[str, Any]) -> str | None:
    """Where an imported run came from, and what that tool did not record (never invented)."""
    imported = meta.get("imported")
    if not isinstance(imported, Mapping) or not imported.get("from"):
        return None
    tool = _text(imported["from"])
    text = f"Imported from {tool} ({_text(imported.get('uri'))})."
    missing = [str(m) for m in imported.get("not_recorded") or []]
    if missing:
        text += f" Not recorded by {tool}: {', '.join(missing)}."
    if imported.get("axis") == "step":
        text += " Metrics were logged per step; the history's epoch numbers count the steps."
    return text


def card_context(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Every variable of the card template (sections that do not apply are ``None`` or empty)."""
    return {
        "front_matter": dump_front_matter(front_matter(meta)),
        "title": f"{_text(meta.get('project'))} / {_text(meta.get('name'))}",
        "summary": _summary(meta),
        "notes": meta.get("notes") or None,
        "imported": imported_provenance(meta),
        "hyperparameters": _hyperparameters(meta),
        "architecture": _architecture(meta),
        "dataset": _dataset(meta),
        "results": _results(meta),
        "environment": _environment_rows(meta),
        "how_to_use": _how_to_use(meta),
        "reproducibility": _reproducibility(meta),
        "warnings": _warnings(meta),
    }


@functools.lru_cache(maxsize=1)
def _jinja() -> Environment:
    env = Environment(
        loader=PackageLoader("modelkb", "templates"),
        undefined=StrictUndefined,
        autoescape=False,  # Markdown, not HTML: user text is escaped by the md_* filters
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(inline=md_inline, cell=md_cell, block=md_block)
    return env


def render_model_card(meta: Mapping[str, Any]) -> str:
    """Render the bundle's ``README.md``.

    Args:
        meta: The bundle metadata; only ``project``, ``name``, ``id`` and ``status`` are needed,
            every other section is shown when present.

    Returns:
        Markdown with YAML front matter valid for the Hugging Face Hub (``library_name``, ``tags``,
        ``datasets``, ``metrics``, ``license`` when given, and a ``model-index`` with one result
        per final metric).
    """
    return _jinja().get_template(TEMPLATE).render(**card_context(meta))
