"""The published catalog is served as a bucket website by s3rver (npm), a real S3 implementation."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.catalog_site import tiny_catalog

from modelkb.publishing.s3_site import publish_site

pytest.importorskip("boto3")


def _get(endpoint: str, host: str, path: str) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(endpoint)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_published_site_is_served_by_the_website_endpoint(s3rver: str, tmp_path: Path) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3rver,
        region_name="us-east-1",
        aws_access_key_id="S3RVER",
        aws_secret_access_key="S3RVER",
    )
    client.create_bucket(Bucket="catalog")
    site = tiny_catalog(tmp_path / "site")
    result = publish_site(
        site, "s3://catalog/site", website=True, public=False, endpoint_url=s3rver, client=client
    )
    assert len(result.uploaded) == 7 and result.website_url

    host = "catalog.s3-website-us-east-1.amazonaws.com"
    status, headers, body = _get(s3rver, host, "/site/")
    assert status == 200, body[:300]
    assert b"<h1>Runs</h1>" in body
    assert headers["content-type"].startswith("text/html")
    assert headers.get("cache-control") == "no-cache"
    status, headers, body = _get(s3rver, host, "/site/assets/app.3f9c2b7e.js")
    assert status == 200 and "immutable" in headers.get("cache-control", "")
    status, _, body = _get(s3rver, host, "/site/missing-page")
    assert status == 404 and b"missing" in body  # the catalog's 404.html is the error document
