"""Secrets planted in env, params, notes, code and the git diff appear in no file of the bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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


def _new_repo(repo: Path) -> Path:
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    return repo


def test_no_planted_secret_reaches_any_file(tmp_path: Path) -> None:
    repo = _new_repo(tmp_path / "project")
    script = repo / "train.py"
    script.write_text("print('v1')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-qm", "v1")
    script.write_text(SCRIPT)  # uncommitted: lands in the git diff too
    store = tmp_path / "store"
    env = {
        "PATH": "/usr/bin:/bin",
        "STORE": str(store),
        "HOME": str(tmp_path),
        **SECRETS,
        "OMP_NUM_THREADS": "1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    done = subprocess.run(
        [sys.executable, str(script)], cwd=repo, env=env, capture_output=True, text=True
    )
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


HOSTILE = {  # each value was found verbatim in a bundle, the index, the site or an export
    "dash-leading argv value": "-dash-leading-pw",
    "--pass argv value": "argv-pass-value",
    "empty-user URL": "hunter2pw",
    "DB_PASS env": "db-pass-env-value",
    "SMTP_PASS env": "smtp-pass-env-value",
    "PYTORCH_PASS env": "pytorch-pass-env-value",
    "db_pass param": "db-pass-param-value",
    "triple-quoted code": "tr1ple-quoted-pw",
    "SECRETS dict": "dict-held-pw",
    "auth tuple": "tuple-held-pw",
    "wandb key": "0123456789abcdef0123456789abcdef01234567",
    "gitlab token": "glpat-AbCdEfGhIjKlMnOpQrSt12",
    "SAS signature": "Zm9vYmFyYmF6cXV4MTIz%2Bx%3D",
    "YAML block in the diff": "yaml-block-pw",
}

HOSTILE_SCRIPT = textwrap.dedent(
    '''
    import os, sys
    from modelkb.experiment import Experiment

    PASSWORD = """tr1ple-quoted-pw"""
    SECRETS = {"db": "dict-held-pw"}
    CACHE = "redis://:hunter2pw@cache.local:6379/0"
    GITLAB = "glpat-AbCdEfGhIjKlMnOpQrSt12"

    def fetch(requests, url):
        return requests.get(url, auth=("alice", "tuple-held-pw"))

    def login(wandb):
        wandb.login(key="0123456789abcdef0123456789abcdef01234567")

    with Experiment("Hostile", "eve", seed=1, store=os.environ["STORE"]) as exp:
        exp.log_params(epochs=1, db_pass="db-pass-param-value", cache=CACHE)
        exp.set_dataset(location="https://acct.blob.core.windows.net/c/d.csv?sv=2022-11-02&sig=Zm9vYmFyYmF6cXV4MTIz%2Bx%3D")
        exp.log_metrics({"loss": 0.5}, epoch=0)
    '''
)


def test_no_hostile_secret_reaches_the_bundle_index_or_site(tmp_path: Path) -> None:
    import zipfile

    from modelkb.cli import main

    repo = _new_repo(tmp_path / "project")
    (repo / "config.yaml").write_text("smtp_host: mail.local\n")
    _git(repo, "add", "config.yaml")
    _git(repo, "commit", "-qm", "v1")
    (repo / "config.yaml").write_text(
        "smtp_host: mail.local\nsmtp_password: |\n  yaml-block-pw\nport: 25\n"
    )
    script = repo / "train.py"
    script.write_text(HOSTILE_SCRIPT)
    store = tmp_path / "store"
    env = {
        "PATH": "/usr/bin:/bin",
        "STORE": str(store),
        "HOME": str(tmp_path),
        "DB_PASS": "db-pass-env-value",
        "SMTP_PASS": "smtp-pass-env-value",
        "PYTORCH_PASS": "pytorch-pass-env-value",
        "OMP_NUM_THREADS": "1",
    }
    argv = [
        sys.executable,
        str(script),
        "--password",
        "-dash-leading-pw",
        "--pass",
        "argv-pass-value",
    ]
    done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    site = tmp_path / "site"
    try:
        main(["build", "--store", str(store), "--out", str(site)])
    except SystemExit as exit_info:
        assert exit_info.code in (0, None)
    blobs = [
        (str(p), p.read_bytes()) for root in (store, site) for p in root.rglob("*") if p.is_file()
    ]
    for name, _ in list(blobs):
        if name.endswith(".zip"):
            with zipfile.ZipFile(name) as archive:
                blobs += [
                    (f"{name}!{member}", archive.read(member)) for member in archive.namelist()
                ]
    assert any(name.endswith("metadata.json") for name, _ in blobs)
    leaks = [
        (case, name)
        for name, data in blobs
        for case, value in HOSTILE.items()
        if value.encode() in data
    ]
    assert leaks == []


NOTEBOOK_CELLS = [
    'DB_PASS = "notebook-db-pass-value"\nPASSWORD = """notebook-triple-quoted-pw"""',
    'SECRETS = {"db": "notebook-dict-secret"}\nauth = ("user", "notebook-tuple-pw")',
    'token = "glpat-notebookAbCdEf1234567890"\nurl = "redis://:notebook-url-pw@cache:6379/0"',
    "import os\nfrom modelkb import Experiment\n"
    'with Experiment("Notebook", "u", store=os.environ["STORE"]) as exp:\n'
    '    exp.log_metrics({"loss": 0.5}, epoch=0)',
]


def test_notebook_cell_history_is_redacted(tmp_path: Path) -> None:
    pytest.importorskip("IPython")
    store = tmp_path / "store"
    program = (
        "import json, sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "for cell in json.loads(sys.argv[1]):\n"
        "    assert shell.run_cell(cell, store_history=True).success  # as Jupyter runs cells\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, json.dumps(NOTEBOOK_CELLS)],
        cwd=tmp_path,
        env={**os.environ, "STORE": str(store)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (cells,) = store.rglob("notebook_cells.py")  # the run's code is the notebook's history
    text = cells.read_text(encoding="utf-8")
    assert "DB_PASS" in text and "exp.log_metrics" in text
    everything = "\n".join(
        p.read_text(encoding="utf-8", errors="replace") for p in store.rglob("*") if p.is_file()
    )
    leaked = [
        v
        for v in (
            "notebook-db-pass-value",
            "notebook-triple-quoted-pw",
            "notebook-dict-secret",
            "notebook-tuple-pw",
            "glpat-notebookAbCdEf1234567890",
            "notebook-url-pw",
        )
        if v in everything
    ]
    assert not leaked
