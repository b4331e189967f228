"""Writes to S3 that never overwrite another writer's object: conditional PUTs.

A new object is created with ``If-None-Match: *``; an object that is updated (a bundle's
``metadata.json`` after ``deploy``, the metrics a run uploads while it trains) is replaced with
``If-Match`` on the ETag the writer last saw. A lost race is a :class:`RemoteConflictError`, never a
silent overwrite. Each object carries its sha256 as ``x-amz-meta-sha256``, so a retried upload of
the same bytes is recognised as done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelkb.errors import RemoteConflictError
from modelkb.fsutil import sha256_file
from modelkb.publishing.integrity import METADATA_FILE, verify_files
from modelkb.publishing.s3_client import S3Location, content_type, remote_objects, same_object

LIVE_KEY = "modelkb-live"
"""Object metadata of a copy uploaded while the run trains: the sealed upload replaces it."""

OnFile = Callable[[str, int], None]
"""Progress callback: ``(relative path, bytes)`` after each file."""


def precondition_failed(err: Exception) -> bool:
    """Whether a botocore error is S3 refusing a conditional write (412, or 409 for a race)."""
    response = getattr(err, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (412, 409)


def put_file(
    client: Any,
    bucket: str,
    key: str,
    path: Path,
    *,
    sha256: str,
    if_match: str | None = None,
    live: bool = False,
) -> str:
    """PUT ``path`` at ``key``: only if absent, or with ``if_match`` only over that ETag. Returns the new ETag."""
    metadata = {"sha256": sha256, **({LIVE_KEY: "1"} if live else {})}
    condition = {"IfMatch": f'"{if_match}"'} if if_match else {"IfNoneMatch": "*"}
    with open(path, "rb") as body:
        response = client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            Metadata=metadata,
            ContentType=content_type(path.name),
            **condition,
        )
    return str(response.get("ETag", "")).strip('"')


def put_new(
    client: Any,
    target: S3Location,
    relpath: str,
    path: Path,
    *,
    sha256: str,
    replaceable: Callable[[], bool] | None = None,
    listed: Mapping[str, Any] | None = None,
) -> str:
    """Create ``target/relpath``; if it exists, decide by what it holds. Returns its ETag.

    The same bytes (same sha256): nothing to do (a retried upload). A live copy of the run, or an
    object ``replaceable`` accepts: replaced with ``If-Match`` on its ETag. ``listed`` is the
    object's entry in a listing made just before (``{ETag, Size}``): it saves the first attempt.

    Raises:
        RemoteConflictError: It holds something else, or changed between the HEAD and the PUT.
    """
    from botocore.exceptions import ClientError

    key = target.key(relpath)
    if listed is None:
        try:
            return put_file(client, target.bucket, key, path, sha256=sha256)
        except ClientError as err:
            if not precondition_failed(err):
                raise
    head = client.head_object(Bucket=target.bucket, Key=key)
    etag = str(head.get("ETag", "")).strip('"')
    meta = head.get("Metadata") or {}
    if meta.get("sha256") == sha256:
        return etag
    if meta.get(LIVE_KEY) == "1" or (replaceable is not None and replaceable()):
        try:
            return put_file(client, target.bucket, key, path, sha256=sha256, if_match=etag)
        except ClientError as err:
            if not precondition_failed(err):
                raise
    raise RemoteConflictError(
        f"{target.url(relpath)} already holds other bytes (written by another writer)",
        remote=target.url(relpath),
        hint="Nothing was overwritten. Run `modelkb ls --store s3://...` to see what is there.",
    )


def upload_bundle(
    client: Any,
    folder: Path,
    metadata: Mapping[str, Any],
    target: S3Location,
    *,
    on_file: OnFile | None = None,
) -> str:
    """Upload a sealed bundle folder to ``target`` (``metadata.json`` last); returns its ETag.

    Files already there with the same sha256 are not sent again; while the remote copy has no
    ``metadata.json`` (an earlier upload stopped half way) its other files are replaced on their
    ETag. ``metadata.json`` of the same run (an earlier push, before ``deploy`` or ``push`` recorded
    themselves in it) is replaced on its ETag.

    Raises:
        IntegrityError: The folder no longer matches its metadata.json.
        RemoteConflictError: Another writer's object is in the way.
        botocore errors: The caller translates them (:func:`~modelkb.publishing.s3_client.translate_error`).
    """
    entries = verify_files(folder, metadata)
    remote = remote_objects(client, target)

    def send(relpath: str, digest: str, replaceable: Callable[[], bool] | None) -> str:
        source, key = folder / relpath, target.key(relpath)
        size, listed = source.stat().st_size, remote.get(key)
        if listed is not None and same_object(
            client, target.bucket, key, listed, size=size, sha256=digest
        ):
            etag = str(listed["ETag"])
        else:
            etag = put_new(
                client,
                target,
                relpath,
                source,
                sha256=digest,
                replaceable=replaceable,
                listed=listed,
            )
        if on_file:
            on_file(relpath, size)
        return etag

    # Without metadata.json the remote bundle is unfinished: an earlier upload of this very run
    # (ids are unique) that stopped half way, whose leftovers this one may replace.
    unfinished = target.key(METADATA_FILE) not in remote
    for entry in entries:
        send(entry["path"], entry["sha256"], (lambda: True) if unfinished else None)

    def same_run() -> bool:
        return _remote_id(client, target) == metadata.get("id")

    return send(METADATA_FILE, sha256_file(folder / METADATA_FILE), same_run)


def _remote_id(client: Any, target: S3Location) -> Any:
    import json

    response = client.get_object(Bucket=target.bucket, Key=target.key(METADATA_FILE))
    try:
        data = json.loads(response["Body"].read(64 << 20))
    except ValueError:
        return None
    return data.get("id") if isinstance(data, dict) else None
