"""Recorded S3 event notifications (``tests/serverless/events/hub``) filled with a test's own objects.

S3 sends one record per notification and SQS one notification per message; Lambda batches the
messages. :func:`sqs_event` builds such a batch from the recorded SQS message and S3 record, with
each object's real size, ETag and version id read from the (moto) bucket.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

EVENTS = Path(__file__).resolve().parents[1] / "serverless" / "events" / "hub"


def load(name: str) -> dict[str, Any]:
    """A recorded event as it is on disk."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def s3_record(bucket: str, key: str, *, s3: Any = None) -> dict[str, Any]:
    """The recorded ``ObjectCreated:Put`` record for ``s3://bucket/key`` (URL-encoded as S3 does)."""
    record = copy.deepcopy(load("s3_put.json")["Records"][0])
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    obj = record["s3"]["object"]
    obj["key"] = quote_plus(key, safe="/")
    if s3 is not None:
        head = s3.head_object(Bucket=bucket, Key=key)
        obj["size"] = head["ContentLength"]
        obj["eTag"] = head["ETag"].strip('"')
        if head.get("VersionId"):
            obj["versionId"] = head["VersionId"]
        else:
            obj.pop("versionId", None)
    return record


def s3_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A notification S3 delivers to a Lambda directly."""
    return {"Records": records}


def sqs_event(bodies: list[dict[str, Any] | str]) -> dict[str, Any]:
    """A Lambda SQS batch: one recorded SQS message per body (a notification, or raw text)."""
    model = load("sqs_s3_put.json")["Records"][0]
    records = []
    for body in bodies:
        message = copy.deepcopy(model)
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        message["messageId"] = str(uuid.uuid4())
        message["body"] = text
        message["md5OfBody"] = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
        records.append(message)
    return {"Records": records}


def run_keys(bucket: str, s3: Any, prefix: str = "") -> list[str]:
    """Every ``metadata.json`` key under ``prefix`` in the bucket, sorted."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(
        obj["Key"]
        for page in pages
        for obj in page.get("Contents", [])
        if obj["Key"].endswith("/metadata.json")
    )
