"""Serve a generated package on 127.0.0.1: HTTP requests become API Gateway HTTP API v2 events.

The local URL runs exactly the Lambda code path: each request is turned into the payload-v2 event
API Gateway would send, handed to the package's ``lambda_handler`` (in this process, or through a
Lambda Runtime Interface Emulator with :class:`RieBackend`), and the proxy result is written back.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import socket
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger(__name__)

_PACKAGE_MODULES = ("preprocess", "inference", "handler")
_load_lock = threading.Lock()
MAX_REQUEST_BYTES = (
    12 * 1024 * 1024
)  # above API Gateway's 10 MB: the handler's own limit answers first
REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = (
    64  # connections served at once; more wait in the listen queue, none gets a thread
)

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


def load_handler(package_dir: str | Path) -> ModuleType:
    """Import a package's ``handler.py`` in isolation (several packages can live in one process)."""
    folder = str(Path(package_dir).resolve())
    with _load_lock:
        saved = {name: sys.modules.pop(name) for name in _PACKAGE_MODULES if name in sys.modules}
        sys.path.insert(0, folder)
        try:
            return importlib.import_module("handler")
        finally:
            sys.path.remove(folder)
            for name in _PACKAGE_MODULES:
                sys.modules.pop(name, None)
            sys.modules.update(saved)


def http_event(
    method: str,
    raw_path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload format 2.0) event of one request."""
    parts = urlsplit(raw_path)
    path = parts.path or "/"
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": datetime.now(timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        **body_fields(body),
    }
    if parts.query:
        event["queryStringParameters"] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "cookie" in lowered:
        event["cookies"] = [c.strip() for c in lowered["cookie"].split(";") if c.strip()]
    return event


def body_fields(body: bytes) -> dict[str, Any]:
    """An event's ``body`` and ``isBase64Encoded`` as API Gateway sets them: UTF-8 text as it is,
    anything else base64-encoded; no ``body`` at all when the request has none."""
    if not body:
        return {"isBase64Encoded": False}
    try:
        return {"body": body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}


class LambdaContext:
    """The few context attributes handlers and powertools read."""

    function_name = "modelkb-local"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:modelkb-local"
    memory_limit_in_mb = 1024
    log_group_name = "/aws/lambda/modelkb-local"
    log_stream_name = "local"

    def __init__(self) -> None:
        self.aws_request_id = uuid.uuid4().hex

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def in_process(module: ModuleType) -> Invoke:
    """Invoke a loaded handler module directly."""
    return lambda event: module.lambda_handler(event, LambdaContext())


def rie_invoker(url: str, *, timeout: float = 30.0) -> Invoke:
    """Invoke through a Runtime Interface Emulator at ``url`` (``http://127.0.0.1:PORT``)."""
    endpoint = url.rstrip("/") + "/2015-03-31/functions/function/invocations"

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(endpoint, data=json.dumps(event).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    return invoke


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LambdaHTTPServer

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # read by StreamRequestHandler.setup
        super().setup()
        # Without this, a small response waits for the peer's delayed ACK before it is sent.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        length = self._content_length()
        if length is None:
            return
        body = self._read_body(length)
        if len(body) < length:  # the client sent less than it announced and went quiet
            self._refuse(408, f"the request body stopped after {len(body)} of {length} bytes")
            return
        event = http_event(
            self.command,
            self.path,
            body,
            dict(self.headers.items()),
            source_ip=self.client_address[0],
        )
        try:
            result = self.server.invoke(event)
        except Exception:
            logger.exception("the function failed")
            self._reply(
                502, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
            )
            return
        status = int(result.get("statusCode", 200))
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        payload = result.get("body") or ""
        data = (
            base64.b64decode(payload)
            if result.get("isBase64Encoded")
            else str(payload).encode("utf-8")
        )
        self._reply(status, headers, data, cookies=result.get("cookies") or [])

    def _read_body(self, length: int) -> bytes:
        """Up to ``length`` bytes; fewer when the client closes or stops sending for ``request_timeout``."""
        chunks, received = [], 0
        try:
            while received < length:
                chunk = self.rfile.read1(length - received)
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)

    def _content_length(self) -> int | None:
        """The announced body length, or None after answering 400/411/413 for a bad one."""
        given = self.headers.get("Content-Length")
        if given is None:
            if self.command in ("POST", "PUT", "PATCH") and self.headers.get("Transfer-Encoding"):
                self._refuse(
                    411,
                    "send the body with a Content-Length header (chunked bodies are not accepted)",
                )
                return None
            return 0
        if not given.strip().isdigit():
            self._refuse(400, "Content-Length must be a non-negative whole number of bytes")
            return None
        length = int(given)
        if length > MAX_REQUEST_BYTES:
            self._refuse(413, "request body too large")
            return None
        return length

    def _refuse(self, status: int, message: str) -> None:
        self._reply(
            status, {"content-type": "application/json"}, json.dumps({"message": message}).encode()
        )
        self.close_connection = True

    def _reply(
        self, status: int, headers: dict[str, str], data: bytes, cookies: list[str] | None = None
    ) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key not in ("content-length", "connection"):
                self.send_header(key, value)
        for cookie in cookies or []:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class LambdaHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that answers through a Lambda invoke function."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        invoke: Invoke,
        *,
        max_connections: int = MAX_CONNECTIONS,
        request_timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        super().__init__(address, _Handler)
        self.invoke = invoke
        self.request_timeout = (
            request_timeout  # a client that stops sending is answered 408 and let go
        )
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Bounded threads: the accept loop waits for a free slot, so a flood of idle connections
        # queues in the kernel instead of holding one thread each.
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def serve_package(
    package_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    rie_url: str | None = None,
    **limits: Any,
) -> LambdaHTTPServer:
    """A server (not yet started) for a package: in-process, or through an RIE at ``rie_url``.

    ``limits``: ``max_connections`` served at once and ``request_timeout`` seconds (see
    :class:`LambdaHTTPServer`).
    """
    invoke = rie_invoker(rie_url) if rie_url else in_process(load_handler(package_dir))
    return LambdaHTTPServer((host, port), invoke, **limits)
