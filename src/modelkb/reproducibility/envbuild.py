"""A virtual environment rebuilt from a bundle's ``requirements.lock``.

Every pinned distribution is installed exactly (``pip install --no-deps``: the lockfile is the whole
closure); a distribution pip cannot install is *reported*, never replaced by another version.
Local/development distributions (ModelKB itself, editable or directory installs) are skipped and
ModelKB is copied from the running installation instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from modelkb.lockfile import normalize_name
from modelkb.reproducibility import ReproductionError

logger = logging.getLogger(__name__)

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")
_ALWAYS_LOCAL = frozenset({"modelkb"})
_PIP_TIMEOUT_S = 1800


@dataclass
class EnvBuildReport:
    """What building the environment did.

    Attributes:
        path: The virtual environment folder.
        python: Its interpreter.
        installed: ``name==version`` pins installed as locked.
        failed: ``{"requirement", "reason"}`` for every pin pip could not install.
        skipped: ``{"requirement", "reason"}`` for local/development distributions not taken from an index.
        modelkb_source: Where ModelKB was copied from.
    """

    path: str
    python: str
    installed: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    modelkb_source: str | None = None

    @property
    def complete(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "python": self.python,
            "installed": list(self.installed),
            "failed": list(self.failed),
            "skipped": list(self.skipped),
            "modelkb_source": self.modelkb_source,
            "complete": self.complete,
        }

    def summary(self) -> str:
        text = f"locked environment {self.path}: {len(self.installed)} installed as locked"
        if self.skipped:
            text += f", {len(self.skipped)} local package(s) skipped"
        if self.failed:
            names = ", ".join(f["requirement"] for f in self.failed)
            text += (
                f", {len(self.failed)} NOT installable ({names}); nothing was substituted for them"
            )
        return text + "."


def read_pins(lockfile: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(name, version)`` for every ``name==version`` line (comments and other lines ignored)."""
    pins = []
    for line in Path(lockfile).read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins.append((match.group(1), match.group(2)))
    return pins


def local_distributions() -> dict[str, str]:
    """Installed distributions of the running interpreter that come from a local folder or file.

    Returns:
        Normalised name -> where it was installed from (``direct_url.json`` per PEP 610).
    """
    local: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name") if dist.metadata else None
        text = dist.read_text("direct_url.json")
        if not name or not text:
            continue
        try:
            info = json.loads(text)
        except json.JSONDecodeError:
            continue
        url = str(info.get("url", ""))
        if "dir_info" in info or url.startswith("file:"):
            local[normalize_name(name)] = url
    return local


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _site_packages(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip())


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    logger.info("running %s", " ".join(command))
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=_PIP_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _last_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (
        errors[0] if errors else lines[-1] if lines else f"pip exited with status {done.returncode}"
    )[:300]


def copy_running_modelkb(site_packages: Path) -> str:
    """Copy the running ``modelkb`` package (symlinks resolved) into ``site_packages``; returns its source."""
    import modelkb

    source = Path(modelkb.__file__).parent  # a development link farm is copied through its links
    shutil.copytree(
        source,
        site_packages / "modelkb",
        symlinks=False,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules", ".*"),
    )
    return str(source)


def build_locked_env(
    lockfile: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    python: str | None = None,
    pip_args: list[str] | None = None,
    install_modelkb: bool = True,
) -> EnvBuildReport:
    """Create a virtual environment at ``dest`` with exactly the lockfile's distributions.

    Args:
        lockfile: A ``requirements.lock``.
        dest: Folder of the new environment (created; reused if it already is one).
        python: Interpreter that creates the venv (default: the running one).
        pip_args: Extra ``pip install`` arguments (``["--index-url", ...]``).
        install_modelkb: Copy the running ModelKB into the environment.

    Returns:
        The report; ``failed`` lists every pin that could not be installed.

    Raises:
        ReproductionError: The virtual environment itself cannot be created.
    """
    venv = Path(dest).resolve()
    venv_python = _venv_python(venv)
    if not venv_python.exists():
        done = subprocess.run(
            [python or sys.executable, "-m", "venv", str(venv)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ReproductionError(
                f"cannot create a virtual environment at {venv}: {_last_error(done)}",
                hint="Install the venv module (Debian: apt-get install python3-venv).",
            )
    report = EnvBuildReport(path=str(venv), python=str(venv_python))
    local = local_distributions()
    wanted: list[str] = []
    for name, version in read_pins(lockfile):
        key = normalize_name(name)
        requirement = f"{name}=={version}"
        if key in _ALWAYS_LOCAL:
            report.skipped.append(
                {
                    "requirement": requirement,
                    "reason": "ModelKB is copied from the running installation",
                }
            )
        elif key in local:
            report.skipped.append(
                {"requirement": requirement, "reason": f"local/development install ({local[key]})"}
            )
        else:
            wanted.append(requirement)
    extra = list(pip_args or [])
    if wanted:
        listing = venv / "modelkb-locked-requirements.txt"
        listing.write_text("\n".join(wanted) + "\n", encoding="utf-8")
        done = _pip(venv_python, "install", "--no-deps", *extra, "-r", str(listing))
        if done.returncode == 0:
            report.installed.extend(wanted)
        else:  # find out which pins fail: one at a time, so the rest still gets installed
            logger.info(
                "installing the whole lockfile failed (%s); retrying pin by pin", _last_error(done)
            )
            for requirement in wanted:
                single = _pip(venv_python, "install", "--no-deps", *extra, requirement)
                if single.returncode == 0:
                    report.installed.append(requirement)
                else:
                    report.failed.append(
                        {"requirement": requirement, "reason": _last_error(single)}
                    )
    if install_modelkb:
        report.modelkb_source = copy_running_modelkb(_site_packages(venv_python))
    for failure in report.failed:
        logger.warning("not installable: %s (%s)", failure["requirement"], failure["reason"])
    return report


def default_env_dir(store_root: Path, experiment_id: str) -> Path:
    """Where ``modelkb reproduce --env locked`` keeps the environment of a run (reused next time)."""
    return store_root / ".modelkb" / "envs" / experiment_id


__all__ = [
    "EnvBuildReport",
    "build_locked_env",
    "default_env_dir",
    "local_distributions",
    "read_pins",
]
