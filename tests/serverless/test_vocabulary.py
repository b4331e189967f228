"""The preprocessing vocabulary (``modelkb.preprocessing``) is the one contract: every op the collector
can write is replayed by the shipped runtime or declared record-only, the runtime's dispatch table
is exactly the replayed set, and a field's other spellings are served as its canonical name."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from modelkb.errors import PackageError
from modelkb.preprocessing import RECORD_ONLY_OPS, REPLAYED_OPS, inference_steps
from modelkb.serverless.preprocess_runtime import STEPS, prepare_batch
from modelkb.serverless.spec import build_spec

COLLECTOR = Path(__file__).resolve().parents[2] / "collector"


def _emitted_ops() -> set[str]:
    """Op names in the collector's source: the string values a step's ``"op"`` can take."""
    found: set[str] = set()
    for path in COLLECTOR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values = []
            if isinstance(node, ast.Dict):
                values = [
                    v
                    for k, v in zip(node.keys, node.values, strict=True)
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
    unaccounted = emitted - REPLAYED_OPS - RECORD_ONLY_OPS
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


def test_the_runtime_dispatches_exactly_the_replayed_ops() -> None:
    assert set(STEPS) == REPLAYED_OPS
    assert not REPLAYED_OPS & RECORD_ONLY_OPS


def test_other_spellings_of_a_field_are_served_as_the_canonical_one(sample_metadata: dict) -> None:
    """Hand-recorded steps in numpy's words (``perm``, ``scale`` for a factor) package and replay."""
    sample_metadata["dataset"].update(kind="other", features=None)
    sample_metadata["architecture"]["inputs"] = [
        {"name": "x", "shape": [None, 3, 2], "dtype": "float32"}
    ]
    sample_metadata["dataset"]["preprocessing"] = [
        {"op": "scale", "scale": 0.5},
        {"op": "transpose", "perm": [0, 2, 1]},
    ]
    spec = build_spec(sample_metadata)
    assert spec["preprocessing"] == [
        {"op": "scale", "factor": 0.5},
        {"op": "transpose", "axes": [0, 2, 1]},
    ]
    raw = np.arange(6, dtype=np.float64).reshape(1, 2, 3)
    batch = prepare_batch(raw.tolist(), spec)
    np.testing.assert_array_equal(batch, np.transpose(raw * 0.5, (0, 2, 1)).astype(np.float32))


def test_a_token_list_vocabulary_is_shipped_as_a_mapping(sample_metadata: dict) -> None:
    sample_metadata["dataset"].update(kind="text", features=None)
    sample_metadata["architecture"]["inputs"] = [
        {"name": "ids", "shape": [None, 4], "dtype": "int64"}
    ]
    sample_metadata["dataset"]["preprocessing"] = [
        {
            "op": "tokenize",
            "tokenizer": "Tokenizer",
            "vocabulary": ["", "<unk>", "good", "film"],
            "oov": 1,
        },
        {"op": "pad", "maxlen": 4},
    ]
    spec = build_spec(sample_metadata)
    tokenize = spec["preprocessing"][0]
    assert tokenize["vocab"] == {"": 0, "<unk>": 1, "good": 2, "film": 3}
    assert "vocabulary" not in tokenize and tokenize["oov_index"] == 1
    assert prepare_batch(["good bad film"], spec).tolist() == [[0, 2, 1, 3]]
