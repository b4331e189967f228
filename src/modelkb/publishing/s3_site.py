"""``modelkb publish site``: mirror a built catalog folder into ``s3://bucket/prefix``.

Each file gets its Content-Type and a Cache-Control (HTML and unhashed data revalidate; assets
whose name carries a content hash are cached for a year). A second run uploads only what changed:
a single-part object's ETag is its MD5, a multipart one is compared by the ``sha256`` metadata this
module stores on every upload. Nothing becomes public unless ``public=True``, which adds one
``s3:GetObject`` statement for exactly the prefix to the bucket policy, and is refused when the
prefix also holds pushed bundles (so is ``delete``). Hidden files and the build cache are never
uploaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkb.bundle import METADATA_FILE
from modelkb.errors import PublishError
from modelkb.publishing import s3_client
from modelkb.publishing.s3_client import S3Location

logger = logging.getLogger(__name__)

CACHE_HTML = "no-cache"
CACHE_HASHED = "public, max-age=31536000, immutable"
CACHE_OTHER = "public, max-age=300"
# ``main.6f8fc17f.min.js``, ``app-3f9c2b7e1a.css``, ``chunk.a1b2c3d4e5f6.wasm``
_HASHED = re.compile(r"[.\-_][0-9a-f]{8,64}[.\-_]", re.IGNORECASE)
_CHUNK = 1 << 20


def cache_control(name: str) -> str:
    """Cache-Control: HTML always revalidated, hashed assets immutable, the rest five minutes."""
    base = Path(name).name
    if Path(name).suffix.lower() in (".html", ".htm"):
        return CACHE_HTML
    stem = Path(base).with_suffix("").name + "."  # the trailing dot lets a final hash match
    return CACHE_HASHED if _HASHED.search("." + stem) else CACHE_OTHER


@dataclass
class SiteSyncResult:
    """What :func:`publish_site` did.

    Attributes:
        uploaded: Keys written.
        unchanged: Keys already up to date.
        deleted: Keys removed (``delete=True``).
        website_url: The S3 website address when ``website=True`` (AWS naming), else ``None``.
        public: Whether a public-read statement was put on the bucket policy.
    """

    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    website_url: str | None = None
    public: bool = False
    public_scope: str | None = None  # the objects anyone can now read: s3://bucket/prefix/*


def _foreign_bundles(remote: dict[str, Any], wanted: set[str]) -> list[str]:
    """Folders of pushed ModelKB bundles (their ``metadata.json``) under the prefix that are not the site's."""
    return sorted(
        key.rsplit("/", 1)[0]
        for key in remote
        if key not in wanted and key.rsplit("/", 1)[-1] == METADATA_FILE
    )


