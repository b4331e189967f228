"""Programs in the shapes users bring, trained for real, served, and compared with the framework.

Each script in ``tests/programs/`` is a well-known public recipe (keras.io / TensorFlow tutorials) with
its data loading made offline and ModelKB's two lines added. It trains, records its bundle and
writes the framework's own prediction on raw held-out inputs. The test packages the bundle, posts
those raw inputs to the generated handler and requires the same numbers (1e-5), and posts the
handler's own ``example_request`` and requires 200.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.apigw import call

pytestmark = pytest.mark.slow


def _train(
    program: str, tmp_path: Path, *needs: str, args: tuple[str, ...] = (), clean: bool = True
) -> tuple[Any, dict[str, Any]]:
    """Run one program; returns (the run's bundle entry, what the program wrote). ``clean``: the
    run must have recorded no warning."""
    for module in needs or ("keras", "tf2onnx"):
        pytest.importorskip(module)
    from support.user_programs import run_program

    from modelkb import Store

    result = run_program(program, tmp_path / "store", tmp_path, *args)
    entry = Store(tmp_path / "store").get(result["id"])
    if clean:
        assert not entry.metadata.get("warnings"), entry.metadata["warnings"]
    return entry, result


def _handler(entry: Any, tmp_path: Path) -> Any:
    from modelkb.serverless.local_server import load_handler
    from modelkb.serverless.render import render_package

    return load_handler(render_package(entry.path, entry.metadata, tmp_path / "package").path)


def _same_positive_probabilities(body: dict[str, Any], reference: Any) -> None:
    """A binary classifier's served P(label "1") per sample equals the framework's, to 1e-5."""
    served = [
        next(p["probability"] for p in answer["predictions"] if p["label"] == "1")
        for answer in body["results"]
    ]
    np.testing.assert_allclose(served, np.ravel(reference), atol=1e-5, rtol=0)


def _serves_raw_texts_like_keras(handler: Any, result: dict[str, Any]) -> None:
    """Raw texts (punctuation and all) as a list and one alone, and the handler's own example."""
    status, body, text = call(handler, "POST", "/predict", {"inputs": result["raw"]})
    assert status == 200, text
    _same_positive_probabilities(body, result["reference"])
    status, _, text = call(handler, "POST", "/predict", {"text": result["raw"][-1]})
    assert status == 200, text
    _example_is_accepted(handler)


def _example_is_accepted(handler: Any) -> None:
    status, meta, text = call(handler, "GET", "/metadata")
    assert status == 200, text
    status, answer, text = call(handler, "POST", "/predict", meta["example_request"])
    assert status == 200, text
    assert answer == meta["example_answer"]


def test_lstm_on_front_padded_sequences(tmp_path: Path) -> None:
    entry, result = _train("keras_lstm_padded.py", tmp_path)
    steps = entry.metadata["dataset"]["preprocessing"]
    assert [s["op"] for s in steps] == ["pad"] and steps[0][
        "padding"
    ] == "pre"  # train and test calls: one step
    handler = _handler(entry, tmp_path)
    status, body, text = call(
        handler, "POST", "/predict", {"instances": result["raw"]}
    )  # unpadded, varied lengths
    assert status == 200, text
    _same_positive_probabilities(body, result["reference"])
    _example_is_accepted(handler)
    readme = (tmp_path / "package" / "README.md").read_text(encoding="utf-8")
    assert '{"text"' not in readme  # no tokenizer recorded: the README offers token ids only


def test_regression_mlp_with_an_adapted_normalization_layer(tmp_path: Path) -> None:
    entry, result = _train("keras_regression.py", tmp_path)
    assert (
        entry.metadata["onnx"]["max_abs_diff"] < 1e-3
    )  # exported although Normalization captured constants
    handler = _handler(entry, tmp_path)
    status, body, text = call(handler, "POST", "/predict", {"instances": result["raw"]})
    assert status == 200, text
    served = [
        answer["outputs"] for answer in body["results"]
    ]  # values, no softmax, no class labels
    np.testing.assert_allclose(
        np.ravel(served), np.ravel(result["reference"]), rtol=1e-5, atol=1e-4
    )
    features = entry.metadata["dataset"]["features"]
    records = [dict(zip(features, row, strict=True)) for row in result["raw"][:3]]
    status, body, text = call(
        handler, "POST", "/predict", {"inputs": records}
    )  # records by name: a batch
    assert status == 200, text
    np.testing.assert_allclose(
        [a["outputs"] for a in body["results"]], result["reference"][:3], rtol=1e-5, atol=1e-4
    )
    for single in ({"inputs": records[0]}, {"features": records[0]}):  # one record
        status, one, text = call(handler, "POST", "/predict", single)
        assert status == 200, text
        np.testing.assert_allclose(one["outputs"], result["reference"][0], rtol=1e-5, atol=1e-4)
    _example_is_accepted(handler)
    readme = (tmp_path / "package" / "README.md").read_text(encoding="utf-8")
    assert '"outputs"' in readme and "probabilit" not in readme
    assert (
        "curl" in readme and '"age": 0.0' in readme
    )  # the example is the 10-feature record /metadata gives


def test_hand_written_torch_loop_registered_with_log_model(tmp_path: Path) -> None:
    entry, result = _train("torch_manual_loop.py", tmp_path, "torch", "onnxscript")
    meta = entry.metadata
    assert meta["framework"]["name"] == "pytorch" and meta["architecture"]["layers"]
    assert (
        meta["hyperparameters"]["optimizer"]["name"] == "Adam" and meta["hyperparameters"]["loss"]
    )
    assert (entry.path / "model.safetensors").is_file() and meta["onnx"]["max_abs_diff"] < 1e-4
    handler = _handler(entry, tmp_path)
    classes = meta["dataset"]["classes"]
    records = [dict(zip(meta["dataset"]["features"], row, strict=True)) for row in result["raw"]]
    status, body, text = call(
        handler, "POST", "/predict", {"inputs": records}
    )  # raw records: normalised by the handler
    assert status == 200, text
    served = [
        [{p["label"]: p["probability"] for p in a["predictions"]}[c] for c in classes]
        for a in body["results"]
    ]
    np.testing.assert_allclose(served, result["reference"], atol=1e-5, rtol=0)
    _example_is_accepted(handler)


def _served_probabilities(body: dict[str, Any], classes: list[str]) -> list[list[float]]:
    return [
        [{p["label"]: p["probability"] for p in a["predictions"]}[c] for c in classes]
        for a in body["results"]
    ]


def test_a_step_of_a_custom_dataset_not_recognised_is_named_then_served_once_recorded(
    tmp_path: Path,
) -> None:
    """A Dataset shrinking 28x28 scans to 8x8 in its own helper: the run warns naming the step and
    `package` refuses it; recorded as the hint says, raw scans are served like torch."""
    from modelkb.errors import PackageError
    from modelkb.serverless.render import render_package

    (tmp_path / "plain").mkdir()
    entry, _ = _train("torch_dataset_resize.py", tmp_path / "plain", "torch", clean=False)
    (warning,) = [w["message"] for w in entry.metadata["warnings"]]
    assert "Scans.__getitem__" in warning and "[28, 28]" in warning and "[1, 8, 8]" in warning
    with pytest.raises(PackageError, match=r"Scans\.__getitem__.*\[28, 28\].*\[1, 8, 8\]") as err:
        render_package(entry.path, entry.metadata, tmp_path / "refused")
    assert "exp.set_dataset(preprocessing=" in err.value.hint

    entry, result = _train("torch_dataset_resize.py", tmp_path, "torch", args=("--recorded",))
    assert entry.metadata["dataset"]["raw_range"] == {"min": 0.0, "max": 16.0}
    handler = _handler(entry, tmp_path)
    status, body, text = call(handler, "POST", "/predict", {"instances": result["raw"]})
    assert status == 200, text
    classes = [str(c) for c in range(10)]
    np.testing.assert_allclose(
        _served_probabilities(body, classes), result["reference"], atol=1e-5, rtol=0
    )
    _example_is_accepted(handler)


def test_text_vectorization_adapted_in_the_data_pipeline(tmp_path: Path) -> None:
    entry, result = _train("keras_text_vectorization.py", tmp_path)
    (step,) = entry.metadata["dataset"]["preprocessing"]
    assert step["op"] == "tokenize" and step["vocabulary"][:2] == [
        "",
        "[UNK]",
    ]  # read from the live layer
    _serves_raw_texts_like_keras(_handler(entry, tmp_path), result)


def test_structured_data_with_lookup_layers_on_named_inputs(tmp_path: Path) -> None:
    """keras.io's structured-data recipe: dict inputs through Normalization, StringLookup and
    IntegerLookup. The lookups are written in ONNX (LabelEncoder), so the graph takes the raw
    records; an unseen category is served as Keras serves it (the OOV index)."""
    entry, result = _train("keras_structured_lookups.py", tmp_path)
    onnx = entry.metadata["onnx"]
    assert onnx["lookups_in_graph"] == ["string_lookup", "integer_lookup"]
    assert onnx["max_abs_diff"] < 1e-5 and onnx["checked_samples"] >= 2  # raw inputs, OOV row too
    steps = {
        s["model_layer"]: s for s in entry.metadata["dataset"]["preprocessing"] if s.get("in_model")
    }
    assert sorted(steps["string_lookup"]["vocabulary"]) == [
        "[UNK]",
        "fixed",
        "normal",
        "reversible",
    ]
    assert steps["integer_lookup"]["input"] == "cp"
    handler = _handler(entry, tmp_path)
    status, body, text = call(handler, "POST", "/predict", {"inputs": result["raw"]})
    assert status == 200, text
    _same_positive_probabilities(body, result["reference"])
    for single in ({"inputs": result["raw"][3]}, {"features": result["raw"][3]}):  # one record
        status, one, text = call(handler, "POST", "/predict", single)
        assert status == 200, text
        _same_positive_probabilities({"results": [one]}, result["reference"][3])
    status, _, text = call(handler, "POST", "/predict", {"inputs": [{"age": 63, "thal": "fixed"}]})
    assert status == 400 and "missing input(s): cp" in text
    status, _, text = call(
        handler, "POST", "/predict", {"inputs": [{"age": 63, "thal": 2, "cp": 1}]}
    )
    assert status == 400 and "thal must be text" in text
    _example_is_accepted(handler)
    status, meta, _ = call(handler, "GET", "/metadata")
    (record,) = meta["example_request"]["inputs"]
    assert set(record) == {"age", "cp", "thal"} and record["thal"] in (
        "fixed",
        "normal",
        "reversible",
    )
    readme = (tmp_path / "package" / "README.md").read_text(encoding="utf-8")
    assert '"thal": "' in readme  # the README's example is that record


def test_lightning_module_run_by_lightning_cli(tmp_path: Path) -> None:
    entry, result = _train("lightning_cli.py", tmp_path, "lightning", "onnxscript", "jsonargparse")
    meta = entry.metadata
    assert (
        meta["metrics"]["history"][-1]["val"]["loss"] > 0
    )  # valid_loss is validation, not training
    assert "valid_loss" not in meta["metrics"]["history"][-1].get("train", {})
    assert [s["op"] for s in meta["dataset"]["preprocessing"]] == [
        "cast",
        "scale",
    ]  # RAW / 16.0 recorded once
    handler = _handler(entry, tmp_path)
    status, body, text = call(
        handler, "POST", "/predict", {"instances": result["raw"]}
    )  # raw pixels 0..16
    assert status == 200, text
    classes = meta["dataset"]["classes"]
    served = [
        [{p["label"]: p["probability"] for p in a["predictions"]}[c] for c in classes]
        for a in body["results"]
    ]
    np.testing.assert_allclose(served, result["reference"], atol=1e-5, rtol=0)
    _example_is_accepted(handler)


def test_text_vectorization_inside_the_model(tmp_path: Path) -> None:
    """The end-to-end recipe: model.onnx starts after the layer (tf2onnx cannot convert its string
    ops), the handler replays it from the recorded vocabulary; parity is checked on raw texts."""
    entry, result = _train("keras_text_in_model.py", tmp_path)
    (step,) = entry.metadata["dataset"]["preprocessing"]
    assert step["op"] == "tokenize" and step["before_onnx"] and not step["in_model"]
    assert entry.metadata["onnx"]["starts_after"] == step["model_layer"]
    assert entry.metadata["onnx"]["max_abs_diff"] < 1e-5  # the whole model on raw strings
    _serves_raw_texts_like_keras(_handler(entry, tmp_path), result)


def test_structured_data_on_the_torch_backend_served_by_input_key(tmp_path: Path) -> None:
    """Keras on torch with a dict of unnamed inputs: the graph takes the dict's keys, records by
    key are answered like Keras; an IntegerLookup the torch exporter froze is refused by name."""
    entry, result = _train("keras_torch_structured.py", tmp_path, "keras", "torch", "onnxscript")
    assert entry.metadata["framework"]["backend"] == "torch"
    assert [i["name"] for i in entry.metadata["onnx"]["inputs"]] == ["age", "chol", "cp"]
    handler = _handler(entry, tmp_path)
    status, body, text = call(handler, "POST", "/predict", {"inputs": result["raw"]})
    assert status == 200, text
    _same_positive_probabilities(body, result["reference"])
    _example_is_accepted(handler)

    (tmp_path / "lookup").mkdir()
    entry, _ = _train(
        "keras_torch_structured.py", tmp_path / "lookup", "keras", args=("--lookup",), clean=False
    )
    assert "onnx" not in entry.metadata or not entry.metadata["onnx"].get("path")
    (warning,) = [w["message"] for w in entry.metadata["warnings"]]
    assert "no input for cp (read by IntegerLookup)" in warning, warning
