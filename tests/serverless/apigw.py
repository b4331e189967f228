"""Helpers to call a handler with API Gateway HTTP API v2 events."""

from __future__ import annotations

import json
from typing import Any

from modelkb.serverless.local_server import LambdaContext, http_event


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
    event = http_event(method, path, data, {"content-type": "application/json", **(headers or {})})
    result = handler.lambda_handler(event, LambdaContext())
    text = result.get("body") or ""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return int(result["statusCode"]), parsed, text
