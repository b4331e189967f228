"""The AWS Lambda Runtime Interface Emulator (RIE) on the host, without a container.

The RIE binary ships inside the aws-sam-cli wheel (``samcli/local/rapid/aws-lambda-rie-x86_64``).
aws-sam-cli itself is never installed (it pins an old click): its wheel is downloaded with
``pip download --no-deps`` into a temporary folder and only the binary is extracted.

The RIE has no ``--help``: an unknown argument is run as the command, and its default address is
0.0.0.0:8080, so the 127.0.0.1 address is always passed explicitly.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from modelkb.errors import ContainerToolError
from modelkb.fsutil import atomic_target

logger = logging.getLogger(__name__)

RIE_MEMBER = "samcli/local/rapid/aws-lambda-rie-x86_64"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelkb"


def find_rie() -> Path | None:
    """``$MODELKB_RIE``, ``aws-lambda-rie`` on PATH, or a previously fetched copy."""
    candidates = [
        os.environ.get("MODELKB_RIE"),
        shutil.which("aws-lambda-rie"),
        shutil.which("aws-lambda-rie-x86_64"),
        str(cache_dir() / "aws-lambda-rie-x86_64"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def fetch_rie(destination: Path | None = None, *, python: str = sys.executable) -> Path:
    """Extract the RIE from the aws-sam-cli wheel (``pip download --no-deps``) into the cache."""
    target = destination or cache_dir() / "aws-lambda-rie-x86_64"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="modelkb-samcli-") as tmp:
        result = subprocess.run(
            [
                python,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                tmp,
                "aws-sam-cli",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        wheels = list(Path(tmp).glob("aws_sam_cli-*.whl"))
        if result.returncode != 0 or not wheels:
            raise ContainerToolError(
                f"could not download the aws-sam-cli wheel to get the RIE: {result.stderr.strip()[-300:]}",
                hint="Set MODELKB_RIE to an aws-lambda-rie binary.",
            )
        with zipfile.ZipFile(wheels[0]) as wheel, atomic_target(target, mode=0o755) as partial:
            partial.write_bytes(wheel.read(RIE_MEMBER))
    return target


def ensure_rie() -> Path:
    """The RIE binary, fetched once if needed."""
    return find_rie() or fetch_rie()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_rie(
    package_dir: str | os.PathLike[str],
    *,
    port: int | None = None,
    rie: Path | None = None,
    python: str = sys.executable,
    handler: str = "handler.lambda_handler",
) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``aws-lambda-rie python -m awslambdaric handler.lambda_handler`` on 127.0.0.1.

    Returns:
        The process and the RIE's base URL (``http://127.0.0.1:PORT``), once it answers.
    """
    binary = rie or ensure_rie()
    port = port or free_port()
    folder = Path(package_dir).resolve()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
        "AWS_LAMBDA_FUNCTION_NAME": "modelkb-local",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    }
    command = [
        str(binary),
        "--runtime-interface-emulator-address",
        f"127.0.0.1:{port}",
        python,
        "-m",
        "awslambdaric",
        handler,
    ]
    process = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_invokable(url, process=process)
    return process, url


def wait_until_invokable(
    url: str, *, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll the RIE with a GET /health event until the function answers."""
    from modelkb.serverless.local_server import http_event

    deadline = time.monotonic() + timeout
    data = json.dumps(http_event("GET", "/health")).encode()
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace")[-800:] if process.stderr else ""
            raise ContainerToolError(
                f"the emulator exited with code {process.returncode}: {stderr}"
            )
        try:
            request = urllib.request.Request(url + INVOKE_PATH, data=data, method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = json.loads(response.read())
            if answer.get("statusCode") == 200:
                return
            if answer.get("errorType"):
                raise ContainerToolError(
                    f"the function failed to start: {answer.get('errorType')}: {answer.get('errorMessage')}"
                )
        except (urllib.error.URLError, ConnectionError, OSError, ValueError) as err:
            last = err
        time.sleep(0.2)
    raise ContainerToolError(
        f"the function behind {url} did not answer within {timeout:.0f} s ({last})"
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started here (by its handle, never by name)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
