"""Calling a generated handler with the recorded API Gateway events of ``tests/serverless/events``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelkb.serverless.local_server import LambdaContext, body_fields

EVENTS = Path(__file__).resolve().parents[1] / "serverless" / "events"
ROUTES = {
    ("POST", "/predict"): "predict",
    ("GET", "/health"): "health",
    ("GET", "/metadata"): "metadata",
}
"""The recorded event of each route the SAM template declares; any other request is sent as the
``$default`` route's event (``default_route.json``) with its method and path."""

_CONTENT_HEADERS = ("content-type", "content-length")


def recorded_event(name: str) -> dict[str, Any]:
    """A fresh copy of ``events/<name>.json`` (an HTTP API payload format 2.0 event)."""
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def request_event(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The recorded event of the route ``method path``, carrying this request instead.

    The body goes in as API Gateway puts it (:func:`~modelkb.serverless.local_server.body_fields`);
    ``headers`` replace the recorded content headers (names lowercased, as API Gateway sends them).
    """
    route = ROUTES.get((method, path))
    event = recorded_event(route or "default_route")
    if route is None:
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
    kept = {k: v for k, v in event["headers"].items() if k not in _CONTENT_HEADERS}
    event["headers"] = {**kept, **{k.lower(): v for k, v in (headers or {}).items()}}
    event.pop("body", None)
    event.update(body_fields(body))
    if body:
        event["headers"]["content-length"] = str(len(body))
    return event


def call(
    handler: Any,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, str]:
    """(status, parsed JSON body or None, raw body text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    event = request_event(
        method, path, data, {"content-type": "application/json", **(headers or {})}
    )
    result = handler.lambda_handler(event, LambdaContext())
    text = result.get("body") or ""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return int(result["statusCode"]), parsed, text
