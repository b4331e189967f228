"""A ``/predict`` body that a packaged model accepts, and the answer it gets.

One owner for the example shown everywhere: ``GET /metadata``, the generated README, the catalog's
``curl`` line and the deploy record all use the body written into ``spec.json`` at package time.
"""

from __future__ import annotations

from typing import Any

_SHAPING_OPS = frozenset({"resize", "reshape", "expand_dims", "transpose", "flatten"})
"""Steps that change a sample's shape: an image model recorded with one takes raw ``(H, W[, C])``."""


def example_request(spec: dict[str, Any]) -> dict[str, Any]:
    """One sample in the model's natural form: named features, a text, token ids or an array of zeros."""
    recorded = spec.get("example_request")
    if isinstance(recorded, dict):
        return recorded
    if spec.get("named_inputs"):
        return {
            "inputs": [{entry["name"]: _example_value(entry) for entry in spec["named_inputs"]}]
        }
    kind = spec.get("kind")
    features = [str(name) for name in spec.get("features") or []]
    if kind == "tabular" and features:
        return {"inputs": [dict.fromkeys(features, 0.0)]}  # records by feature name
    steps = {step.get("op") for step in spec.get("preprocessing") or []}
    if kind == "text" and "tokenize" in steps:
        return {"inputs": ["a short review"]}
    if kind == "text":
        length = (spec.get("text") or {}).get("maxlen") or 8
        return {
            "inputs": [1] * min(int(length), 8)
        }  # token ids: the model has no recorded tokenizer
    shape = [
        dim if isinstance(dim, int) and dim > 0 else 1
        for dim in (spec.get("input") or {}).get("shape", [])[1:]
    ]
    image = spec.get("image") or {}
    if kind == "image" and image and steps & _SHAPING_OPS:
        # the recorded steps shape raw pixels into the model input: send an image as it is stored
        shape = [image["height"], image["width"]] + (
            [image["channels"]] if image.get("channels", 1) > 1 else []
        )
    return {"inputs": _zeros(shape or [1])}


def request_samples(body: dict[str, Any]) -> tuple[list[Any], bool]:
    """The samples of a ``/predict`` body and whether it is a batch, read as the generated handler reads it."""
    if "instances" in body:
        return list(body["instances"]), True
    (value,) = (v for k, v in body.items() if k != "top_k")
    if isinstance(value, list) and value and all(isinstance(item, (dict, str)) for item in value):
        return list(value), True  # records or texts
    return [value], False


def _example_value(entry: dict[str, Any]) -> Any:
    """One sample's value of a named input: its first recorded choice, else a zero (or "")."""
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in entry.get("shape", [])[1:]]
    choices = entry.get("choices") or []
    text = entry.get("dtype") in ("string", "str")
    value: Any = choices[0] if choices else "" if text else 0 if "int" in entry["dtype"] else 0.0
    if not shape or shape == [1]:
        return value
    return _filled(shape, value)


def _zeros(shape: list[int]) -> Any:
    return _filled(shape, 0.0)


def _filled(shape: list[int], value: Any) -> Any:
    if len(shape) == 1:
        return [value] * shape[0]
    return [_filled(shape[1:], value) for _ in range(shape[0])]
