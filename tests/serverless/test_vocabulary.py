"""Every preprocessing op the collector can write is either replayed by the handler or declared record-only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from modelkb.collector.preprocessing_steps import RECORD_ONLY_OPS, inference_steps
from modelkb.errors import PackageError
from modelkb.serverless.preprocess_runtime import SUPPORTED_OPS
from modelkb.serverless.spec import build_spec

COLLECTOR = Path(__file__).resolve().parents[2] / "collector"


def _emitted_ops() -> set[str]:
    """Op names in the collector's source: the string values a step's ``"op"`` can take."""
    found: set[str] = set()
    for path in COLLECTOR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values = []
            if isinstance(node, ast.Dict):
                values = [
                    v
                    for k, v in zip(node.keys, node.values)
                    if isinstance(k, ast.Constant) and k.value == "op"
                ]
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "op" for t in node.targets
            ):
                values = [node.value]
            for value in values:
                found.update(_results(value))
    return found


def _results(expr: ast.expr) -> set[str]:
    """The strings an expression can evaluate to: a literal, or either branch of ``a if c else b``
    (a computed name, such as a scikit-learn class in snake case, is a fitted record-only step)."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.IfExp):
        return _results(expr.body) | _results(expr.orelse)
    return set()


def test_every_emitted_op_is_replayable_or_record_only() -> None:
    emitted = _emitted_ops()
    assert {
        "scale",
        "normalize",
        "pad",
        "tokenize",
        "center_crop",
        "to_tensor",
    } <= emitted  # the harvest works
    unaccounted = emitted - SUPPORTED_OPS - RECORD_ONLY_OPS
    assert not unaccounted, (
        f"ops written by the collector that the handler neither replays nor declares: {unaccounted}"
    )


def test_a_train_only_augmentation_before_replayable_steps_packages(sample_metadata: dict) -> None:
    steps = [
        {"op": "augment", "layer": "RandomFlip", "train_only": True},
        {"op": "scale", "factor": 0.0625},
    ]
    assert inference_steps(steps) == steps[1:]
    sample_metadata["dataset"]["preprocessing"] = steps
    spec = build_spec(sample_metadata)
    assert [s["op"] for s in spec["preprocessing"]] == ["scale"]


@pytest.mark.parametrize("op", sorted(RECORD_ONLY_OPS - {"augment"}))
def test_a_record_only_step_is_refused_naming_it(sample_metadata: dict, op: str) -> None:
    sample_metadata["dataset"]["preprocessing"] = [{"op": op, "source": f"T.{op}()", "line": 7}]
    with pytest.raises(
        PackageError,
        match=rf"\({op}\) \(T\.{op}\(\), line 7\) is recorded but .* cannot replay it yet",
    ):
        build_spec(sample_metadata)