def _digests(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def local_files(folder: Path) -> dict[str, Path]:
    """Relative POSIX path -> file, for every regular file of the site under ``folder``.

    Links are skipped, and so is everything hidden: the build's own ``.modelkb-build/`` (its
    manifest holds local paths and every metadata value) and any dotfile (``.env``) are never
    part of a published site.
    """
    files: dict[str, Path] = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            full = Path(root) / name
            if full.is_symlink() or not full.is_file():
                logger.warning("skipped %s: not a regular file", full)
                continue
            files[full.relative_to(folder).as_posix()] = full
    return files


def _unchanged(
    client: Any,
    location: S3Location,
    key: str,
    remote: dict[str, Any],
    *,
    size: int,
    md5: str,
    sha: str,
) -> bool:
    etag = remote.get("ETag", "")
    if etag and "-" not in etag:  # a single-part upload: the ETag is the MD5, no request needed
        return remote.get("Size") == size and etag == md5
    return s3_client.same_object(client, location.bucket, key, remote, size=size, sha256=sha)


def public_read_statement(location: S3Location) -> dict[str, Any]:
    """The bucket-policy statement that lets anyone GET the objects under the prefix."""
    resource = f"arn:aws:s3:::{location.bucket}/{location.key('*')}"
    return {
        "Sid": f"ModelKBPublicRead{re.sub(r'[^A-Za-z0-9]', '', location.prefix)[:60]}",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": resource,
    }


def _make_public(client: Any, location: S3Location) -> None:
    from botocore.exceptions import ClientError

    # New buckets block public policies; lift only that block (ACLs stay blocked).
    client.put_public_access_block(
        Bucket=location.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    try:
        policy = json.loads(client.get_bucket_policy(Bucket=location.bucket)["Policy"])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "NoSuchBucketPolicy":
            raise
        policy = {"Version": "2012-10-17", "Statement": []}
    statement = public_read_statement(location)
    kept = [s for s in policy.get("Statement", []) if s.get("Sid") != statement["Sid"]]
    policy["Statement"] = [*kept, statement]
    client.put_bucket_policy(Bucket=location.bucket, Policy=json.dumps(policy))


def _website(client: Any, location: S3Location, files: dict[str, Path]) -> str:
    error_page = "404.html" if "404.html" in files else "index.html"
    client.put_bucket_website(
        Bucket=location.bucket,
        WebsiteConfiguration={
            "IndexDocument": {"Suffix": "index.html"},
            "ErrorDocument": {"Key": location.key(error_page)},
        },
    )
    region = client.meta.region_name or "us-east-1"
    path = location.key() + "/" if location.prefix else ""
    return f"http://{location.bucket}.s3-website-{region}.amazonaws.com/{path}"


def publish_site(
    folder: str | os.PathLike[str],
    destination: str,
    *,
    delete: bool = False,
    public: bool = False,
    website: bool = False,
    endpoint_url: str | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    on_file: Callable[[str, int], None] | None = None,
    client: Any = None,
) -> SiteSyncResult:
    """Mirror a built catalog folder into ``s3://bucket/prefix``.

    Args:
        folder: The built catalog (``modelkb build`` output); must hold ``index.html``.
        destination: ``s3://bucket/prefix``.
        delete: Remove objects under the prefix that are not in ``folder``.
        public: Add a public-read (``s3:GetObject``) statement for the prefix to the bucket policy.
        website: Configure the bucket's static website (index ``index.html``).
        endpoint_url: A non-AWS S3 endpoint (also read from ``AWS_ENDPOINT_URL``).
        on_plan: Called once with ``(files to upload, their total bytes)``.
        on_file: Called with ``(key, bytes)`` after each upload.
        client: A boto3 S3 client to use instead of a new one.

    Raises:
        PublishError: The folder is not a catalog, or S3 refused (subclasses say why).
    """
    root = Path(folder)
    location = S3Location.parse(destination)
    if not (root / "index.html").is_file():
        raise PublishError(
            f"{root} has no index.html; it is not a built catalog",
            hint="Build it first with `modelkb build --out DIR`.",
        )
    files = local_files(root)
    client = client or s3_client.make_client(endpoint_url)
    s3_client.check_bucket(client, location)
    result = SiteSyncResult()
    remote_url = location.url()
    try:
        remote = s3_client.remote_objects(client, location)
        wanted = {location.key(relpath) for relpath in files}
        foreign = _foreign_bundles(remote, wanted) if (public or delete) else []
        if foreign:
            effect = (
                "--public would let anyone read them" if public else "--delete would remove them"
            )
            raise PublishError(
                f"{remote_url} also holds {len(foreign)} pushed bundle(s) "
                f"(such as s3://{location.bucket}/{foreign[0]}); {effect}",
                remote=remote_url,
                hint=f"Publish the site under a prefix of its own, e.g. {location.url('site')}.",
            )
        todo: list[tuple[str, Path, str]] = []
        for relpath, path in files.items():
            key = location.key(relpath)
            md5, sha = _digests(path)
            if key in remote and _unchanged(
                client, location, key, remote[key], size=path.stat().st_size, md5=md5, sha=sha
            ):
                result.unchanged.append(key)
            else:
                todo.append((key, path, sha))
        if on_plan:
            on_plan(len(todo), sum(path.stat().st_size for _, path, _ in todo))
        for key, path, sha in todo:
            client.upload_file(
                str(path),
                location.bucket,
                key,
                ExtraArgs={
                    "ContentType": s3_client.content_type(key),
                    "CacheControl": cache_control(key),
                    "Metadata": {"sha256": sha},
                },
            )
            result.uploaded.append(key)
            if on_file:
                on_file(key, path.stat().st_size)
        if delete:
            stale = sorted(key for key in remote if key not in wanted)
            for start in range(0, len(stale), 1000):
                batch = stale[start : start + 1000]
                client.delete_objects(
                    Bucket=location.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            result.deleted = stale
        if website:
            result.website_url = _website(client, location, files)
        if public:
            _make_public(client, location)
            result.public = True
            result.public_scope = f"s3://{location.bucket}/{location.key('*')}"
    except (*s3_client.boto_errors(), s3_client.upload_failed()) as err:
        # An upload failure wraps the botocore error that says what went wrong.
        raise s3_client.translate_error(
            err.__cause__ or err, remote=remote_url, action="publish to"
        ) from err
    return result
