"""The generated handler answers exactly what the framework itself predicts."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.apigw import call

pytestmark = pytest.mark.slow


def _probabilities(answer: dict, classes: list[str]) -> np.ndarray:
    by_label = {p["label"]: p["probability"] for p in answer["predictions"]}
    return np.array([by_label[c] for c in classes])


@pytest.mark.parametrize(
    "name",
    ["keras-image", "keras-tabular", "keras-text", "torch-image", "torch-tabular", "torch-text"],
)
def test_handler_matches_framework(name: str, cases: dict, handlers: dict) -> None:
    if name not in cases:
        pytest.skip(f"{name.split('-')[0]} is not installed")
    case, handler = cases[name], handlers[name]
    classes = case.metadata["dataset"]["classes"]
    got = []
    for start in range(0, len(case.raw), 64):
        status, body, text = call(
            handler, "POST", "/predict", {"instances": case.raw[start : start + 64]}
        )
        assert status == 200, text
        got.extend(_probabilities(answer, classes) for answer in body["results"])
    np.testing.assert_allclose(np.array(got), case.reference, atol=1e-5, rtol=0)
    # One sample at a time gives the same numbers and labels the most likely class.
    for index in (0, 7):
        single_field = {"image": "inputs", "tabular": "inputs", "text": "text"}[
            case.metadata["dataset"]["kind"]
        ]
        status, body, _ = call(handler, "POST", "/predict", {single_field: case.raw[index]})
        assert status == 200
        np.testing.assert_allclose(
            _probabilities(body, classes), case.reference[index], atol=1e-5, rtol=0
        )
        assert body["top"] == classes[int(np.argmax(case.reference[index]))]
        assert body["predictions"][0]["label"] == body["top"]


def test_named_tabular_features(cases: dict, handlers: dict) -> None:
    name = next((n for n in cases if n.endswith("tabular")), None)
    if name is None:
        pytest.skip("no tabular case")
    case = cases[name]
    features = case.metadata["dataset"]["features"]
    sample = dict(zip(features, case.raw[3], strict=True))
    status, body, text = call(handlers[name], "POST", "/predict", {"features": sample})
    assert status == 200, text
    np.testing.assert_allclose(
        _probabilities(body, case.metadata["dataset"]["classes"]), case.reference[3], atol=1e-5
    )


def _png(pixels: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize("name", ["keras-image", "torch-image"])
def test_png_is_decoded_scaled_and_resized(name: str, cases: dict, handlers: dict) -> None:
    if name not in cases:
        pytest.skip(f"{name} not available")
    case, handler = cases[name], handlers[name]
    raw = np.asarray(case.raw[5])  # digits: 0..16
    pixels = np.round(raw * 255 / 16)  # the same digit as an 8-bit image
    status, from_png, text = call(handler, "POST", "/predict", {"image": _png(pixels)})
    assert status == 200, text
    _, from_array, _ = call(handler, "POST", "/predict", {"inputs": (pixels * 16 / 255).tolist()})
    assert from_png == from_array  # pixel range [0, 16] was recovered from x_range
    # A bigger image is resized to the model's 8x8 input.
    from PIL import Image

    big = np.asarray(
        Image.fromarray(pixels.astype(np.uint8), mode="L").resize(
            (32, 32), Image.Resampling.NEAREST
        )
    )
    status, body, _ = call(handler, "POST", "/predict", {"image": _png(big)})
    assert status == 200 and body["predictions"]


def test_predict_py_command(cases: dict, packages: dict, tmp_path: Path) -> None:
    name = next((n for n in ("torch-image", "keras-image") if n in cases), None)
    if name is None:
        pytest.skip("no image case")
    case, folder = cases[name], packages[name]
    from PIL import Image

    pixels = np.round(np.asarray(case.raw[2]) * 255 / 16).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(tmp_path / "input.png")
    result = subprocess.run(
        [
            sys.executable,
            str(folder / "predict.py"),
            str(folder / "model.onnx"),
            str(tmp_path / "input.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    status, body, _ = call(
        __import__("modelkb.serverless.local_server", fromlist=["x"]).load_handler(folder),
        "POST",
        "/predict",
        {"image": base64.b64encode((tmp_path / "input.png").read_bytes()).decode()},
    )
    assert status == 200 and answer == body
    text = next((n for n in cases if n.endswith("text")), None)
    if text:
        result = subprocess.run(
            [
                sys.executable,
                str(packages[text] / "predict.py"),
                str(packages[text] / "model.onnx"),
                "great movie",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0 and json.loads(result.stdout)["top"] in (
            "positive",
            "negative",
        ), result.stderr
