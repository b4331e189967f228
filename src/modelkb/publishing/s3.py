"""Bundles in S3: ``push`` a bundle under ``s3://bucket/prefix/<project>/<id>/``, fetch it back.

Credentials come from the standard AWS chain (environment, shared files, SSO, instance roles); the
endpoint from ``--endpoint-url`` or ``AWS_ENDPOINT_URL`` (which boto3 reads itself). Each object
carries its sha256 as ``x-amz-meta-sha256``; ``metadata.json`` is uploaded last, so a bundle in S3 is
complete exactly when its ``metadata.json`` exists (the rule of the local format).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundle import Bundle, parse_json
from ..errors import (
    IntegrityError,
    PublishError,
    RemoteAccessError,
    RemoteNotFoundError,
    RemoteUnavailableError,
)
from ..extras import require
from ..ids import slugify
from ..store import Store
from .intake import ensure_absent, install_bundle, staging_area
from .integrity import METADATA_FILE, SizeLimits, check_limits, check_relpath, verify_files

logger = logging.getLogger(__name__)

OnFile = Callable[[str, int], None]
"""Progress callback: ``(relative path, bytes)`` after each file."""


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
    """A boto3 S3 client: few retries and short connect timeouts, so a dead endpoint fails fast."""
    boto3 = require("boto3", "s3")
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
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


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
            hint="Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (any standard AWS credential source works).",
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


def _boto_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def check_bucket(client: Any, location: S3Location) -> None:
    """Fail early and clearly when the bucket is missing, forbidden or unreachable."""
    try:
        client.head_bucket(Bucket=location.bucket)
    except _boto_errors() as err:
        raise translate_error(err, remote=f"s3://{location.bucket}", action="reach bucket") from err


def global_id(location: S3Location, bundle: Bundle) -> str:
    """``s3://bucket/prefix/<project-slug>/<id>``: where ``push`` puts a bundle."""
    return location.url(slugify(bundle.project), bundle.id)


def push_bundle(
    bundle: Bundle,
    destination: str,
    *,
    endpoint_url: str | None = None,
    on_file: OnFile | None = None,
    client: Any = None,
) -> str:
    """Upload a sealed bundle (checked against its metadata first); returns its global id.

    Raises:
        IntegrityError: The local bundle no longer matches its metadata.json.
        PublishError: The upload failed (subclasses say why).
    """
    if not bundle.sealed:
        raise IntegrityError(f"{bundle.id} is still running; only finished runs can be pushed")
    location = S3Location.parse(destination)
    entries = verify_files(bundle.path, bundle.metadata)
    client = client or make_client(endpoint_url)
    check_bucket(client, location)
    target = S3Location(location.bucket, location.key(slugify(bundle.project), bundle.id))
    files = [(entry["path"], entry["sha256"]) for entry in entries]
    from ..fsutil import sha256_file

    files.append(
        (METADATA_FILE, sha256_file(bundle.path / METADATA_FILE))
    )  # last: marks it complete
    try:
        remote = remote_objects(
            client, target
        )  # a re-push (or a resumed one) sends only what differs
    except _boto_errors() as err:
        raise translate_error(err, remote=target.url(), action="list") from err
    for relpath, digest in files:
        source = bundle.path / relpath
        key, size = target.key(relpath), source.stat().st_size
        try:
            if not same_object(
                client, target.bucket, key, remote.get(key), size=size, sha256=digest
            ):
                client.upload_file(
                    str(source),
                    target.bucket,
                    key,
                    ExtraArgs={
                        "Metadata": {"sha256": digest},
                        "ContentType": _content_type(relpath),
                    },
                )
        except (*_boto_errors(), _upload_failed()) as err:
            cause = err.__cause__ or err
            raise translate_error(cause, remote=target.url(relpath), action="upload to") from err
        if on_file:
            on_file(relpath, size)
    return target.url()


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


def _upload_failed() -> type[Exception]:
    from boto3.exceptions import S3UploadFailedError

    return S3UploadFailedError


def _content_type(relpath: str) -> str:
    from .s3_site import content_type

    return content_type(relpath)


def fetch_bundle(
    store: Store,
    address: str,
    *,
    endpoint_url: str | None = None,
    limits: SizeLimits | None = None,
    on_file: OnFile | None = None,
    client: Any = None,
) -> Path:
    """Download the bundle at ``s3://bucket/prefix/<project>/<id>``, verify it, add it to ``store``.

    Returns:
        The new bundle folder.

    Raises:
        RemoteNotFoundError: No bucket, or no bundle at that address.
        IntegrityError: A file differs from metadata.json or breaks a limit.
        BundleExistsError: The store already has this experiment.
    """
    location = S3Location.parse(address.removesuffix("/" + METADATA_FILE))
    client = client or make_client(endpoint_url)
    limits = limits or SizeLimits()
    with staging_area(store) as staging:
        raw = staging / "raw"
        raw.mkdir()
        meta_key = location.key(METADATA_FILE)
        try:
            response = client.get_object(Bucket=location.bucket, Key=meta_key)
            data = response["Body"].read(64 << 20)
        except _boto_errors() as err:
            error = translate_error(err, remote=location.url(), action="clone")
            if isinstance(error, RemoteNotFoundError) and "bucket" not in str(error):
                error = RemoteNotFoundError(
                    f"no ModelKB bundle at {location.url()} (no metadata.json)",
                    remote=location.url(),
                    hint="Check the address that `modelkb push` printed.",
                )
            raise error from err
        try:
            metadata = parse_json(data.decode("utf-8"), location.url(METADATA_FILE))
        except UnicodeDecodeError as err:
            raise IntegrityError(f"{location.url(METADATA_FILE)} is not UTF-8 text") from err
        except ValueError as err:
            raise IntegrityError(str(err)) from err
        if not isinstance(metadata, dict):
            raise IntegrityError(f"{location.url(METADATA_FILE)} must hold a JSON object")
        ensure_absent(store, metadata)
        check_limits(metadata, limits, source=location.url())
        (raw / METADATA_FILE).write_bytes(data)
        for entry in metadata["artifacts"]:
            relpath = check_relpath(entry["path"])
            destination = raw / relpath
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                _download_limited(client, location, relpath, destination, size=entry["size"])
            except _boto_errors() as err:
                raise translate_error(err, remote=location.url(relpath), action="download") from err
            if on_file:
                on_file(relpath, destination.stat().st_size)
        return install_bundle(store, raw, staging)


def _download_limited(
    client: Any, location: S3Location, relpath: str, destination: Path, *, size: int
) -> None:
    """Stream one object to ``destination``, stopping once it exceeds the size metadata.json lists."""
    response = client.get_object(Bucket=location.bucket, Key=location.key(relpath))
    written = 0
    with open(destination, "xb") as handle:
        for chunk in response["Body"].iter_chunks(1 << 20):
            written += len(chunk)
            if written > size:
                response["Body"].close()
                raise IntegrityError(
                    f"{location.url(relpath)} is larger than the {size} bytes metadata.json lists",
                    path=relpath,
                    hint="The remote copy was changed after it was pushed; push it again.",
                )
            handle.write(chunk)
