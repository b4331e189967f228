"""The hub's catalog builder image: ModelKB's own wheel plus the catalog's dependencies, COPY-only.

It is built the way the inference image is (:mod:`modelkb.serverless.container`): the Python
dependencies are vendored on the host for the Lambda platform, so the Dockerfile only copies files,
and ``buildah``/``podman``/``docker`` builds it with no network. The image runs the same build code as
``modelkb build`` (pinned to the versions installed here) with
:func:`modelkb.serverless.hub_builder.lambda_handler` as its command.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
import urllib.parse
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

import modelkb
from modelkb.errors import MissingExtraError, PackageError
from modelkb.serverless.container import Engine, build_image, run_tool, vendor_dependencies
from modelkb.serverless.render import BASE_IMAGE, PLATFORMS, PYTHON_VERSION, template_environment

logger = logging.getLogger(__name__)

BUILDER_HANDLER = "modelkb.serverless.hub_builder.lambda_handler"
# What the catalog build and the publish need beyond ModelKB's own dependencies (the wheel's).
BUILDER_PACKAGES = {"mkdocs": "site", "mkdocs-material": "site", "netron": "site", "boto3": "s3"}


@dataclass
class BuilderContext:
    """A rendered build context for the catalog builder image.

    Attributes:
        path: The folder (``Dockerfile``, ``requirements.txt``, ``wheels/``, later ``deps/``).
        wheel: ModelKB's wheel inside it.
        pins: The pinned requirements written to ``requirements.txt``.
    """

    path: Path
    wheel: Path
    pins: dict[str, str]


def builder_pins() -> dict[str, str]:
    """The installed versions of the catalog's dependencies (the image builds what this host builds).

    Raises:
        MissingExtraError: One is not installed (names the extra to install).
    """
    pins = {}
    for name, extra in BUILDER_PACKAGES.items():
        try:
            pins[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError as err:
            raise MissingExtraError(name, extra) from err
    return pins


def source_tree() -> Path | None:
    """The ModelKB checkout this code runs from or was installed from (``pip install .``, as
    PEP 610's ``direct_url.json`` records it), or ``None`` for a wheel from an index."""
    candidates = [Path(modelkb.__file__).resolve().parents[2]]
    try:
        origin = json.loads(
            importlib_metadata.distribution("modelkb").read_text("direct_url.json") or "{}"
        )
    except (importlib_metadata.PackageNotFoundError, ValueError):
        origin = {}
    url = origin.get("url") if isinstance(origin, dict) else None
    if isinstance(url, str) and url.startswith("file://") and "dir_info" in origin:
        candidates.append(Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)))
    for root in candidates:
        project = root / "pyproject.toml"
        if project.is_file() and 'name = "modelkb"' in project.read_text(encoding="utf-8"):
            return root
    return None


def modelkb_wheel(out: Path, *, python: str = sys.executable) -> Path:
    """ModelKB's wheel in ``out``: built from the checkout, else the installed version from the index."""
    out.mkdir(parents=True, exist_ok=True)
    root = source_tree()
    if root is not None:
        command = [python, "-m", "pip", "wheel", "--no-deps", "-q"]
        if python == sys.executable and importlib.util.find_spec("setuptools") is not None:
            command.append("--no-build-isolation")  # no index needed (else pip fetches setuptools)
        run_tool(
            [*command, "-w", str(out), str(root)],
            what="building the modelkb wheel",
            timeout=900,
            cwd=out,
        )
    else:
        version = importlib_metadata.version("modelkb")
        download = [python, "-m", "pip", "download", "--no-deps", "-q", "--only-binary=:all:"]
        run_tool(
            [*download, "-d", str(out), f"modelkb=={version}"],
            what=f"downloading the modelkb {version} wheel",
            timeout=900,
        )
    wheels = sorted(out.glob("modelkb-*.whl"), key=os.path.getmtime)
    if not wheels:
        raise PackageError(f"no modelkb wheel was written to {out}")
    return wheels[-1]


def render_builder_context(
    out: str | os.PathLike[str], *, base_image: str = BASE_IMAGE, python: str = sys.executable
) -> BuilderContext:
    """Write the builder image's context: ``Dockerfile``, pinned ``requirements.txt``, the wheel."""
    folder = Path(out)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    pins = builder_pins()
    wheel = modelkb_wheel(folder / "wheels", python=python)
    env = template_environment()
    values = {
        "modelkb_version": modelkb.__version__,
        "base_image": base_image,
        "python_version": PYTHON_VERSION,
        "platform_flags": " ".join(f"--platform {p}" for p in PLATFORMS),
        "wheel": wheel.relative_to(folder).as_posix(),
        "handler": BUILDER_HANDLER,
        "pins": pins,
    }
    for name in ("Dockerfile", "requirements.txt"):
        text = env.get_template(f"hub/{name}.j2").render(**values)
        (folder / name).write_text(text, encoding="utf-8")
    return BuilderContext(folder, wheel, pins)


def build_builder_image(
    context: BuilderContext,
    tag: str,
    *,
    engine: Engine | None = None,
    base_image: str | None = None,
    python_version: str = PYTHON_VERSION,
    python: str = sys.executable,
) -> str:
    """Vendor the builder's dependencies (and ModelKB) into ``deps/`` and build the image."""
    vendor_dependencies(
        context.path, python_version=python_version, python=python, extra=(str(context.wheel),)
    )
    return build_image(context.path, tag, engine=engine, base_image=base_image)
