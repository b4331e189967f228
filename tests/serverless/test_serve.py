"""Local serving: the HTTP front turns requests into API Gateway v2 events; the RIE runs the same code."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.apigw import call, recorded_event
from support.container_tools import rie_binary

from modelkb.serve_loop import start_in_thread
from modelkb.serverless import rie
from modelkb.serverless.local_server import http_event, serve_package

pytestmark = pytest.mark.slow


def _post(url: str, body: dict | bytes, timeout: float = 30) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _any(cases: dict, suffix: str) -> str:
    name = next((n for n in cases if n.endswith(suffix)), None)
    if name is None:
        pytest.skip(f"no {suffix} case")
    return name


def test_event_shape_matches_api_gateway_v2() -> None:
    event = http_event(
        "POST",
        "/predict?x=1&y=2",
        b'{"a": 1}',
        {"Content-Type": "application/json", "Cookie": "a=1; b=2"},
    )
    assert (
        event["version"] == "2.0"
        and event["rawPath"] == "/predict"
        and event["rawQueryString"] == "x=1&y=2"
    )
    assert (
        event["requestContext"]["http"]["method"] == "POST"
        and event["headers"]["content-type"] == "application/json"
    )
    assert event["queryStringParameters"] == {"x": "1", "y": "2"} and event["cookies"] == [
        "a=1",
        "b=2",
    ]
    binary = http_event("POST", "/predict", b"\xff\x00")
    assert binary["isBase64Encoded"] is True
    # The local server hands the handler what API Gateway would: the fields of a recorded event.
    recorded = recorded_event("predict")
    plain = http_event("POST", "/predict", b'{"a": 1}', {"content-type": "application/json"})
    assert set(plain) == set(recorded)
    assert set(plain["requestContext"]) == set(recorded["requestContext"])
    assert set(plain["requestContext"]["http"]) == set(recorded["requestContext"]["http"])


def test_local_server_concurrent_requests_equal_in_process(
    cases: dict, packages: dict, handlers: dict
) -> None:
    name = _any(cases, "image")
    case = cases[name]
    server = serve_package(packages[name], port=0)
    start_in_thread(server)
    try:
        bodies = [{"inputs": sample} for sample in case.raw[:40]]
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda body: _post(server.url + "/predict", body), bodies))
        for body, (status, answer) in zip(bodies, answers, strict=True):
            assert status == 200
            assert answer == call(handlers[name], "POST", "/predict", body)[1]
        assert _post(server.url + "/predict", b"{nope")[0] == 400
        with urllib.request.urlopen(server.url + "/health", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"
        try:
            urllib.request.urlopen(server.url + "/nothing", timeout=10)
        except urllib.error.HTTPError as err:
            assert err.code == 404 and "no route" in json.loads(err.read())["message"]
    finally:
        server.shutdown()
        server.server_close()


def test_handler_under_real_rie_and_awslambdaric(
    cases: dict, packages: dict, handlers: dict, tmp_path: Path
) -> None:
    pytest.importorskip("awslambdaric")
    name = _any(cases, "text")
    binary = rie_binary(tmp_path)
    process, url = rie.start_rie(packages[name], rie=binary, python=sys.executable)
    server = serve_package(packages[name], port=0, rie_url=url)
    start_in_thread(server)
    try:
        for body in (
            {"text": "great film"},
            {"instances": ["awful plot", [2, 3, 4]]},
            {"inputs": [1.5]},
            {"text": 3},
        ):
            status, answer = _post(server.url + "/predict", body)
            expected_status, expected, _ = call(handlers[name], "POST", "/predict", body)
            assert (status, answer) == (expected_status, expected)
    finally:
        server.shutdown()
        server.server_close()
        rie.stop(process)


def test_cli_package_and_serve(cases: dict, store_root: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from modelkb.cli import cli

    name = _any(cases, "tabular")
    case = cases[name]
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "package",
            case.metadata["id"][:12],
            "--out",
            str(tmp_path / "pkg"),
            "--store",
            str(store_root),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pkg" / "handler.py").is_file() and "Packaged run" in result.output
    dry = runner.invoke(
        cli,
        [
            "deploy",
            case.metadata["id"],
            "--dry-run",
            "--region",
            "eu-west-1",
            "--store",
            str(store_root),
            "--out",
            str(tmp_path / "never"),
        ],
    )
    assert dry.exit_code == 0, dry.output
    assert (
        "Deploy plan" in dry.output
        and "modelkb-" in dry.output
        and not (tmp_path / "never").exists()
    )
