"""Run context: complete, fast, fault tolerant, allow-listed, and free of secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelkb import context as context_module
from modelkb.context import MAX_DIFF_BYTES, allowed_env, capture_context, capture_git
from modelkb.redact import REDACTED

HF_TOKEN = "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH12"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PASSWORD = "correct-horse-battery-staple"
REMOTE_TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJklmnop"
KEYS = {
    "host",
    "user",
    "os",
    "platform",
    "python",
    "python_implementation",
    "cpu",
    "cpu_count",
    "memory_gb",
    "gpu",
    "command",
    "cwd",
    "pid",
    "git",
    "env",
}


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit, a secret-laden uncommitted change and an untracked file."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "project"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    _git(root, "remote", "add", "origin", f"https://ada:{REMOTE_TOKEN}@github.com/ada/digits.git")
    (root / "train.py").write_text("EPOCHS = 3\n")
    _git(root, "add", "train.py")
    _git(root, "commit", "-qm", "v1")
    (root / "train.py").write_text(
        f'EPOCHS = 5\nHF_TOKEN = "{HF_TOKEN}"\ndb_password = "{PASSWORD}"\n'
    )
    (root / "notes.txt").write_text("untracked\n")
    monkeypatch.chdir(root)
    return root


def test_env_is_allow_listed_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "OMP_NUM_THREADS": "4",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_API_TOKEN": "tf-token-value-1234567890",
        "HF_TOKEN": HF_TOKEN,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "MY_SERVICE_PASSWORD": PASSWORD,
        "HOME": "/home/ada",
        "PATH": "/usr/bin",
        "MODELKB_HOME": f"https://ada:{PASSWORD}@store.local/x",
        "MKL_NUM_THREADS": "1",
    }
    out = allowed_env(env)
    assert out == {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "MKL_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "4",
        "MODELKB_HOME": f"https://ada:{REDACTED}@store.local/x",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    captured = allowed_env()
    assert captured["OMP_NUM_THREADS"] == "3" and "HF_TOKEN" not in captured


def test_capture_context_in_a_dirty_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(sys, "argv", ["train.py", "--hf-token", HF_TOKEN, "--epochs", "5"])
    context, warnings = capture_context()
    assert warnings == []
    assert set(context) >= KEYS
    assert context["cwd"] == str(repo) and context["pid"] == os.getpid()
    assert context["python"].count(".") == 2 and isinstance(context["cpu_count"], int)
    assert context["memory_gb"] is None or context["memory_gb"] > 0
    assert isinstance(context["gpu"], list)
    assert context["command"] == ["train.py", "--hf-token", REDACTED, "--epochs", "5"]
    assert context["env"]["OMP_NUM_THREADS"] == "2"
    git = context["git"]
    assert len(git["commit"]) == 40 and git["branch"] == "main" and git["dirty"] is True
    assert git["remote"] == "https://github.com/ada/digits.git"
    assert git["untracked"] == ["notes.txt"]
    assert "+EPOCHS = 5" in git["diff"] and f'+HF_TOKEN = "{REDACTED}"' in git["diff"]
    dumped = json.dumps(context)
    for secret in (HF_TOKEN, AWS_SECRET, PASSWORD, REMOTE_TOKEN):
        assert secret not in dumped


def test_clean_repo_without_diff(repo: Path) -> None:
    _git(repo, "checkout", "--", "train.py")
    git = capture_git(repo)
    assert git is not None and git["dirty"] is False and git["diff"] == ""
    context, _ = capture_context(cwd=repo, include_git_diff=False)
    assert "diff" not in context["git"]


def test_repo_before_the_first_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    _git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text(f'HF_TOKEN = "{HF_TOKEN}"\n')
    _git(tmp_path, "add", "train.py")
    git = capture_git(tmp_path)
    assert git is not None and git["commit"] is None and git["dirty"] is True
    assert f'+HF_TOKEN = "{REDACTED}"' in git["diff"] and HF_TOKEN not in git["diff"]


def test_large_diff_is_truncated_with_a_marker(repo: Path) -> None:
    (repo / "train.py").write_text("".join(f"line_{i} = {i}\n" for i in range(40_000)))
    git = capture_git(repo)
    assert git is not None and git["diff_truncated"] is True
    assert len(git["diff"].encode()) < MAX_DIFF_BYTES + 200
    assert git["diff"].endswith("...]\n") and "truncated" in git["diff"].splitlines()[-1]


def test_outside_a_repo_or_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert capture_git(tmp_path) is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert capture_git(tmp_path) is None
    context, warnings = capture_context(cwd=tmp_path)
    assert context["git"] is None and warnings == []


def test_a_failing_part_becomes_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> str:
        raise OSError("no /proc here")

    monkeypatch.setattr(context_module, "_cpu_name", broken)
    context, warnings = capture_context(cwd=tmp_path)
    assert context["cpu"] is None and context["python"]
    assert len(warnings) == 1 and "context.cpu" in warnings[0] and "no /proc here" in warnings[0]


def test_gpus_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA A100-SXM4-40GB, 40960'\necho 'Tesla T4, 15360'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    context, warnings = capture_context(cwd=tmp_path)
    assert context["gpu"] == [
        {"name": "NVIDIA A100-SXM4-40GB", "memory_mb": 40960},
        {"name": "Tesla T4", "memory_mb": 15360},
    ]
    smi.write_text("#!/bin/sh\nexit 9\n")
    context, warnings = capture_context(cwd=tmp_path)
    assert context["gpu"] == [] and any("context.gpu" in w for w in warnings)


def test_capture_imports_no_framework(tmp_path: Path) -> None:
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from modelkb.context import capture_context\n"
        "from modelkb.lockfile import installed_distributions\n"
        "capture_context(); installed_distributions()\n"
        "heavy = ['torch', 'tensorflow', 'keras', 'boto3', 'huggingface_hub', 'onnx', 'jsonschema']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
