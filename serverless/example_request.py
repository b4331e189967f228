"""A ``/predict`` body that a packaged model accepts: for the catalog's ``curl`` line and the deploy record."""

from __future__ import annotations

from typing import Any


def example_request(spec: dict[str, Any]) -> dict[str, Any]:
    """One sample shaped like the model's recorded input (zeros, a short text, or named features)."""
    kind = spec.get("kind")
    features = [str(name) for name in spec.get("features") or []]
    if kind == "tabular" and features:
        return {"features": dict.fromkeys(features, 0.0)}
    if kind == "text":
        return {"text": "a short review"}
    shape = [dim if isinstance(dim, int) and dim > 0 else 1 for dim in (spec.get("input") or {}).get("shape", [])[1:]]
    return {"inputs": _zeros(shape or [1])}


def _zeros(shape: list[int]) -> Any:
    if len(shape) == 1:
        return [0.0] * shape[0]
    return [_zeros(shape[1:]) for _ in range(shape[0])]
