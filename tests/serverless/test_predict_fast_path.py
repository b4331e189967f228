"""POST /predict validates its own body (pydantic-core JSON) and post-processes small outputs in Python."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from support.apigw import call, recorded_event

from modelkb.serverless.inference_runtime import InputError, postprocess, score_rows
from modelkb.serverless.local_server import LambdaContext


@pytest.mark.parametrize("mode", ["softmax", "none", "binary", "regression", "sigmoid"])
def test_score_rows_match_numpy_postprocess(mode: str) -> None:
    rng = np.random.default_rng(0)
    for shape in [(1, 10), (3, 1), (2, 5000)]:  # the last is past SMALL_OUTPUT: numpy path
        outputs = (rng.normal(size=shape) * 20).astype(np.float32)
        np.testing.assert_allclose(
            np.array(score_rows(outputs, mode)), postprocess(outputs, mode), rtol=1e-14, atol=1e-15
        )


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_score_rows_refuse_non_finite_outputs(value: float) -> None:
    for mode in ("softmax", "none", "regression"):
        with pytest.raises(InputError):
            score_rows(np.array([[value, 1.0]], dtype=np.float32), mode)


def _image_handler(handlers: dict):
    for name in ("torch-image", "keras-image"):
        if name in handlers:
            return handlers[name]
    pytest.skip("no image model available")


def test_predict_accepts_json_variants_and_refuses_empty_bodies(handlers: dict) -> None:
    handler = _image_handler(handlers)
    pixels = [[float((r * 8 + c) % 16) for c in range(8)] for r in range(8)]
    ok, body, text = call(handler, "POST", "/predict", {"inputs": pixels})
    assert ok == 200, text
    for content_type in ("application/json; charset=utf-8", "Application/JSON", ""):
        status, again, text = call(
            handler, "POST", "/predict", {"inputs": pixels}, headers={"content-type": content_type}
        )
        assert status == 200 and again == body, text
    # header names that are not lowercase, and a base64-encoded body
    event = recorded_event("predict_base64")
    event["headers"] = {"Content-Type": "application/json"}
    event["body"] = base64.b64encode(json.dumps({"inputs": pixels}).encode()).decode()
    event["isBase64Encoded"] = True
    result = handler.lambda_handler(event, LambdaContext())
    assert result["statusCode"] == 200 and json.loads(result["body"]) == body
    status, answer, text = call(handler, "POST", "/predict", None)
    assert status == 422 and "inputs" in answer["message"], text
    event["headers"] = {"Content-Type": "text/csv"}
    assert handler.lambda_handler(event, LambdaContext())["statusCode"] == 415
