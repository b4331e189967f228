"""Deploy against a moto server on 127.0.0.1 (moto cannot run the SAM transform: we translate locally)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from modelkb.serverless.deploy import (
    deploy,
    deploy_stack,
    ensure_repository,
    plan_deploy,
    registry_login,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> str:
    binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(binary).exists():
        pytest.skip("moto[server] is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("moto_server did not start")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return moto_url


def test_repository_and_login(aws_env: str) -> None:
    uri = ensure_repository("modelkb-test", region="eu-west-1", endpoint_url=aws_env)
    assert uri.endswith("/modelkb-test") and ".dkr.ecr.eu-west-1." in uri
    assert ensure_repository("modelkb-test", region="eu-west-1", endpoint_url=aws_env) == uri
    registry, username, password = registry_login(region="eu-west-1", endpoint_url=aws_env)
    assert username == "AWS" and password and registry


def test_deploy_creates_then_updates_the_stack(
    aws_env: str, packages: dict, tmp_path: Path
) -> None:
    folder = next(iter(packages.values()))
    package = tmp_path / "package"
    shutil.copytree(folder, package)
    plan = plan_deploy(
        "01abcdefghjkmnpqrstvwxyz12", region="eu-west-1", package_dir=package, endpoint_url=aws_env
    )
    pushed: list[str] = []
    result = deploy(plan, build_and_push=pushed.append)
    assert pushed == [result.image_uri] and result.image_uri.endswith(":tvwxyz12")
    assert result.stack_name == "modelkb-tvwxyz12" and result.stack_id
    # moto leaves ${HttpApi} unresolved (no API Gateway v2 in its CloudFormation); AWS fills in the API id.
    assert (
        result.invoke_url
        and result.invoke_url.startswith("https://")
        and ".execute-api.eu-west-1." in result.invoke_url
    )
    import boto3

    cfn = boto3.client("cloudformation", region_name="eu-west-1", endpoint_url=aws_env)
    resources = {
        r["ResourceType"]
        for r in cfn.list_stack_resources(StackName=result.stack_name)["StackResourceSummaries"]
    }
    assert "AWS::Lambda::Function" in resources and "AWS::IAM::Role" in resources
    again = deploy_stack(
        package / "template.yaml",
        stack_name=result.stack_name,
        region="eu-west-1",
        parameters={"ImageUri": result.image_uri + "-2"},
        endpoint_url=aws_env,
    )
    assert again.stack_name == result.stack_name


def test_deploy_without_container_engine_names_what_is_missing(
    cases: dict, store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from modelkb.cli import cli
    from modelkb.errors import ContainerToolError

    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, podman or buildah
    monkeypatch.delenv("MODELKB_CONTAINER_ENGINE", raising=False)
    case = next(iter(cases.values()))
    result = CliRunner().invoke(
        cli,
        [
            "deploy",
            case.metadata["id"],
            "--region",
            "eu-west-1",
            "--store",
            str(store_root),
            "--out",
            str(tmp_path / "pkg"),
        ],
    )
    assert isinstance(result.exception, ContainerToolError)
    assert "docker, podman or buildah" in str(result.exception) and result.exception.hint
    assert not (tmp_path / "pkg").exists()
    from modelkb import Store

    assert (
        "serverless" not in Store(store_root).get(case.metadata["id"]).metadata
    )  # a failed deploy records nothing


@pytest.mark.parametrize("kind", ["image", "tabular", "text"])
def test_a_deploy_is_recorded_in_the_bundle_the_index_and_the_catalog(
    aws_env: str,
    cases: dict,
    store_root: Path,
    packages: dict,
    handlers: dict,
    kind: str,
    tmp_path: Path,
) -> None:
    import json

    from click.testing import CliRunner
    from support.apigw import call

    from modelkb import Store
    from modelkb.cli import cli
    from modelkb.serverless.deploy import record_deployment

    name = next(n for n, case in cases.items() if case.metadata["dataset"]["kind"] == kind)
    experiment_id = cases[name].metadata["id"]
    store = Store(tmp_path / "store")
    shutil.copytree(store_root, store.root)  # a copy: the session's bundles stay undeployed
    package = tmp_path / "package"
    shutil.copytree(packages[name], package)
    spec = json.loads((package / "spec.json").read_text(encoding="utf-8"))
    plan = plan_deploy(experiment_id, region="eu-west-1", package_dir=package, endpoint_url=aws_env)
    result = deploy(plan, build_and_push=lambda uri: None)

    first = record_deployment(store, experiment_id, plan, result, spec)
    record = store.get(experiment_id).metadata["serverless"]
    assert record == first and record["url"] == result.invoke_url
    assert record["region"] == "eu-west-1" and record["stack_name"] == result.stack_name
    assert record["image_uri"] == result.image_uri and record["deployed"]
    # the recorded example body is one the model's handler answers
    status, answer, text = call(handlers[name], "POST", "/predict", record["example_request"])
    assert status == 200, text
    assert answer

    again = record_deployment(store, experiment_id, plan, result, spec)
    assert (
        store.get(experiment_id).metadata["serverless"]["deployed"]
        == again["deployed"]
        >= first["deployed"]
    )
    found = CliRunner().invoke(
        cli,
        ["query", "serverless.url ~ execute-api", "--store", str(store.root), "--format", "json"],
        catch_exceptions=False,
    )
    assert [row["id"] for row in json.loads(found.output)] == [experiment_id]

    site = tmp_path / "site"
    built = CliRunner().invoke(
        cli, ["build", "--store", str(store.root), "--out", str(site)], catch_exceptions=False
    )
    assert built.exit_code == 0, built.output
    page = (site / "experiments" / experiment_id / "index.html").read_text(encoding="utf-8")
    assert result.invoke_url in page and "not deployed yet" not in page
    assert "curl -s -X POST" in page and "/predict" in page
