"""Fixtures for publishing tests: real protocol peers on 127.0.0.1 and quick real bundles.

* ``moto`` — a moto server (``moto_server -H 127.0.0.1 -p PORT``) for S3 API calls, reset per test;
* ``s3rver`` — s3rver from npm (installed once into a cache folder), which serves bucket websites;
* ``hub`` — :class:`support.hub_server.FakeHub`, a local Hugging Face Hub.

The environment is isolated per test: ``chdir(tmp_path)``, no ``AWS_*``/``HF_*`` from outside, fake
AWS credentials, and ``HF_HOME`` in the temp folder so no saved login can leak in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import moto_fixtures
from support.hub_server import OTHER_TOKEN, TOKEN, USER, FakeHub
from support.processes import free_port, local_server
from support.runs import make_bundle

from modelkb.store import Store


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("AWS_", "HF_", "HUGGING_FACE")) or name in (
            "MODELKB_HOME",
            "MODELKB_DEBUG",
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def bundle_id(store: Store) -> str:
    return make_bundle(store.root)


# -- moto (S3 API) -------------------------------------------------------------------------------------
moto_server = moto_fixtures.moto_server
moto = moto_fixtures.moto


@pytest.fixture
def s3(moto: str):
    import boto3

    return boto3.client("s3", endpoint_url=moto, region_name="us-east-1")


# -- s3rver (bucket websites) --------------------------------------------------------------------------
S3RVER_VERSION = "3.7.1"


@pytest.fixture(scope="session")
def s3rver_bin() -> Path:
    npm = shutil.which("npm")
    node = shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm/node are not installed: the S3 website test needs s3rver from npm")
    cache = (
        Path(os.environ.get("MODELKB_TEST_CACHE") or Path.home() / ".cache" / "modelkb-tests")
        / f"s3rver-{S3RVER_VERSION}"
    )
    binary = cache / "node_modules" / ".bin" / "s3rver"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(cache),
                "--no-audit",
                "--no-fund",
                f"s3rver@{S3RVER_VERSION}",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0 or not binary.exists():
            pytest.skip(
                f"could not install s3rver@{S3RVER_VERSION} with npm: {done.stderr.strip()[-300:]}"
            )
    return binary


@pytest.fixture
def s3rver(s3rver_bin: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    data = tmp_path / "s3rver-data"
    data.mkdir()
    command = [
        str(s3rver_bin),
        "-d",
        str(data),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "--allow-mismatched-signatures",
        "--no-vhost-buckets",
    ]
    with local_server(command, port) as url:
        yield url


# -- the Hub ---------------------------------------------------------------------------------------------
@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    server = FakeHub(tmp_path / "hub-data", {TOKEN: USER, OTHER_TOKEN: "bob"}).start()
    try:
        yield server
    finally:
        server.stop()
