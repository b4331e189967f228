"""Fixtures for publishing tests: real protocol peers on 127.0.0.1 and quick real bundles.

* ``moto`` — a moto server (``moto_server -H 127.0.0.1 -p PORT``) for S3 API calls, reset per test;
* ``s3rver`` — s3rver from npm (installed once into a cache folder), which serves bucket websites;
* ``hub`` — :class:`hub_server.FakeHub`, a local Hugging Face Hub.

The environment is isolated per test: ``chdir(tmp_path)``, no ``AWS_*``/``HF_*`` from outside, fake
AWS credentials, and ``HF_HOME`` in the temp folder so no saved login can leak in.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelkb.experiment import Experiment
from modelkb.store import Store

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
TOKEN = "hf_ModelKBTestTokenThatMustNeverBeStored1234"
OTHER_TOKEN = "hf_SomebodyElsesTokenForPermissionTests98765"
USER = "ada"
sys.path.insert(0, str(HERE))

from hub_server import FakeHub


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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


# -- bundles -------------------------------------------------------------------------------------------
def make_bundle(
    store_root: Path,
    project: str = "Digits CNN",
    *,
    model: bytes | None = None,
    weights_size: int = 6000,
    seed: int = 1,
) -> str:
    """A finished framework-free run with a model, weights, code and a card; returns its id."""
    with Experiment(
        project, "ada", seed=seed, store=store_root, capture_code=False, tags=["test"]
    ) as exp:
        exp.log_params({"epochs": 2, "batch_size": 16, "optimizer": "Adam"})
        exp.set_dataset(kind="tabular", name="iris", classes=["setosa", "versicolor", "virginica"])
        for epoch in range(2):
            exp.log_metrics(
                {
                    "loss": 1.0 / (epoch + 1),
                    "accuracy": 0.6 + 0.2 * epoch,
                    "val_loss": 1.1 / (epoch + 1),
                    "val_accuracy": 0.55 + 0.2 * epoch,
                },
                epoch=epoch,
            )
        exp.artifact_path("model.onnx").write_bytes(
            model if model is not None else os.urandom(5000)
        )
        exp.artifact_path("model.safetensors").write_bytes(os.urandom(weights_size))
        exp.artifact_path("code/train.py").write_text(
            "import numpy\nprint('train')\n", encoding="utf-8"
        )
        exp.artifact_path("code/sub/util.py").write_text("VALUE = 1\n", encoding="utf-8")
    return exp.id


def tiny_onnx_model() -> bytes | None:
    """A real 4-feature, 3-class softmax classifier as ONNX bytes, or None without ``onnx``."""
    if importlib.util.find_spec("onnx") is None:
        return None
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "W")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, 3])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model.SerializeToString()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def bundle_id(store: Store) -> str:
    return make_bundle(store.root)


def store_snapshot(store: Store) -> dict[str, bytes]:
    """Every file of the store but the index (to prove a failure left it untouched)."""
    out = {}
    if not store.root.exists():
        return out
    for path in sorted(store.root.rglob("*")):
        rel = path.relative_to(store.root).as_posix()
        if rel.startswith(".modelkb/index") or path.is_dir():
            continue
        out[rel] = path.read_bytes()
    return out


def artifact_bytes(folder: Path) -> dict[str, bytes]:
    import json

    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    return {a["path"]: (folder / a["path"]).read_bytes() for a in meta["artifacts"]}


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``python -m modelkb ARGS`` in a fresh process with the test's environment."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "modelkb", *args],
        check=False,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


# -- moto (S3 API) -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    binary = VENV_BIN / "moto_server"
    if not binary.exists():
        found = shutil.which("moto_server")
        if found is None:
            pytest.skip("moto_server is not installed (pip install 'moto[server]')")
        binary = Path(found)
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture
def moto(moto_server: str) -> str:
    """The moto endpoint, reset to empty for this test."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=10).close()
    return moto_server


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
    process = subprocess.Popen(
        [
            str(s3rver_bin),
            "-d",
            str(data),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "--allow-mismatched-signatures",
            "--no-vhost-buckets",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


# -- the Hub ---------------------------------------------------------------------------------------------
@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    server = FakeHub(tmp_path / "hub-data", {TOKEN: USER, OTHER_TOKEN: "bob"}).start()
    try:
        yield server
    finally:
        server.stop()
