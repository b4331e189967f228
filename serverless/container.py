"""Build and run the package's Lambda image without a Docker daemon (buildah/podman), or with docker.

* :func:`vendor_dependencies` puts the pinned runtime wheels for the Lambda platform into ``deps/``
  (``pip install --target --platform manylinux_2_28_x86_64 --python-version 3.12 --only-binary``),
  so the Dockerfile is COPY-only: no network and no compiler during the build.
* :func:`build_image` runs ``buildah bud`` / ``podman build`` / ``docker build``.
* :func:`make_standin_base` makes a *local stand-in* for ``public.ecr.aws/lambda/python`` (which cannot
  be pulled here): a Debian ``mmdebstrap`` root with python3, the RIE, awslambdaric and an entrypoint
  like Lambda's. **The stand-in is Debian, not Amazon Linux**: it proves the COPY-only image runs the
  handler through the RIE; the deployed image uses the real Amazon Linux 2023 base.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modelkb.errors import ContainerToolError
from modelkb.serverless.render import PLATFORMS, PYTHON_VERSION

logger = logging.getLogger(__name__)

ENGINES = ("docker", "podman", "buildah")
STANDIN_TAG = "localhost/modelkb-standin-lambda-python:latest"
# podman on hosts without systemd/cgroups v2 delegation (CI containers, this machine).
PODMAN_RUN_FLAGS = (
    "--runtime",
    "runc",
    "--cgroup-manager",
    "cgroupfs",
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
    "--network",
    "host",
)
_ENTRYPOINT = """#!/bin/sh
# Stand-in for the Lambda base image's /lambda-entrypoint.sh (Debian, NOT Amazon Linux).
# Unlike the real one it binds the emulator to 127.0.0.1 (MODELKB_RIE_ADDRESS), never 0.0.0.0.
if [ $# -ne 1 ]; then echo "entrypoint requires the handler name to be the first argument" 1>&2; exit 142; fi
export _HANDLER="$1"
cd "${LAMBDA_TASK_ROOT}"
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  exec /usr/local/bin/aws-lambda-rie --runtime-interface-emulator-address "${MODELKB_RIE_ADDRESS:-127.0.0.1:8080}" \\
       /usr/bin/python3 -m awslambdaric "$_HANDLER"
fi
exec /usr/bin/python3 -m awslambdaric "$_HANDLER"
"""


@dataclass(frozen=True)
class Engine:
    """A container tool: ``docker``, ``podman`` or ``buildah`` (build only)."""

    name: str
    path: str

    @property
    def can_run(self) -> bool:
        return self.name in ("docker", "podman")

    def command(self, *args: str) -> list[str]:
        return [self.path, *args]


def find_engine(preferred: str | None = None, *, need_run: bool = False) -> Engine:
    """The first usable container engine (``preferred`` first, or ``$MODELKB_CONTAINER_ENGINE``).

    Raises:
        ContainerToolError: None is installed; the message names what to install.
    """
    order = [preferred or os.environ.get("MODELKB_CONTAINER_ENGINE") or "", *ENGINES]
    for name in filter(None, order):
        if need_run and name == "buildah":
            continue
        path = shutil.which(name)
        if path and (name != "docker" or _docker_daemon_up(path)):
            return Engine(name, path)
    wanted = "docker or podman" if need_run else "docker, podman or buildah"
    raise ContainerToolError(
        f"no container engine found: building the Lambda image needs {wanted} on PATH"
        + (
            " (docker is installed but its daemon is not running)" if shutil.which("docker") else ""
        ),
        hint="Install one, e.g. `apt-get install -y buildah podman runc uidmap fuse-overlayfs slirp4netns`.",
    )


def _docker_daemon_up(path: str) -> bool:
    try:
        return (
            subprocess.run([path, "info"], capture_output=True, timeout=20, check=False).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_tool(
    command: list[str],
    *,
    what: str,
    timeout: float = 1800,
    cwd: Path | None = None,
    input_text: str | None = None,
) -> str:
    """Run a tool; a failure raises :class:`ContainerToolError` with the end of its output."""
    logger.info("running %s", " ".join(command))
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            input=input_text,
            check=False,
        )
    except FileNotFoundError as err:
        raise ContainerToolError(f"{what} failed: {command[0]} is not installed") from err
    except subprocess.TimeoutExpired as err:
        raise ContainerToolError(f"{what} timed out after {timeout:.0f} s") from err
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-1200:]
        raise ContainerToolError(f"{what} failed (exit {result.returncode}): {tail}")
    return result.stdout


def vendor_dependencies(
    package_dir: str | os.PathLike[str],
    *,
    python_version: str = PYTHON_VERSION,
    platforms: tuple[str, ...] = PLATFORMS,
    python: str = sys.executable,
    target: str = "deps",
    extra: tuple[str, ...] = (),
) -> Path:
    """``pip install --target`` the package's ``requirements.txt`` for the Lambda platform.

    Args:
        package_dir: The generated package.
        python_version: The image's Python (``3.12`` for the Lambda base).
        platforms: Wheel platform tags; manylinux_2_28 because onnxruntime 1.32 needs glibc 2.28.
        python: The interpreter whose pip runs (any version; wheels are chosen by the tags).
        target: Folder inside the package.
        extra: More requirement specifiers (the stand-in base adds ``awslambdaric``).
    """
    folder = Path(package_dir)
    deps = folder / target
    if deps.exists():
        shutil.rmtree(deps)
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--target",
        str(deps),
        *_platform_flags(platforms),
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "-r",
        str(folder / "requirements.txt"),
        *extra,
    ]
    run_tool(command, what="vendoring the runtime dependencies with pip", timeout=1800)
    for cache in deps.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    return deps


def _platform_flags(platforms: tuple[str, ...]) -> list[str]:
    return [flag for platform in platforms for flag in ("--platform", platform)]


def build_image(
    package_dir: str | os.PathLike[str],
    tag: str,
    *,
    engine: Engine | None = None,
    base_image: str | None = None,
    dockerfile: str = "Dockerfile",
    needs_deps: bool = True,
) -> str:
    """Build the package's image (``deps/`` must be vendored first); returns the tag."""
    folder = Path(package_dir)
    if needs_deps and not (folder / "deps").is_dir():
        raise ContainerToolError(f"{folder / 'deps'} is missing: vendor the dependencies first")
    engine = engine or find_engine()
    build_args = ["--build-arg", f"BASE_IMAGE={base_image}"] if base_image else []
    if engine.name == "buildah":
        command = engine.command(
            "bud", "--layers=false", "-f", dockerfile, "-t", tag, *build_args, str(folder)
        )
    else:
        command = engine.command(
            "build", "-f", str(folder / dockerfile), "-t", tag, *build_args, str(folder)
        )
    run_tool(command, what=f"building the image with {engine.name}", timeout=1800, cwd=folder)
    return tag


def run_container(
    tag: str,
    *,
    rie_address: str,
    engine: Engine | None = None,
    name: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the image (detached from this process's stdio) with the RIE on ``rie_address``.

    Host networking: the RIE inside binds ``rie_address`` (a 127.0.0.1 address) on the host.
    """
    engine = engine or find_engine(need_run=True)
    args = ["run", "--rm"]
    if name:
        args += ["--name", name]
    if engine.name == "podman":
        args += list(PODMAN_RUN_FLAGS)
    else:
        args += ["--network", "host"]
    for key, value in {"MODELKB_RIE_ADDRESS": rie_address, **(env or {})}.items():
        args += ["-e", f"{key}={value}"]
    command = engine.command(*args, tag)
    logger.info("running %s", " ".join(command))
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def remove_container(name: str, *, engine: Engine) -> None:
    """Force-remove a container started here, by its name."""
    subprocess.run(engine.command("rm", "-f", name), capture_output=True, timeout=60, check=False)


def make_standin_base(
    *,
    work_dir: str | os.PathLike[str],
    rie: Path,
    engine: Engine | None = None,
    tag: str = STANDIN_TAG,
    suite: str = "bookworm",
    mirror: str = "http://deb.debian.org/debian",
    python: str = sys.executable,
) -> str:
    """Build a LOCAL STAND-IN for the Lambda Python base image (Debian, NOT Amazon Linux).

    mmdebstrap makes a minimal Debian root with python3; on top: the RIE, awslambdaric (vendored for
    the stand-in's Python) and an entrypoint like Lambda's, with ``LAMBDA_TASK_ROOT=/var/task``.
    The generated Dockerfile is used unchanged with ``--build-arg BASE_IMAGE=<this tag>``.

    Returns:
        The stand-in's tag; the stand-in's Python version is in the ``modelkb.python`` label.
    """
    if not shutil.which("mmdebstrap"):
        raise ContainerToolError(
            "mmdebstrap is not installed", hint="apt-get install -y mmdebstrap"
        )
    engine = engine or find_engine()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    rootfs = work / "rootfs.tar"
    if not rootfs.exists():
        run_tool(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--include=python3",
                "--mode=root",
                suite,
                str(rootfs),
                mirror,
            ],
            what="making the Debian stand-in root with mmdebstrap",
            timeout=1800,
        )
    root_tag = "localhost/modelkb-standin-root:latest"
    importer = (
        engine if engine.name != "buildah" else Engine("podman", shutil.which("podman") or "podman")
    )
    run_tool(
        importer.command("import", str(rootfs), root_tag),
        what="importing the stand-in root",
        timeout=600,
    )
    context = Path(tempfile.mkdtemp(prefix="standin-", dir=work))
    shutil.copyfile(rie, context / "aws-lambda-rie")
    (context / "lambda-entrypoint.sh").write_text(_ENTRYPOINT, encoding="utf-8")
    minor = standin_python(engine=importer, tag=root_tag)
    run_tool(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--target",
            str(context / "runtime"),
            *_platform_flags(PLATFORMS),
            "--python-version",
            minor,
            "--implementation",
            "cp",
            "--only-binary=:all:",
            "awslambdaric",
        ],
        what="vendoring awslambdaric for the stand-in",
        timeout=900,
    )
    (context / "Dockerfile").write_text(
        f"# LOCAL STAND-IN for public.ecr.aws/lambda/python: Debian {suite}, NOT Amazon Linux.\n"
        f"FROM {root_tag}\n"
        "COPY aws-lambda-rie /usr/local/bin/aws-lambda-rie\n"
        "COPY lambda-entrypoint.sh /lambda-entrypoint.sh\n"
        "COPY runtime/ /var/runtime/\n"
        'RUN ["/bin/chmod", "755", "/usr/local/bin/aws-lambda-rie", "/lambda-entrypoint.sh"]\n'
        "ENV LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime PYTHONPATH=/var/runtime:/var/task\n"
        f'LABEL modelkb.standin="debian-{suite}" modelkb.python="{minor}"\n'
        "WORKDIR /var/task\n"
        'ENTRYPOINT ["/lambda-entrypoint.sh"]\n',
        encoding="utf-8",
    )
    build_image(context, tag, engine=engine, needs_deps=False)
    return tag


def standin_python(*, engine: Engine, tag: str) -> str:
    """``major.minor`` of the python3 inside an image."""
    runner = engine if engine.can_run else Engine("podman", shutil.which("podman") or "podman")
    args = list(PODMAN_RUN_FLAGS) if runner.name == "podman" else []
    out = run_tool(
        runner.command(
            "run",
            "--rm",
            *args,
            "--entrypoint",
            "/usr/bin/python3",
            tag,
            "-c",
            "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')",
        ),
        what="asking the stand-in for its Python version",
        timeout=300,
    )
    return out.strip().splitlines()[-1]
