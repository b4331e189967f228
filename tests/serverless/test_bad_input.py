"""Bad requests get a clear 4xx with a one-line JSON message: never a 500, never a traceback."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.apigw import call

pytestmark = pytest.mark.slow

NAMES = ["keras-image", "torch-image", "keras-tabular", "torch-tabular", "keras-text", "torch-text"]


def _assert_clean_4xx(
    status: int, body: object, text: str, expected: int | tuple[int, ...] | None = None
) -> None:
    assert 400 <= status < 500, (status, text)
    if expected is not None:
        assert status in ((expected,) if isinstance(expected, int) else expected), (status, text)
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], text
    assert "\n" not in text and "Traceback" not in text and 'File "' not in text


def _handler(handlers: dict, name: str):
    if name not in handlers:
        pytest.skip(f"{name} not available")
    return handlers[name]


@pytest.mark.parametrize("name", NAMES)
def test_named_bad_requests(name: str, handlers: dict, cases: dict) -> None:
    handler = _handler(handlers, name)
    kind = name.split("-")[1]
    cases_ = [
        (dict(raw=b"{not json"), 400),
        (dict(raw=b'{"inputs": [1, 2'), 400),
        (dict(raw=b"[1, 2, 3]"), 422),  # not an object
        (dict(body={}), 422),  # missing fields
        (dict(body={"inputs": [1], "instances": [[1]]}), 422),  # two inputs
        (dict(body={"inputs": "1 2 3", "extra": 1}), 422),  # unknown field
        (dict(body={"instances": []}), 422),
        (dict(body={"instances": [[1.0]] * 1000}), 422),  # batch too big
        (dict(body={"inputs": [[1, 2], [3]]}), 400),  # ragged
        (dict(body={"inputs": [None, 1]}), 400),
        (dict(body={"inputs": [1e400]}), 400),  # inf
        (dict(body={"top_k": 0, "inputs": [1]}), 422),
        (dict(raw=b"x" * 2_000_000), 400),  # oversized and not JSON
        (dict(raw=json.dumps({"inputs": [0.5] * 300_000}).encode()), 413),  # oversized
        (dict(raw=b"[" * 100_000 + b"]" * 100_000), (400, 413)),  # nested too deep
        (dict(raw=b"\xff\xfe\x00garbage"), 400),  # not UTF-8
        (dict(body={"inputs": [1]}, headers={"content-type": "text/plain"}), 415),
    ]
    if kind == "image":
        cases_ += [
            (dict(body={"image": base64.b64encode(b"this is not an image").decode()}), 400),
            (dict(body={"image": "%%% not base64 %%%"}), 400),
            (dict(body={"image": base64.b64encode(b"GIF89a" + b"\x00" * 40).decode()}), 400),
            (dict(body={"inputs": [["a"] * 8] * 8}), 400),  # wrong dtype
            (
                dict(body={"inputs": [[1.0] * 7] * 8}),
                422,
            ),  # wrong shape: well formed, not the model's
            (dict(body={"instances": ["AAAA", [[0] * 8] * 8]}), 400),  # mixed
        ]
    elif kind == "tabular":
        features = cases[name].metadata["dataset"]["features"]
        cases_ += [
            (dict(body={"features": {features[0]: 1.0}}), 400),  # missing features
            (dict(body={"features": {**dict.fromkeys(features, 1.0), "bogus": 2}}), 400),
            (dict(body={"features": dict.fromkeys(features, "x")}), 422),
            (dict(body={"inputs": [1.0, 2.0]}), 400),
            (dict(body={"inputs": ["1.0"] * len(features)}), 400),
        ]
    else:
        cases_ += [
            (dict(body={"text": 42}), 422),
            (dict(body={"inputs": [1.5, 2]}), 400),  # not integers
            (dict(body={"inputs": [-1, 2]}), 400),
            (dict(body={"inputs": [10_000, 2]}), 400),  # beyond the vocabulary
            (dict(body={"instances": ["ok", [1, 2]]}), 400),
        ]
    for request, expected in cases_:
        status, body, text = call(
            handler,
            "POST",
            "/predict",
            request.get("body"),
            raw=request.get("raw"),
            headers=request.get("headers"),
        )
        _assert_clean_4xx(status, body, text, expected)


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/"),
        ("GET", "/predict"),
        ("DELETE", "/health"),
        ("POST", "/admin"),
        ("GET", "/metadata/../etc/passwd"),
    ],
)
def test_unknown_routes_are_404(method: str, path: str, handlers: dict) -> None:
    handler = next(iter(handlers.values()))
    status, body, text = call(handler, method, path, None)
    _assert_clean_4xx(status, body, text, 404)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=10)
        | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=60,
)
keys = st.sampled_from(["inputs", "instances", "image", "features", "text", "top_k", "other"])
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(keys, json_values, max_size=3).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        keys,
        st.lists(st.lists(st.floats(allow_nan=False, width=32), max_size=9), max_size=9),
        max_size=2,
    ).map(lambda v: json.dumps(v).encode()),
    st.lists(st.integers(-5, 40), max_size=20).map(
        lambda ids: json.dumps({"inputs": ids}).encode()
    ),
    st.binary(max_size=200).map(
        lambda b: json.dumps(
            {"image": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b).decode()}
        ).encode()
    ),
)
requests = st.tuples(
    st.sampled_from(NAMES),
    st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH"]),
    st.sampled_from(["/predict", "/predict", "/health", "/metadata", "/", "/x", "/predict/1"]),
    st.sampled_from(
        [
            "application/json",
            "application/json",
            "text/plain",
            "",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=xyz",
        ]
    ),
    bodies,
)


@settings(
    max_examples=1200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(request=requests)
def test_generated_requests_never_5xx(request: tuple, handlers: dict) -> None:
    name, method, path, content_type, raw = request
    if name not in handlers:
        return
    headers = {"content-type": content_type} if content_type else {}
    status, body, text = call(handlers[name], method, path, None, raw=raw, headers=headers)
    assert status < 500, (status, text, raw[:200])
    assert "Traceback" not in text and 'File "' not in text
    if status >= 400:
        assert isinstance(body, dict) and isinstance(body.get("message"), str), text
