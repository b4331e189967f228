"""Values of the recording API in the form the bundle format gives them, checked at the call.

``Experiment.set_dataset``, ``set_hyperparameters`` and ``set_architecture`` pass what they were
given through here before anything is recorded. Natural spellings are coerced (``shapes=(8, 8)``,
``optimizer="adam"``, ``epochs="10"``, ``kind="images"``, ``classes=10``); anything else the schema
rejects raises a ValueError naming the field, at the call, instead of a bundle that ``modelkb show``
refuses and ``modelkb reindex`` drops. The shipped JSON Schema stays the one owner of the rules:
the coerced section is validated against it.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Mapping
from typing import Any

from modelkb.schema import fast_section_check, json_path, load_schema

# Plurals and short names users reach for; the value on the right is the schema's enum member.
_KIND_SYNONYMS = {
    "images": "image",
    "img": "image",
    "texts": "text",
    "table": "tabular",
    "tables": "tabular",
}
_COUNTS = ("epochs", "batch_size", "steps_per_epoch")


def dataset_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``set_dataset`` fields in the bundle's form.

    Raises:
        ValueError: A field cannot be put in the form the schema gives it; the message names it.
    """
    out = dict(fields)
    if "kind" in out:
        out["kind"] = _kind(out["kind"])
    if "shapes" in out and isinstance(out["shapes"], list):
        out["shapes"] = {"x": out["shapes"]}  # one shape given: the input's, as written
    if "samples" in out:
        out["samples"] = _samples(out["samples"])
    if (
        "classes" in out
        and isinstance(out["classes"], (int, float))
        and not isinstance(out["classes"], bool)
    ):
        count = _count("dataset.classes", out.pop("classes"))  # a count, not names
        if out.setdefault("num_classes", count) != count:
            raise ValueError(
                f"Expected dataset.classes and num_classes to agree. Received: classes={count!r}, "
                f"num_classes={out['num_classes']!r}"
            )
    if "classes" in out and not isinstance(out["classes"], list):
        raise ValueError(
            "Expected dataset.classes to be a list of class names, e.g. classes=['cat', 'dog'] "
            f"(or a count: classes=10). Received: classes={out['classes']!r}"
        )
    if out.get("num_classes") is not None:
        out["num_classes"] = _count("dataset.num_classes", out["num_classes"])
    check_section("dataset", out)
    return out


def hyperparameter_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """``set_hyperparameters`` values in the bundle's form.

    Raises:
        ValueError: A well-known hyperparameter has a value the schema cannot hold.
    """
    out = dict(values)
    if isinstance(out.get("optimizer"), str):
        out["optimizer"] = {"name": out["optimizer"], "config": {}}
    for key in _COUNTS:
        if out.get(key) is not None:
            out[key] = _count(f"hyperparameters.{key}", out[key])
    if isinstance(out.get("learning_rate"), str):
        out["learning_rate"] = _number("hyperparameters.learning_rate", out["learning_rate"])
    if isinstance(out.get("metrics"), str):
        out["metrics"] = [out["metrics"]]
    check_section("hyperparameters", out)
    return out


def architecture_summary(architecture: Any) -> dict[str, Any]:
    """``set_architecture``'s summary in the bundle's form.

    Raises:
        ValueError: The summary is not a mapping, or a layer or count cannot be put in the schema's form.
    """
    if not isinstance(architecture, Mapping):
        raise ValueError(
            f"Expected the architecture to be a mapping such as {{'layers': [...]}}. "
            f"Received: architecture={architecture!r}"
        )
    out = dict(architecture)
    for key in ("parameter_count", "trainable_parameter_count"):
        if out.get(key) is not None:
            out[key] = _count(f"architecture.{key}", out[key])
    if isinstance(out.get("layers"), list):
        out["layers"] = [_layer(i, layer) for i, layer in enumerate(out["layers"])]
    for key in ("inputs", "outputs"):
        if isinstance(out.get(key), list):
            out[key] = [
                _tensor(f"architecture.{key}[{i}]", spec) for i, spec in enumerate(out[key])
            ]
    check_section("architecture", out)
    return out


def check_section(section: str, value: Mapping[str, Any]) -> None:
    """Validate one top-level section of ``metadata.json`` against the shipped schema.

    Raises:
        ValueError: The section does not follow the schema; the message names the JSON location.
    """
    fast = fast_section_check(section)
    if fast is not None:
        try:
            fast(value)
            return  # formats (timestamps) are not checked here; sealing validates the whole
        except Exception:
            pass
    from jsonschema.exceptions import best_match

    error = best_match(_section_validator().iter_errors({section: value}))
    if error is None:
        return
    where = json_path(deque(error.absolute_path))
    message = re.sub(r"\s*[\r\n]+\s*", " ", error.message)
    raise ValueError(f"Expected {where} to follow the bundle format (schema v1): {message}")


@functools.lru_cache(maxsize=1)
def _section_validator() -> Any:
    """The metadata schema without its required keys, so one section can be checked alone."""
    from jsonschema import Draft202012Validator

    schema = load_schema()
    schema["required"] = []
    return Draft202012Validator(schema)


@functools.lru_cache(maxsize=1)
def _kinds() -> tuple[str, ...]:
    return tuple(load_schema()["properties"]["dataset"]["properties"]["kind"]["enum"])


def _kind(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # the schema check names it
    word = value.strip().lower()
    word = _KIND_SYNONYMS.get(word, word)
    if word not in _kinds():
        allowed = ", ".join(repr(k) for k in _kinds())
        raise ValueError(f"Expected dataset.kind to be one of {allowed}. Received: kind={value!r}")
    return word


def _samples(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            str(split): None if n is None else _count(f"dataset.samples.{split}", n)
            for split, n in value.items()
        }
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        # A bare count could be the whole set or the training split; guessing would mislabel splits.
        raise ValueError(
            f"Expected dataset.samples to count each split, e.g. samples={{'train': {value!r}}} "
            f"or samples={{'train': ..., 'val': ..., 'test': ...}}. Received: samples={value!r}"
        )
    return value


def _layer(index: int, layer: Any) -> Any:
    where = f"architecture.layers[{index}]"
    if not isinstance(layer, Mapping):
        raise ValueError(
            f"Expected {where} to be a mapping such as {{'name': 'dense', 'params': 64}}. "
            f"Received: {where}={layer!r}"
        )
    out = dict(layer)
    if out.get("params") is not None:
        out["params"] = _count(f"{where}.params", out["params"])
    return out


def _tensor(where: str, spec: Any) -> Any:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("shape"), list):
        return spec
    out = dict(spec)
    out["shape"] = [
        _count(f"{where}.shape", d) if isinstance(d, str) and d.strip().isdigit() else d
        for d in out["shape"]
    ]
    return out


def _count(where: str, value: Any) -> int:
    """A non-negative int from an int, an integral float or a numeric string."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if (
        number is None
        or number != number
        or number in (float("inf"), float("-inf"))
        or number != int(number)
        or number < 0
    ):
        raise ValueError(
            f"Expected {where} to be a non-negative integer. Received: {where.rsplit('.', 1)[-1]}={value!r}"
        )
    return int(number)


def _number(where: str, value: str) -> float:
    try:
        return float(value.strip())
    except ValueError as err:
        raise ValueError(
            f"Expected {where} to be a number or a serialized schedule. Received: "
            f"{where.rsplit('.', 1)[-1]}={value!r}"
        ) from err
