"""Hostile requests to ``modelkb serve`` and the handler: answered 4xx in time, never a thread or a traceback each."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time

import numpy as np
import pytest
from support.apigw import call

from modelkb.serve_loop import start_in_thread
from modelkb.serverless.local_server import serve_package

pytestmark = pytest.mark.slow


@pytest.fixture
def server(packages: dict) -> object:
    name = next((n for n in packages if n.endswith("image")), None)
    if name is None:
        pytest.skip("no image case")
    running = serve_package(packages[name], port=0, max_connections=8, request_timeout=1.0)
    start_in_thread(running)
    yield running
    running.shutdown()
    running.server_close()


def _raw(server: object, request: bytes, *, wait: float = 10.0) -> bytes:
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=wait) as conn:
        conn.sendall(request)
        chunks = []
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def _post_headers(length: str) -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", ""])
def test_a_bad_content_length_is_400_at_once(
    server: object, length: str, capfd: pytest.CaptureFixture
) -> None:
    started = time.monotonic()
    answer = _raw(server, _post_headers(length) + b'{"inputs": [1]}')
    assert answer.startswith(b"HTTP/1.1 400") and b"Content-Length must be" in answer
    assert time.monotonic() - started < 5  # answered, not held until a timeout
    assert "Traceback" not in capfd.readouterr().err


def test_a_body_shorter_than_announced_is_408(server: object) -> None:
    answer = _raw(server, _post_headers("100") + b'{"inputs": [')
    assert answer.startswith(b"HTTP/1.1 408") and b"stopped after 12 of 100 bytes" in answer


def test_idle_connections_do_not_each_hold_a_thread(server: object) -> None:
    before = threading.active_count()
    host, port = server.server_address[:2]
    idle = [socket.create_connection((host, port)) for _ in range(100)]
    try:
        for conn in idle:
            conn.sendall(_post_headers("100"))  # and never the body
        time.sleep(0.5)
        assert threading.active_count() - before <= 8  # max_connections
    finally:
        for conn in idle:
            conn.close()


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_bombs_and_pixel_floods_are_refused(handlers: dict) -> None:
    name = next((n for n in handlers if n.endswith("image")), None)
    if name is None:
        pytest.skip("no image case")
    handler = handlers[name]
    claims_16m = _png(16_000_000, 1)[:100]  # the header says 1 x 16,000,000; 100 bytes of data
    status, body, _ = call(
        handler, "POST", "/predict", {"image": base64.b64encode(claims_16m).decode()}
    )
    assert status == 400 and "not accepted" in body["message"]
    big = base64.b64encode(
        _png(4000, 4000)
    ).decode()  # 16 M pixels each: 3 of them exceed one request's budget
    status, body, _ = call(handler, "POST", "/predict", {"instances": [big, big, big]})
    assert status == 400 and "for all the images of a request together" in body["message"]


def test_a_sample_of_another_shape_is_422_never_rebatched(cases: dict, handlers: dict) -> None:
    for name in [n for n in handlers if n.endswith("image")]:
        height, width = np.asarray(cases[name].raw[0]).shape[:2]
        sample = np.zeros((height, width, 3)).tolist()  # three channels for a one-channel model
        status, body, text = call(handlers[name], "POST", "/predict", {"instances": [sample]})
        assert status == 422, (name, text)
        assert "results" not in (body or {})
