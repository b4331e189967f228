"""The run's context: host, OS, Python, hardware, git state and an allow-listed environment."""

from __future__ import annotations

import getpass
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from .redact import redact_mapping, redact_text

MAX_DIFF_BYTES = 200_000
MAX_UNTRACKED = 200

_ENV_NAMES = {
    "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "KERAS_BACKEND", "PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG",
    "HF_HUB_OFFLINE", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "CONDA_DEFAULT_ENV", "TF_CPP_MIN_LOG_LEVEL",
    "TF_DETERMINISTIC_OPS", "TF_ENABLE_ONEDNN_OPTS", "AWS_DEFAULT_REGION", "AWS_REGION", "SLURM_JOB_ID",
}
_ENV_PREFIXES = ("MKL_", "OPENBLAS_", "TF_", "PYTORCH_", "TORCH_", "NCCL_", "MODELKB_", "XLA_")


def allowed_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed environment variables, secrets redacted even among those."""
    from .redact import REDACTED, is_secret_name, looks_like_secret

    env = os.environ if environ is None else environ
    out = {}
    for name, value in env.items():
        if name in _ENV_NAMES or name.startswith(_ENV_PREFIXES):
            out[name] = REDACTED if is_secret_name(name) or looks_like_secret(value) else value
    return dict(sorted(out.items()))


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=3,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def capture_git(path: str | Path | None = None) -> dict[str, Any] | None:
    """Commit, branch, dirty flag, remote (credentials stripped), redacted diff; None outside a repo."""
    if shutil.which("git") is None:
        return None
    cwd = Path(path or Path.cwd())
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return None
    status = _git(["status", "--porcelain"], cwd) or ""
    diff = _git(["diff", "HEAD"], cwd) or ""
    truncated = len(diff.encode()) > MAX_DIFF_BYTES
    if truncated:
        diff = diff.encode()[:MAX_DIFF_BYTES].decode("utf-8", "ignore") + "\n[... diff truncated by modelkb ...]\n"
    remote = (_git(["remote", "get-url", "origin"], cwd) or "").strip() or None
    if remote:
        remote = re.sub(r"://[^@/]+@", "://", remote)
    untracked = [line[3:] for line in status.splitlines() if line.startswith("??")]
    return {
        "commit": commit.strip(),
        "branch": (_git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or "").strip() or None,
        "dirty": bool(status.strip()),
        "remote": remote,
        "diff": redact_text(diff),
        "diff_truncated": truncated,
        "untracked": untracked[:MAX_UNTRACKED],
    }


def _cpu_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _gpus() -> list[dict[str, Any]]:
    gpus: list[dict[str, Any]] = []
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            for i in range(torch.cuda.device_count()):
                gpus.append({"name": torch.cuda.get_device_name(i), "source": "torch"})
            return gpus
        except Exception:  # noqa: BLE001 - a broken CUDA setup is not our failure
            pass
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=3).stdout
            gpus = [{"name": n.strip(), "memory": m.strip()} for n, m in (l.split(",", 1) for l in out.splitlines() if "," in l)]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return gpus


def capture_context(*, cwd: str | Path | None = None, include_git_diff: bool = True) -> tuple[dict[str, Any], list[str]]:
    """Everything about where the run happens; every part fails soft.

    Returns:
        The ``context`` section and a list of problems met (each also means a missing part).
    """
    problems: list[str] = []
    context: dict[str, Any] = {}
    parts = {
        "host": socket.gethostname,
        "user": getpass.getuser,
        "os": lambda: f"{platform.system()} {platform.release()}",
        "platform": platform.platform,
        "python": platform.python_version,
        "python_implementation": platform.python_implementation,
        "cpu": _cpu_name,
        "cpu_count": os.cpu_count,
        "memory_gb": _memory_gb,
        "gpu": _gpus,
        "command": lambda: redact_mapping([redact_text(a) for a in sys.argv]),
        "cwd": lambda: str(Path(cwd or Path.cwd())),
        "pid": os.getpid,
        "env": allowed_env,
        "git": lambda: capture_git(cwd),
    }
    for name, read in parts.items():
        try:
            context[name] = read()
        except Exception as err:  # noqa: BLE001 - one missing part must not lose the others
            context[name] = None
            problems.append(f"context.{name} not captured: {err}")
    if not include_git_diff and context.get("git"):
        context["git"].pop("diff", None)
    return context, problems
