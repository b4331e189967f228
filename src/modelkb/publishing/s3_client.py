"""What both S3 commands (``push``/``clone`` and ``publish site``) share.

The ``s3://bucket/prefix`` address, a boto3 client that fails fast, one :class:`PublishError`
subclass per botocore failure, the listing and comparison of objects already there, and the
Content-Type each file is stored with. boto3 is imported only when a client is made.
"""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkb.errors import (
    PublishError,
    RemoteAccessError,
    RemoteNotFoundError,
    RemoteUnavailableError,
)
from modelkb.extras import require

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".jsonl": "application/x-ndjson",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".safetensors": "application/octet-stream",
    ".keras": "application/octet-stream",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".xml": "application/xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}


@dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://bucket/prefix`` address (``prefix`` without slashes at either end)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """Parse ``s3://bucket[/prefix]``.

        Raises:
            PublishError: Not an ``s3://`` URL or no bucket.
        """
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise PublishError(f"Expected an s3://bucket/prefix address. Received: {url!r}")
        bucket, _, prefix = url[5:].partition("/")
        if not bucket:
            raise PublishError(f"no bucket in {url!r}", hint="Write it as s3://BUCKET/PREFIX.")
        return cls(bucket, prefix.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def url(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.key(*parts)}".rstrip("/")


def make_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client: few retries and short connect timeouts, so a dead endpoint fails fast.

    Timestamps in responses stay text (``LastModified``): parsing them into datetimes was half the
    time of listing a large prefix, and ModelKB never reads them.
    """
    boto3 = require("boto3", "s3")
    import botocore.session
    from botocore.config import Config

    custom_endpoint = (
        endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=120,
        s3={"addressing_style": "path"} if custom_endpoint else {},
    )
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=lambda text: text
    )
    return boto3.session.Session(botocore_session=session).client(
        "s3", endpoint_url=endpoint_url, config=config
    )


def translate_error(err: Exception, *, remote: str, action: str) -> PublishError:
    """One clear :class:`PublishError` subclass for a botocore failure."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return RemoteAccessError(
            f"cannot {action} {remote}: no AWS credentials found",
            remote=remote,
            hint="Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(any standard AWS credential source works).",
        )
    if isinstance(err, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)):
        return RemoteUnavailableError(
            f"cannot {action} {remote}: the S3 endpoint cannot be reached ({err})",
            remote=remote,
            hint="Check the network and --endpoint-url / AWS_ENDPOINT_URL.",
        )
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        bucket = remote[5:].split("/", 1)[0] if remote.startswith("s3://") else remote
        if code in ("NoSuchBucket",) or (code in ("404", "NotFound") and action == "reach bucket"):
            return RemoteNotFoundError(
                f"cannot {action} {remote}: bucket {bucket!r} does not exist",
                remote=remote,
                hint=f"Create it first (aws s3 mb s3://{bucket}) or check the name, region and endpoint.",
            )
        if code in ("NoSuchKey", "404", "NotFound"):
            return RemoteNotFoundError(
                f"cannot {action} {remote}: nothing there",
                remote=remote,
                hint="Check the address (modelkb push prints it).",
            )
        if (
            code
            in (
                "AccessDenied",
                "403",
                "Forbidden",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "ExpiredToken",
                "InvalidToken",
                "AllAccessDisabled",
            )
            or status == 403
        ):
            return RemoteAccessError(
                f"cannot {action} {remote}: access denied ({code})",
                remote=remote,
                hint="Check your AWS credentials and the bucket policy.",
            )
        return PublishError(f"cannot {action} {remote}: {code or status}: {err}", remote=remote)
    return PublishError(f"cannot {action} {remote}: {err}", remote=remote)


def boto_errors() -> tuple[type[Exception], ...]:
    """The botocore exceptions :func:`translate_error` understands (for ``except`` clauses)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def check_bucket(client: Any, location: S3Location) -> None:
    """Fail early and clearly when the bucket is missing, forbidden or unreachable."""
    try:
        client.head_bucket(Bucket=location.bucket)
    except boto_errors() as err:
        raise translate_error(err, remote=f"s3://{location.bucket}", action="reach bucket") from err


def remote_objects(client: Any, location: S3Location) -> dict[str, dict[str, Any]]:
    """Key -> ``{ETag, Size}`` of every object under the prefix."""
    prefix = location.key() + "/" if location.prefix else ""
    found: dict[str, dict[str, Any]] = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = {"ETag": obj.get("ETag", "").strip('"'), "Size": obj.get("Size")}
    return found


def same_object(
    client: Any, bucket: str, key: str, remote: dict[str, Any] | None, *, size: int, sha256: str
) -> bool:
    """Whether ``key`` already holds these bytes: same size and the sha256 a push recorded on it."""
    if remote is None or remote.get("Size") != size:
        return False
    head = client.head_object(Bucket=bucket, Key=key)
    return head.get("Metadata", {}).get("sha256") == sha256


def upload_failed() -> type[Exception]:
    """boto3's transfer failure, which wraps the botocore error as its ``__cause__``."""
    from boto3.exceptions import S3UploadFailedError

    return S3UploadFailedError


def content_type(name: str) -> str:
    """The Content-Type for a file name (``.wasm``, ``.onnx``, ``.json``, ``.js`` always known)."""
    suffix = Path(name).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if guessed is None or encoding is not None:
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed
