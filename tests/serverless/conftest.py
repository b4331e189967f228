"""Fixtures of the serverless tests: real tiny models packaged once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import moto_fixtures

from modelkb.extras import available

moto_server = moto_fixtures.moto_server
moto = moto_fixtures.moto

KINDS = ("image", "tabular", "text")
FRAMEWORKS = ("keras", "torch")


@pytest.fixture(autouse=True)
def _isolated_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials or region leak into a test."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")


@pytest.fixture
def aws_moto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto: str) -> str:
    """Fake credentials, ``AWS_ENDPOINT_URL`` pointing at a freshly reset moto server, and team
    store caches in the test's folder."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    monkeypatch.setenv("MODELKB_CACHE", str(tmp_path / "modelkb-cache"))  # team store caches
    return moto


@pytest.fixture(scope="session")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="session")
def cases(store_root: Path) -> dict[str, object]:
    """Six trained-and-exported models (Keras and PyTorch x image, tabular, text), as bundles."""
    pytest.importorskip("sklearn")
    pytest.importorskip("onnxruntime")
    from support import serving_models

    found: dict[str, object] = {}
    if available("keras") and available("tf2onnx"):
        for kind in KINDS:
            case = serving_models.keras_case(store_root, kind)
            found[case.name] = case
    if available("torch") and available("onnxscript"):
        for kind in KINDS:
            case = serving_models.torch_case(store_root, kind)
            found[case.name] = case
    if not found:
        pytest.skip("neither keras+tf2onnx nor torch+onnxscript is installed")
    return found


@pytest.fixture(scope="session")
def packages(cases: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case rendered with ``render_package``."""
    from modelkb.serverless.render import render_package

    out = tmp_path_factory.mktemp("packages")
    return {
        name: render_package(case.bundle, case.metadata, out / name).path
        for name, case in cases.items()
    }


@pytest.fixture(scope="session")
def handlers(packages: dict[str, Path]) -> dict[str, object]:
    """Each package's ``handler`` module, imported in isolation."""
    from modelkb.serverless.local_server import load_handler

    return {name: load_handler(path) for name, path in packages.items()}
