"""The Lambda image is really built (COPY-only Dockerfile, vendored deps) and answers through the RIE.

No Docker daemon and no public base image here: a LOCAL STAND-IN base (Debian bookworm made with
mmdebstrap + RIE + awslambdaric) replaces public.ecr.aws/lambda/python:3.12 via --build-arg BASE_IMAGE.
The stand-in is Debian, NOT Amazon Linux; its Python is Debian's (3.11), so the dependencies are
vendored for that version here, while deployments vendor for 3.12 on the real Amazon Linux base.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
import uuid
from pathlib import Path

import pytest
from support.apigw import call, request_event
from support.container_tools import require_tools, rie_binary

from modelkb.serverless import container, rie

pytestmark = pytest.mark.slow


def _numbers(answer: object) -> list:
    """Every leaf of an answer, in order (labels as they are, probabilities as floats)."""
    if isinstance(answer, dict):
        return [leaf for key in sorted(answer) for leaf in _numbers(answer[key])]
    if isinstance(answer, list):
        return [leaf for item in answer for leaf in _numbers(item)]
    return [answer]


def test_image_builds_and_answers_predict(
    cases: dict, packages: dict, handlers: dict, tmp_path: Path
) -> None:
    require_tools("buildah", "podman", "runc", "mmdebstrap")
    name = next((n for n in ("keras-image", "torch-image") if n in cases), None) or next(
        iter(cases)
    )
    package = tmp_path / "package"
    shutil.copytree(packages[name], package)
    buildah = container.Engine("buildah", shutil.which("buildah"))
    podman = container.Engine("podman", shutil.which("podman"))
    work = tmp_path.parent / "standin-cache"  # the Debian root is made once per session
    base = container.make_standin_base(work_dir=work, rie=rie_binary(tmp_path), engine=buildah)
    python = container.standin_python(engine=podman, tag=base)
    container.vendor_dependencies(package, python_version=python)
    tag = f"localhost/modelkb-test-{uuid.uuid4().hex[:8]}:latest"
    container.build_image(package, tag, engine=buildah, base_image=base)
    port = rie.free_port()
    run_name = f"modelkb-test-{uuid.uuid4().hex[:8]}"
    process = container.run_container(
        tag, rie_address=f"127.0.0.1:{port}", engine=podman, name=run_name
    )
    try:
        url = f"http://127.0.0.1:{port}"
        rie.wait_until_invokable(url, process=process, timeout=120)
        case = cases[name]
        for body in ({"inputs": case.raw[0]}, {"instances": case.raw[1:4]}, {"inputs": [[1]]}):
            event = request_event(
                "POST", "/predict", json.dumps(body).encode(), {"content-type": "application/json"}
            )
            request = urllib.request.Request(
                url + rie.INVOKE_PATH, data=json.dumps(event).encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                result = json.loads(response.read())
            status, expected, _ = call(handlers[name], "POST", "/predict", body)
            assert result["statusCode"] == status
            assert _numbers(json.loads(result["body"])) == pytest.approx(
                _numbers(expected), abs=1e-6
            )
    finally:
        container.remove_container(run_name, engine=podman)
        process.wait(timeout=60)
        podman_rmi = shutil.which("podman")
        if podman_rmi:
            import subprocess

            subprocess.run([podman_rmi, "rmi", "-f", tag], capture_output=True, timeout=120)
