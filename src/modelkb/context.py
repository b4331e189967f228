"""The run's context: host, OS, Python, hardware, git state and an allow-listed environment.

Every part is optional: a part that cannot be read becomes ``None`` (or ``[]``/``{}``) and a line
in the returned warnings, so a broken ``/proc`` or a hung ``git`` never costs the run. Nothing here
imports a framework; GPUs come from ``nvidia-smi``, or from ``torch`` only if the user's code has
already imported it and initialised CUDA.
"""

from __future__ import annotations

import getpass
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from modelkb.redact import is_secret_name, redact_argv, redact_text

logger = logging.getLogger(__name__)

MAX_DIFF_BYTES = 200 * 1024
MAX_UNTRACKED = 200
GIT_TIMEOUT_S = 2.0
NVIDIA_SMI_TIMEOUT_S = 3.0

# Whole names only: a prefix such as ``PYTORCH_`` also admitted ``PYTORCH_PASS``.
ENV_NAMES = frozenset(
    {
        "CUDA_VISIBLE_DEVICES",
        "CUDA_DEVICE_ORDER",
        "CUDA_LAUNCH_BLOCKING",
        "CUBLAS_WORKSPACE_CONFIG",
        "KERAS_BACKEND",
        "PYTHONHASHSEED",
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "TOKENIZERS_PARALLELISM",
        "XLA_FLAGS",
        "LANG",
        "LC_ALL",
        "TZ",
        "VIRTUAL_ENV",
        "CONDA_DEFAULT_ENV",
        # thread pools
        "OMP_NUM_THREADS",
        "OMP_PROC_BIND",
        "OMP_PLACES",
        "OMP_DYNAMIC",
        "OMP_SCHEDULE",
        "OMP_WAIT_POLICY",
        "MKL_NUM_THREADS",
        "MKL_DYNAMIC",
        "MKL_CBWR",
        "MKL_THREADING_LAYER",
        "OPENBLAS_NUM_THREADS",
        "OPENBLAS_CORETYPE",
        # TensorFlow
        "TF_CPP_MIN_LOG_LEVEL",
        "TF_CPP_MAX_VLOG_LEVEL",
        "TF_ENABLE_ONEDNN_OPTS",
        "TF_DETERMINISTIC_OPS",
        "TF_CUDNN_DETERMINISTIC",
        "TF_FORCE_GPU_ALLOW_GROWTH",
        "TF_GPU_ALLOCATOR",
        "TF_XLA_FLAGS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
        "TF_USE_LEGACY_KERAS",
        "TF_FORCE_UNIFIED_MEMORY",
        "TF_GPU_THREAD_MODE",
        "TF_ENABLE_AUTO_MIXED_PRECISION",
        # PyTorch
        "PYTORCH_CUDA_ALLOC_CONF",
        "PYTORCH_ENABLE_MPS_FALLBACK",
        "PYTORCH_MPS_HIGH_WATERMARK_RATIO",
        "PYTORCH_NO_CUDA_MEMORY_CACHING",
        "PYTORCH_JIT",
        "TORCH_DETERMINISTIC",
        "TORCH_USE_CUDA_DSA",
        "TORCH_CUDNN_V8_API_ENABLED",
        "TORCH_NUM_THREADS",
        "TORCH_LOGS",
        "TORCHDYNAMO_DISABLE",
        "TORCHINDUCTOR_CACHE_DIR",
        "TORCH_HOME",
        # ModelKB's own (the store, reproduction links, seed override)
        "MODELKB_HOME",
        "MODELKB_SEED_OVERRIDE",
        "MODELKB_REPRODUCES",
        "MODELKB_GROUP",
        "MODELKB_INTRA_OP_THREADS",
    }
)
# What ``git diff`` compares against before the first commit.
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def allowed_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed, redacted subset of the environment.

    Only the whole names in :data:`ENV_NAMES` are kept (never a prefix match), a secret-sounding
    name is dropped anyway, and every kept value still passes through
    :func:`~modelkb.redact.redact_text`.

    Args:
        environ: The variables to filter (default ``os.environ``).

    Returns:
        The kept variables, sorted by name.
    """
    env = os.environ if environ is None else environ
    return {
        name: redact_text(value)
        for name, value in sorted(env.items())
        if name in ENV_NAMES and not is_secret_name(name)
    }


# -- git ------------------------------------------------------------------------------------------
def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    return subprocess.run(
        ["git", "-C", str(cwd), *args],
        capture_output=True,
        env=env,
        timeout=GIT_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def strip_url_credentials(url: str) -> str:
    """Drop ``user[:password]@`` from a URL (``https://tok@host/x`` -> ``https://host/x``).

    scp-style remotes (``git@github.com:org/repo.git``) carry no secret and are kept.
    """
    if "://" not in url:
        return redact_text(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return redact_text(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _truncate(text: str, limit: int) -> tuple[str, bool]:
    """Cut at a line boundary so no secret is split into an unrecognisable stub."""
    if len(text.encode("utf-8")) <= limit:
        return text, False
    head = text.encode("utf-8")[:limit].decode("utf-8", "ignore")
    return head[: head.rfind("\n") + 1], True


def capture_git(
    path: str | os.PathLike[str] | None = None,
    *,
    include_diff: bool = True,
    warnings: list[str] | None = None,
) -> dict[str, Any] | None:
    """The git state of the working tree at ``path``.

    Args:
        path: Any folder inside the repository (default: the current directory).
        include_diff: Also record the redacted working-tree diff against ``HEAD`` (staged and
            unstaged changes of tracked files).
        warnings: Problems met along the way are appended here.

    Returns:
        ``{commit, branch, dirty, remote, diff, diff_truncated, untracked}``: ``commit`` is
        ``None`` before the first commit, ``branch`` is ``None`` on a detached HEAD, ``dirty``
        counts tracked files only, ``remote`` is the ``origin`` URL without credentials, ``diff``
        is redacted and cut to :data:`MAX_DIFF_BYTES` with a marker, ``untracked`` lists at most
        :data:`MAX_UNTRACKED` names. ``None`` outside a repository or without a ``git`` binary.
    """
    problems = warnings if warnings is not None else []
    cwd = Path(path) if path is not None else Path.cwd()
    if shutil.which("git") is None:
        logger.debug("no git binary on PATH; git state not recorded")
        return None
    try:
        status = _git(cwd, "status", "--porcelain=v2", "--branch", "-z")
    except (OSError, subprocess.SubprocessError) as err:
        problems.append(f"git status failed in {cwd}: {err}")
        return None
    if status.returncode != 0:
        logger.debug("not a git repository: %s", cwd)
        return None
    info: dict[str, Any] = {
        "commit": None,
        "branch": None,
        "dirty": False,
        "remote": None,
        "untracked": [],
    }
    records = iter(status.stdout.decode("utf-8", "replace").split("\0"))
    for record in records:
        if record.startswith("# branch.oid ") and record[13:] != "(initial)":
            info["commit"] = record[13:]
        elif record.startswith("# branch.head ") and record[14:] != "(detached)":
            info["branch"] = record[14:]
        elif record.startswith(("1 ", "2 ", "u ")):
            info["dirty"] = True
            if record.startswith("2 "):
                next(records, None)  # a rename's original path follows as its own record
        elif record.startswith("? ") and len(info["untracked"]) < MAX_UNTRACKED:
            info["untracked"].append(record[2:])
    try:
        remote = _git(cwd, "config", "--get", "remote.origin.url")
        url = remote.stdout.decode("utf-8", "replace").strip()
        info["remote"] = strip_url_credentials(url) if remote.returncode == 0 and url else None
    except (OSError, subprocess.SubprocessError) as err:
        problems.append(f"git remote not read: {err}")
    if include_diff:
        info["diff"], info["diff_truncated"] = _diff(cwd, info, problems)
    return info


def _diff(cwd: Path, info: Mapping[str, Any], problems: list[str]) -> tuple[str | None, bool]:
    if not info["dirty"]:
        return "", False
    try:
        done = _git(
            cwd,
            "diff",
            info["commit"] or _EMPTY_TREE,
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--",
        )
    except (OSError, subprocess.SubprocessError) as err:
        problems.append(f"git diff not recorded: {err}")
        return None, False
    if done.returncode != 0:
        problems.append(f"git diff not recorded: {done.stderr.decode('utf-8', 'replace').strip()}")
        return None, False
    raw = done.stdout.decode("utf-8", "replace")
    # Cut before redacting (speed on huge diffs), then again after (a redaction can grow text).
    text, cut = _truncate(raw, MAX_DIFF_BYTES + 4096)
    text, cut_again = _truncate(redact_text(text), MAX_DIFF_BYTES)
    if cut or cut_again:
        text += f"[... diff truncated by modelkb: {len(done.stdout)} bytes in total ...]\n"
    return text, cut or cut_again


# -- host -----------------------------------------------------------------------------------------
def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None


def _cpu_name() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                known = key.strip() in ("model name", "Model", "Hardware", "cpu model")
                if known and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (AttributeError, ValueError, OSError):
        return None


def _gpus() -> list[dict[str, Any]]:
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        query = [smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]
        done = subprocess.run(
            query,
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        gpus = []
        for line in done.stdout.splitlines():
            name, _, memory = line.rpartition(",")
            if name.strip():
                mb = memory.strip()
                gpus.append({"name": name.strip(), "memory_mb": int(mb) if mb.isdigit() else None})
        return gpus
    torch = sys.modules.get("torch")  # never imported here: only asked when the user already did
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_initialized():
        return [
            {
                "name": cuda.get_device_name(i),
                "memory_mb": cuda.get_device_properties(i).total_memory // 2**20,
            }
            for i in range(cuda.device_count())
        ]
    return []


def capture_context(
    *, cwd: str | os.PathLike[str] | None = None, include_git_diff: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """Describe where and how the run happens, for the bundle's ``context`` section.

    Args:
        cwd: The working directory to report and to read git state from (default: the current one).
        include_git_diff: Record the redacted diff of uncommitted changes under ``git.diff``.

    Returns:
        ``(context, warnings)``: the ``context`` dict (``host``, ``user``, ``os``, ``platform``,
        ``python``, ``python_implementation``, ``cpu``, ``cpu_count``, ``memory_gb``, ``gpu``,
        ``command``, ``cwd``, ``pid``, ``git``, ``env``) and one message per part that could not be
        read; such a part is ``None`` (``[]`` for ``gpu`` and ``command``, ``{}`` for ``env``).
    """
    warnings: list[str] = []
    where = Path(cwd) if cwd is not None else None
    parts: dict[str, tuple[Callable[[], Any], Any]] = {
        "host": (socket.gethostname, None),
        "user": (_user, None),
        "os": (lambda: f"{platform.system()} {platform.release()}".strip(), None),
        "platform": (platform.platform, None),
        "python": (platform.python_version, None),
        "python_implementation": (platform.python_implementation, None),
        "cpu": (_cpu_name, None),
        "cpu_count": (os.cpu_count, None),
        "memory_gb": (_memory_gb, None),
        "gpu": (_gpus, []),
        "command": (lambda: redact_argv(sys.argv), []),
        "cwd": (lambda: str(where if where is not None else Path.cwd()), None),
        "pid": (os.getpid, None),
        "git": (lambda: capture_git(where, include_diff=include_git_diff, warnings=warnings), None),
        "env": (allowed_env, {}),
    }
    context: dict[str, Any] = {}
    for name, (read, fallback) in parts.items():
        try:
            context[name] = read()
        except Exception as err:
            logger.debug("context part %s failed", name, exc_info=True)
            context[name] = fallback
            warnings.append(f"context.{name} not captured: {type(err).__name__}: {err}")
    return context, warnings
