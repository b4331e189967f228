"""Bundles in S3: ``push`` a bundle under ``s3://bucket/prefix/<project>/<id>/``, fetch it back.

Credentials come from the standard AWS chain (environment, shared files, SSO, instance roles); the
endpoint from ``--endpoint-url`` or ``AWS_ENDPOINT_URL`` (which boto3 reads itself). Each object
carries its sha256 as ``x-amz-meta-sha256``; ``metadata.json`` is uploaded last, so a bundle in S3 is
complete exactly when its ``metadata.json`` exists (the rule of the local format).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from modelkb.bundle import Bundle, parse_json
from modelkb.errors import IntegrityError, RemoteNotFoundError
from modelkb.ids import slugify
from modelkb.publishing.intake import ensure_absent, install_bundle, staging_area
from modelkb.publishing.integrity import (
    METADATA_FILE,
    SizeLimits,
    check_limits,
    check_relpath,
)
from modelkb.publishing.s3_client import (
    S3Location,
    boto_errors,
    check_bucket,
    make_client,
    translate_error,
    upload_failed,
)
from modelkb.publishing.s3_writes import OnFile, upload_bundle
from modelkb.store import Store

logger = logging.getLogger(__name__)


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
    client = client or make_client(endpoint_url)
    check_bucket(client, location)
    target = S3Location(location.bucket, location.key(slugify(bundle.project), bundle.id))
    try:
        upload_bundle(client, bundle.path, bundle.metadata, target, on_file=on_file)
    except (*boto_errors(), upload_failed()) as err:
        cause = err.__cause__ or err
        raise translate_error(cause, remote=target.url(), action="upload to") from err
    return target.url()


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
        except boto_errors() as err:
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
                download_limited(client, location, relpath, destination, size=entry["size"])
            except boto_errors() as err:
                raise translate_error(err, remote=location.url(relpath), action="download") from err
            if on_file:
                on_file(relpath, destination.stat().st_size)
        return install_bundle(store, raw, staging)


def download_limited(
    client: Any, location: S3Location, relpath: str, destination: Path, *, size: int
) -> Any:
    """Stream one object to ``destination``, stopping once it exceeds the size metadata.json lists;
    returns the object's ``LastModified``."""
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
    return response.get("LastModified")
