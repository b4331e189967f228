"""Secrets planted in env, params, notes, code and the git diff appear in no file of the bundle."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAQWERTYUIOPASDFGH",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
    "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH12",
    "MY_SERVICE_PASSWORD": "correct-horse-battery-staple",
    "PAYMENT_SECRET": "s3cr3t-payment-value-9876",
    "OPENAI_API_KEY": "sk-proj-abcdefghijklmnopqrstuvwxyz123456",
    "TF_SERVING_TOKEN": "tf-token-value-1234567890",
}

SCRIPT = textwrap.dedent(
    """
    import os
    from modelkb.experiment import Experiment

    HF_TOKEN = "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH12"  # committed by mistake
    db_password = "correct-horse-battery-staple"

    with Experiment("Secrets", "eve", seed=1, store=os.environ["STORE"],
                    notes="token hf_abcdefghijklmnopqrstuvwxyzABCDEFGH12 pasted here") as exp:
        exp.log_params(epochs=1, api_key="sk-proj-abcdefghijklmnopqrstuvwxyz123456",
                       database={"password": "correct-horse-battery-staple", "host": "db.local"},
                       aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY")
        exp.log_metrics({"loss": 0.5}, epoch=0)
    """
)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_no_planted_secret_reaches_any_file(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    script = repo / "train.py"
    script.write_text("print('v1')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-qm", "v1")
    script.write_text(SCRIPT)  # uncommitted: lands in the git diff too
    store = tmp_path / "store"
    env = {"PATH": "/usr/bin:/bin", "STORE": str(store), "HOME": str(tmp_path), **SECRETS,
           "OMP_NUM_THREADS": "1", "AWS_DEFAULT_REGION": "eu-west-1"}
    done = subprocess.run([sys.executable, str(script)], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    bundle = next(store.glob("secrets/*"))
    files = [p for p in store.rglob("*") if p.is_file()]
    assert (bundle / "code" / "train.py").exists()
    meta_text = (bundle / "metadata.json").read_text()
    assert '"dirty": true' in meta_text and "git" in meta_text
    assert "OMP_NUM_THREADS" in meta_text  # allow-listed env still captured
    for path in files:
        data = path.read_bytes()
        for name, value in SECRETS.items():
            assert value.encode() not in data, f"{name} leaked into {path.relative_to(store)}"
