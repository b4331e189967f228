"""Derive a handler spec from a bundle's metadata: what the generated code needs to know.

The spec is plain JSON (written as ``spec.json`` into the package and read by the shipped runtime):
data kind, model input (name, shape, dtype), class labels, feature order, the recorded
preprocessing steps (validated here, so an unsupported step fails at ``modelkb package`` time, not
on the first request), image geometry and pixel range, text vocabulary and length.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelkb.errors import PackageError
from modelkb.preprocessing import (
    LINEAR_OPS,
    PAD_DEFAULTS,
    PAD_SIDES,
    RECORD_ONLY_OPS,
    REPLAYED_OPS,
    canonical_step,
    inference_steps,
    lookup_choices,
    lookups_by_input,
    missing_values,
)
from modelkb.serverless.preprocess_runtime import numpy_dtype
from modelkb.task import run_task

logger = logging.getLogger(__name__)

SPEC_VERSION = 1


def build_spec(
    metadata: Mapping[str, Any],
    *,
    bundle_path: Path | None = None,
    graph_inputs: Sequence[Mapping[str, Any]] | None = None,
    max_body_bytes: int = 1_048_576,
    max_batch: int = 64,
) -> dict[str, Any]:
    """The handler spec of one run.

    Args:
        metadata: The bundle's ``metadata.json``.
        bundle_path: The bundle folder (to read a vocabulary file a ``tokenize`` step names).
        graph_inputs: ``[{name, shape, dtype}]`` read from the ONNX model itself; they win over the
            metadata's ``architecture.inputs`` because they are what actually runs. Several inputs
            (or a text one) make the model one of *named inputs*, served from records.
        max_body_bytes: Largest request body the handler accepts.
        max_batch: Most samples one request may carry.

    Raises:
        PackageError: The metadata lacks the model input or records a step the runtime cannot replay.
    """
    dataset = dict(metadata.get("dataset") or {})
    graph_inputs = list(graph_inputs or [])
    model = _model_input(metadata, graph_inputs[0] if graph_inputs else None)
    named = _named_inputs(dataset, graph_inputs)
    kind = "tabular" if named else str(dataset.get("kind") or _guess_kind(model))
    if kind not in ("image", "tabular", "text", "other"):
        raise PackageError(f"unknown dataset.kind {kind!r}; expected image, tabular, text or other")
    recorded = list(dataset.get("preprocessing") or [])
    replayed = {
        id(step) for step in inference_steps([s for s in recorded if isinstance(s, Mapping)])
    }
    steps = [
        _check_step(step, i, bundle_path)
        for i, step in enumerate(recorded)
        if id(step) in replayed or not isinstance(step, Mapping)
    ]
    if named:
        steps = _steps_of_named_inputs(steps, recorded, named)
    classes = dataset.get("classes")
    spec: dict[str, Any] = {
        "spec_version": SPEC_VERSION,
        "experiment": {key: metadata.get(key) for key in ("id", "name", "project")},
        "framework": (metadata.get("framework") or {}).get("name"),
        "kind": kind,
        "input": model,
        "classes": [str(c) for c in classes] if isinstance(classes, list) and classes else None,
        "features": [entry["name"] for entry in named] if named else _features(dataset),
        "named_inputs": named,
        "preprocessing": steps,
        "task": run_task(metadata),
        "postprocess": "none",
        "image": _image(model, dataset, steps) if kind == "image" else None,
        "text": _text(metadata, model, steps) if kind == "text" else None,
        "limits": {"max_body_bytes": int(max_body_bytes), "max_batch": int(max_batch)},
    }
    return spec


def _model_input(metadata: Mapping[str, Any], found: Mapping[str, Any] | None) -> dict[str, Any]:
    inputs = (metadata.get("architecture") or {}).get("inputs") or []
    recorded = dict(inputs[0]) if inputs and isinstance(inputs[0], Mapping) else {}
    if found:
        if recorded.get("shape") and _rank(recorded["shape"]) != _rank(found["shape"]):
            logger.warning(
                "metadata input shape %s differs from the ONNX model's %s; using the model's",
                recorded.get("shape"),
                found["shape"],
            )
        merged = {**recorded, **{k: v for k, v in found.items() if v is not None}}
        # The ONNX graph often leaves axes symbolic; keep the recorded sizes where they agree in rank.
        if recorded.get("shape") and _rank(recorded["shape"]) == _rank(found["shape"]):
            merged["shape"] = [
                f if f is not None else r
                for f, r in zip(found["shape"], recorded["shape"], strict=True)
            ]
            merged["shape"][0] = None
        recorded = merged
    if not recorded.get("shape"):
        raise PackageError("the bundle records no model input shape (architecture.inputs[0].shape)")
    shape = [
        None if d is None or (isinstance(d, int) and d < 0) else int(d) for d in recorded["shape"]
    ]
    shape[0] = None
    dtype = str(recorded.get("dtype") or "float32").replace("torch.", "")
    dtype = {"str": "string"}.get(dtype, dtype)
    try:
        numpy_dtype(dtype)
    except ValueError as err:
        raise PackageError(f"unsupported model input dtype {dtype!r}") from err
    return {"name": str(recorded.get("name") or "input"), "shape": shape, "dtype": dtype}


SHAPING_OPS = frozenset({"reshape", "cast", "expand_dims", "flatten"})
"""Data-pipeline steps that only shape or type an array: for named inputs each record value is
shaped and typed to its input anyway (``age.reshape(-1, 1)`` in the structured-data recipe)."""


def _named_inputs(
    dataset: Mapping[str, Any], graph_inputs: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]] | None:
    """The model's inputs by name when it has several (or one of text), with the recorded lookup
    vocabulary of each as its ``choices``; ``None`` for a model of one numeric input."""
    if len(graph_inputs) < 2 and not any(i.get("dtype") == "string" for i in graph_inputs):
        return None
    lookups = lookups_by_input(dataset.get("preprocessing"))
    named = []
    for graph_input in graph_inputs:
        dtype = str(graph_input.get("dtype") or "float32")
        try:
            numpy_dtype(dtype)
        except ValueError as err:
            raise PackageError(
                f"unsupported dtype {dtype!r} of model input {graph_input.get('name')!r}"
            ) from err
        entry: dict[str, Any] = {
            "name": str(graph_input["name"]),
            "shape": [
                None,
                *[d if isinstance(d, int) and d > 0 else None for d in graph_input["shape"][1:]],
            ],
            "dtype": dtype,
        }
        choices = lookup_choices(lookups.get(entry["name"]))
        if choices is not None:
            entry["choices"] = choices
        named.append(entry)
    return named


def _steps_of_named_inputs(
    steps: list[dict[str, Any]], recorded: Sequence[Any], named: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """A model of named inputs gets each value as it is: shaping steps are dropped, and a step that
    changes values is refused (which input would it apply to?)."""
    changing = [step for step in steps if step["op"] not in SHAPING_OPS]
    if changing:
        step = changing[0]
        where = (
            f" ({step['source']}, line {step['line']})"
            if step.get("source") and step.get("line")
            else ""
        )
        names = ", ".join(entry["name"] for entry in named)
        raise PackageError(
            f"the recorded step {step['op']!r}{where} cannot be replayed for a model of named "
            f"inputs ({names}): it is not known which input it applies to",
            hint="Do it inside the model (a Normalization layer on that input), so model.onnx holds it.",
        )
    return []


def _rank(shape: Sequence[Any]) -> int:
    return len(list(shape))


def _guess_kind(model: Mapping[str, Any]) -> str:
    per_sample = model["shape"][1:]
    if "int" in model["dtype"] and len(per_sample) == 1:
        return "text"
    if len(per_sample) == 1:
        return "tabular"
    if len(per_sample) in (2, 3):
        return "image"
    return "other"


def _check_step(step: Any, index: int, bundle_path: Path | None) -> dict[str, Any]:
    if not isinstance(step, Mapping) or "op" not in step:
        raise PackageError(f"dataset.preprocessing[{index}] is not a {{'op': ...}} step: {step!r}")
    step = canonical_step(step)
    op = step["op"]
    _check_values(step, index)
    if op == "transform" and step.get("unrecognised"):
        raise PackageError(
            f"dataset.preprocessing[{index}]: {step.get('note') or step.get('name')}",
            hint="Record what it does with exp.set_dataset(preprocessing=[...]) in replayable ops "
            f"({', '.join(sorted(REPLAYED_OPS))}), e.g. {{'op': 'resize', 'height': 8, 'width': 8}}, "
            "then train again; or do the step inside the model so model.onnx holds it.",
        )
    if op in RECORD_ONLY_OPS:
        where = (
            f" ({step['source']}, line {step['line']})"
            if step.get("source") and step.get("line")
            else ""
        )
        raise PackageError(
            f"dataset.preprocessing[{index}] ({op}){where} is recorded but the generated handler cannot replay it yet",
            hint="Do this step inside the model (it is then exported with it), or record an "
            f"equivalent replayable step: {', '.join(sorted(REPLAYED_OPS))}.",
        )
    if op not in REPLAYED_OPS:
        raise PackageError(
            f"dataset.preprocessing[{index}] uses op {op!r}, which the generated handler cannot "
            f"replay; supported: {', '.join(sorted(REPLAYED_OPS))}"
        )
    if op == "tokenize":
        step["vocab"] = _vocab(step, bundle_path, index)
        step.pop("vocabulary", None)
    if op == "tokenize" and step.get("tokenizer") == "TextVectorization":
        _check_text_vectorization(step, index)
    if op == "pad":
        step = {
            **PAD_DEFAULTS,
            **step,
        }  # written out in spec.json: the handler never guesses a side
        if not isinstance(step.get("maxlen"), int):
            raise PackageError(f"dataset.preprocessing[{index}] (pad) needs an integer 'maxlen'")
        for field in ("padding", "truncating"):
            if step[field] not in PAD_SIDES:
                raise PackageError(
                    f"dataset.preprocessing[{index}] (pad) has {field}={step[field]!r}; "
                    f"expected one of {', '.join(PAD_SIDES)}"
                )
    return step


def _check_values(step: Mapping[str, Any], index: int) -> None:
    """Refuse a step fitted to the data whose values were not recorded: replaying it would guess."""
    missing = (
        [] if step["op"] == "tokenize" else missing_values(step)
    )  # a vocabulary: _vocab says it
    if not missing:
        return
    where = (
        f" ({step['source']}, {step.get('file', 'training source')} line {step['line']})"
        if step.get("source") and step.get("line")
        else ""
    )
    raise PackageError(
        f"dataset.preprocessing[{index}] ({step['op']}){where} was fitted to the training data "
        f"and its {'values' if missing == ['params'] else ', '.join(missing)} were not recorded, "
        "so the handler cannot replay it",
        hint="Put the layer inside the model (it is then exported with it), or record the values: "
        "exp.set_dataset(preprocessing=[{'op': 'normalize', 'mean': [...], 'std': [...]}]).",
    )


def _check_text_vectorization(step: Mapping[str, Any], index: int) -> None:
    """The handler replays ``TextVectorization`` with ``output_mode="int"``, its named standardizations and splits."""
    problems = []
    if step.get("output_mode", "int") != "int":
        problems.append(f"output_mode={step['output_mode']!r} (only 'int')")
    if step.get("standardize", "lower_and_strip_punctuation") not in (
        None,
        "lower",
        "strip_punctuation",
        "lower_and_strip_punctuation",
    ):
        problems.append(f"standardize={step['standardize']!r} (a custom function)")
    if step.get("split", "whitespace") not in ("whitespace", "character"):
        problems.append(f"split={step['split']!r} (a custom function)")
    if step.get("ngrams") not in (None, 1):
        problems.append(f"ngrams={step['ngrams']!r}")
    if problems:
        raise PackageError(
            f"dataset.preprocessing[{index}] (TextVectorization) cannot be replayed by the handler: "
            f"{'; '.join(problems)}",
            hint="Use output_mode='int' with a named standardize and split, or send token ids.",
        )


def _vocab(step: Mapping[str, Any], bundle_path: Path | None, index: int) -> dict[str, int]:
    """The step's vocabulary as ``{token: id}``: the recorded mapping or token list, else the JSON
    file ``vocab_path`` names inside the bundle."""
    if isinstance(step.get("vocab"), Mapping):
        return {str(token): int(i) for token, i in step["vocab"].items()}
    if isinstance(step.get("vocabulary"), list):
        return {str(token): i for i, token in enumerate(step["vocabulary"])}
    name = step.get("vocab_path")
    if not name or bundle_path is None:
        raise PackageError(
            f"dataset.preprocessing[{index}] (tokenize) has no 'vocab', 'vocabulary' or 'vocab_path'"
        )
    path = (bundle_path / str(name)).resolve()
    if bundle_path.resolve() not in path.parents:
        raise PackageError(f"vocabulary file {name!r} is outside the bundle")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PackageError(f"cannot read the vocabulary file {path}: {err}") from err
    if isinstance(data, list):
        return {str(token): i for i, token in enumerate(data)}
    if isinstance(data, Mapping):
        return {str(token): int(i) for token, i in data.items()}
    raise PackageError(f"vocabulary file {path} must hold a JSON list or object")


def _features(dataset: Mapping[str, Any]) -> list[str] | None:
    for key in ("features", "feature_names", "columns"):
        value = dataset.get(key)
        if isinstance(value, list) and value and all(isinstance(v, (str, int)) for v in value):
            return [str(v) for v in value]
    return None


def _image(
    model: Mapping[str, Any], dataset: Mapping[str, Any], steps: list[dict[str, Any]]
) -> dict[str, Any]:
    dims = model["shape"][1:]
    channels_first = False
    if len(dims) == 2:
        height, width, channels = dims[0], dims[1], 1
    elif len(dims) == 3 and dims[0] in (1, 3, 4) and dims[-1] not in (1, 3, 4):
        channels, height, width = dims
        channels_first = True
    elif len(dims) == 3:
        height, width, channels = dims
    else:
        raise PackageError(
            f"an image model needs an (H, W), (H, W, C) or (C, H, W) input; got {dims}"
        )
    resize = next((s for s in steps if s["op"] == "resize"), None)
    if resize:
        height, width = int(resize["height"]), int(resize["width"])
    return {
        "height": height,
        "width": width,
        "channels": channels or 1,
        "channels_first": channels_first,
        "pixel_range": _pixel_range(dataset, steps),
    }


def _pixel_range(dataset: Mapping[str, Any], steps: list[dict[str, Any]]) -> list[float]:
    """The raw values a black and a white pixel stand for.

    ``dataset.pixel_range`` wins; else, when every recorded step is linear and the model-input range
    (``dataset.x_range``) is known, the steps are inverted (digits: x/16 in [0, 1] -> raw [0, 16]);
    else 0..255.
    """
    given = dataset.get("pixel_range") or dataset.get("raw_range")
    if isinstance(given, Mapping):
        given = [given.get("min"), given.get("max")]
    if (
        isinstance(given, list)
        and len(given) == 2
        and all(isinstance(v, (int, float)) for v in given)
    ):
        return [float(given[0]), float(given[1])]
    x_range = dataset.get("x_range")
    if isinstance(x_range, Mapping) and steps and all(s["op"] in LINEAR_OPS for s in steps):
        low, high = x_range.get("min"), x_range.get("max")
        if isinstance(low, (int, float)) and isinstance(high, (int, float)):
            inverted = [_invert(float(low), steps), _invert(float(high), steps)]
            if (
                all(v is not None and math.isfinite(v) for v in inverted)
                and inverted[0] < inverted[1]
            ):
                return [round(inverted[0], 9), round(inverted[1], 9)]
    return [0.0, 255.0]


def _invert(value: float, steps: list[dict[str, Any]]) -> float | None:
    for step in reversed(steps):
        op = step["op"]
        try:
            if op == "scale":
                value /= float(step["factor"])
            elif op == "rescale":
                value = (value - float(step.get("offset", 0.0))) / float(step["scale"])
            elif op in ("normalize", "standardize"):
                value = value * float(step.get("std", 1.0)) + float(step.get("mean", 0.0))
            elif op == "minmax":
                value = value * (float(step["max"]) - float(step["min"])) + float(step["min"])
        except (TypeError, ValueError, ZeroDivisionError, KeyError):
            return None  # per-channel lists: no single raw range
    return value


def _text(
    metadata: Mapping[str, Any], model: Mapping[str, Any], steps: list[dict[str, Any]]
) -> dict[str, Any]:
    pad = next((s for s in steps if s["op"] == "pad"), None)
    tokenize = next((s for s in steps if s["op"] == "tokenize"), None)
    fixed = tokenize.get("output_sequence_length") if tokenize else None
    maxlen = (
        int(pad["maxlen"])
        if pad
        else fixed
        if isinstance(fixed, int)
        else (model["shape"][1] if len(model["shape"]) == 2 else None)
    )
    vocab_size = None
    for layer in (metadata.get("architecture") or {}).get("layers") or []:
        config = layer.get("config") or {} if isinstance(layer, Mapping) else {}
        for key in ("input_dim", "num_embeddings"):
            if isinstance(config.get(key), int):
                vocab_size = config[key]
                break
        if vocab_size:
            break
    if vocab_size is None and tokenize is not None:
        ids = [*tokenize["vocab"].values(), int(tokenize.get("oov_index", 1)), 0]
        vocab_size = max(ids) + 1
    return {"maxlen": maxlen, "vocab_size": vocab_size, "tokenizer": tokenize is not None}
