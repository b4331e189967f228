"""Keras lookup layers written in ONNX: every supported setting gives Keras' own numbers on raw
inputs, unseen tokens included, in onnxruntime; unsupported settings are refused by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tf2onnx")
keras = pytest.importorskip("keras")

COLOURS = np.array(["red", "green", "blue", "green", "red", "red"])
CODES = np.array([3, 7, 7, 1, 3, 9])


def _model(layer: Any, *, text: bool, tokens: int) -> Any:
    """One named input of ``tokens`` values through ``layer``, then a dense head."""
    raw = keras.Input(
        shape=(tokens,), name="colour" if text else "code", dtype="string" if text else "int64"
    )
    adapted = layer(raw)
    if keras.ops.ndim(adapted) == 3:
        adapted = keras.layers.Flatten()(adapted)
    out = keras.layers.Dense(2, activation="softmax")(keras.ops.cast(adapted, "float32"))
    return keras.Model({raw.name: raw}, out)


def _export(tmp_path: Path, model: Any, sample: dict[str, Any]) -> dict[str, Any]:
    from modelkb import Experiment

    exp = Experiment("Lookups", "t", seed=0, store=tmp_path / "store")
    exp.log_model(model, sample)  # the manual API: the same export as the callback's
    exp.finish()
    return exp.metadata


def _onnx_answer(tmp_path: Path, metadata: dict[str, Any], feed: dict[str, Any]) -> Any:
    import onnxruntime as ort

    from modelkb import Store

    path = Store(tmp_path / "store").get(metadata["id"]).path / "model.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


@pytest.mark.parametrize(
    ("mode", "mask", "tokens"),
    [
        ("int", None, 1),
        ("one_hot", None, 1),
        ("one_hot", "", 1),
        ("multi_hot", None, 3),
        ("count", None, 3),
        ("int", "", 2),
    ],
)
def test_string_lookup_modes_match_keras_on_raw_and_unseen_tokens(
    tmp_path: Path, mode: str, mask: str | None, tokens: int
) -> None:
    layer = keras.layers.StringLookup(output_mode=mode, mask_token=mask)
    layer.adapt(COLOURS)
    model = _model(layer, text=True, tokens=tokens)
    rows = np.resize(COLOURS, (4, tokens)).astype(object)
    metadata = _export(tmp_path, model, {"colour": rows})
    assert metadata["onnx"]["lookups_in_graph"] == [layer.name]
    assert metadata["onnx"]["max_abs_diff"] < 1e-6, metadata["onnx"]
    unseen = np.array([["purple"] * tokens, ["red"] + ["teal"] * (tokens - 1)], dtype=object)
    keras_answer = keras.ops.convert_to_numpy(model({"colour": unseen}))
    np.testing.assert_allclose(
        _onnx_answer(tmp_path, metadata, {"colour": unseen}), keras_answer, atol=1e-6
    )


@pytest.mark.parametrize("mode", ["int", "one_hot", "multi_hot"])
def test_integer_lookup_matches_keras_on_unseen_codes(tmp_path: Path, mode: str) -> None:
    layer = keras.layers.IntegerLookup(output_mode=mode)
    layer.adapt(CODES)
    tokens = 1 if mode != "multi_hot" else 2
    model = _model(layer, text=False, tokens=tokens)
    metadata = _export(tmp_path, model, {"code": np.resize(CODES, (4, tokens)).astype("int64")})
    assert metadata["onnx"]["max_abs_diff"] < 1e-6, metadata["onnx"]
    step = next(s for s in metadata["dataset"]["preprocessing"] if s["op"] == "lookup")
    assert step["input"] == "code" and sorted(step["vocabulary"][1:]) == [1, 3, 7, 9]
    unseen = np.full((2, tokens), 42, dtype="int64")
    keras_answer = keras.ops.convert_to_numpy(model({"code": unseen}))
    np.testing.assert_allclose(
        _onnx_answer(tmp_path, metadata, {"code": unseen}), keras_answer, atol=1e-6
    )


def test_an_unsupported_lookup_is_refused_by_name_in_one_warning(tmp_path: Path) -> None:
    layer = keras.layers.StringLookup(output_mode="tf_idf")
    layer.adapt(COLOURS)
    model = _model(layer, text=True, tokens=3)
    metadata = _export(tmp_path, model, {"colour": np.resize(COLOURS, (4, 3)).astype(object)})
    (warning,) = [w["message"] for w in metadata["warnings"] if w["source"] == "onnx"]
    assert f"layer {layer.name!r}" in warning and "output_mode='tf_idf'" in warning
    assert "onnx" not in metadata or not metadata["onnx"].get("path")
