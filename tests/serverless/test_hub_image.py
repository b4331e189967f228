"""The catalog builder image is really built (COPY-only, vendored deps) and its handler answers through the RIE.

As for the inference image (test_container.py): no Docker daemon and no public base image here, so a
LOCAL STAND-IN base (Debian bookworm made with mmdebstrap + RIE + awslambdaric, NOT Amazon Linux)
replaces public.ecr.aws/lambda/python:3.12, and the dependencies are vendored for its Python.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from support import s3_events
from support.container_tools import require_tools, rie_binary

from modelkb.serverless import container, hub_image, rie

pytestmark = pytest.mark.slow


def test_builder_context_is_copy_only_and_pinned(tmp_path: Path) -> None:
    context = hub_image.render_builder_context(tmp_path / "builder")
    dockerfile = (context.path / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12" in dockerfile
    assert "RUN " not in dockerfile and "COPY deps/ /var/task/" in dockerfile
    assert f'CMD ["{hub_image.BUILDER_HANDLER}"]' in dockerfile
    requirements = (context.path / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert {f"{name}=={version}" for name, version in context.pins.items()} <= set(requirements)
    assert set(context.pins) == {"mkdocs", "mkdocs-material", "netron", "boto3"}
    assert context.wheel.name.startswith("modelkb-") and context.wheel.suffix == ".whl"


def _invoke(url: str, event: dict, *, process: subprocess.Popen, wait: float = 120) -> dict:
    """Invoke through the RIE, retrying while the emulator is not listening yet."""
    request = urllib.request.Request(
        url + rie.INVOKE_PATH, data=json.dumps(event).encode(), method="POST"
    )
    deadline = time.monotonic() + wait
    while True:
        assert process.poll() is None, process.stderr.read().decode(errors="replace")[-800:]
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError) as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"the builder image never answered: {err}") from err
            time.sleep(0.5)


def _push_runs(tmp_path: Path, count: int) -> list[str]:
    from click.testing import CliRunner
    from support.runs import make_bundle

    from modelkb.cli import cli

    ids = []
    for seed in range(count):
        run_id = make_bundle(tmp_path / "laptop-store", "Digits CNN", seed=seed + 1)
        address = "s3://modelkb-team-test/team"
        args = ["push", run_id, address, "--store", str(tmp_path / "laptop-store")]
        pushed = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert pushed.exit_code == 0, pushed.output
        ids.append(run_id)
    return ids


def test_builder_image_builds_and_its_handler_answers(tmp_path: Path, aws_moto: str) -> None:
    require_tools("buildah", "podman", "runc", "mmdebstrap")
    buildah = container.Engine("buildah", shutil.which("buildah"))
    podman = container.Engine("podman", shutil.which("podman"))
    work = tmp_path.parent / "standin-cache"  # the Debian root is made once per session
    base = container.make_standin_base(work_dir=work, rie=rie_binary(tmp_path), engine=buildah)
    python = container.standin_python(engine=podman, tag=base)
    context = hub_image.render_builder_context(tmp_path / "builder")
    tag = f"localhost/modelkb-hub-builder-test-{uuid.uuid4().hex[:8]}:latest"
    hub_image.build_builder_image(
        context, tag, engine=buildah, base_image=base, python_version=python
    )
    port = rie.free_port()
    name = f"modelkb-hub-test-{uuid.uuid4().hex[:8]}"
    env = {
        "MODELKB_TEAM_STORE": "s3://modelkb-team-test/team",
        "MODELKB_CATALOG_BUCKET": "modelkb-catalog-test",
        "AWS_ENDPOINT_URL": aws_moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    process = container.run_container(
        tag, rie_address=f"127.0.0.1:{port}", engine=podman, name=name, env=env
    )
    try:
        url = f"http://127.0.0.1:{port}"
        report = _invoke(url, s3_events.load("sqs_s3_test_event.json"), process=process)
        assert report["built"] is False and report["skipped"] == 1, report
        assert "test event" in report["skip_reasons"][0]

        # the real thing: runs pushed to the team store, the image builds and publishes them
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=aws_moto)
        for bucket in ("modelkb-team-test", "modelkb-catalog-test"):
            s3.create_bucket(Bucket=bucket)
        runs = _push_runs(tmp_path, 2)
        keys = s3_events.run_keys("modelkb-team-test", s3, "team")
        bodies = [
            s3_events.s3_event([s3_events.s3_record("modelkb-team-test", k, s3=s3)]) for k in keys
        ]
        built = _invoke(url, s3_events.sqs_event(bodies), process=process)
        assert built.get("built") is True, built
        assert built["runs_seen"] == 2 and built["pages_rendered"] == 2, built
        listing = s3.list_objects_v2(Bucket="modelkb-catalog-test", MaxKeys=1000)
        published = {obj["Key"] for obj in listing.get("Contents", [])}
        assert {"index.html", "projects/digits-cnn/index.html"} <= published
        assert {f"experiments/{run_id}/index.html" for run_id in runs} <= published
    finally:
        container.remove_container(name, engine=podman)
        process.wait(timeout=60)
        subprocess.run([podman.path, "rmi", "-f", tag], capture_output=True, timeout=120)
