"""The redactor masks every planted kind of secret and leaves harmless values byte-identical."""

from __future__ import annotations

import copy
import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from modelkb.redact import (
    REDACTED,
    is_secret_name,
    looks_like_secret,
    redact_argv,
    redact_mapping,
    redact_text,
)

AWS_KEY_ID = "AKIAQWERTYUIOPASDFGH"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HF_TOKEN = "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH12"
GITHUB_TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJklmnop"
GITHUB_PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
OPENAI_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"
SLACK_TOKEN = "xoxb-1234567890-abcdefghijkl"
PASSWORD = "correct-horse-battery-staple"
DB_SECRET = "s3cr3t-payment-value-9876"
URL_PASSWORD = "pa55w0rd-xyz"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_BODY = "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"
PEM = (
    f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\nVK7MDENGbPxRfiCY\n-----END RSA PRIVATE KEY-----"
)

SHAPED = [
    AWS_KEY_ID,
    AWS_SECRET,
    HF_TOKEN,
    GITHUB_TOKEN,
    GITHUB_PAT,
    OPENAI_KEY,
    SLACK_TOKEN,
    JWT,
    PEM,
    f"https://alice:{URL_PASSWORD}@example.com/org/repo.git",
]
ALL_SECRETS = [
    AWS_KEY_ID,
    AWS_SECRET,
    HF_TOKEN,
    GITHUB_TOKEN,
    OPENAI_KEY,
    PASSWORD,
    DB_SECRET,
    URL_PASSWORD,
    JWT,
    PEM_BODY,
]

SHA256 = "9b2f4c1d0e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
COMMIT = "3f9c2b7e8a1d4c6b9e0f2a3b4c5d6e7f8a9b0c1d"
HARMLESS = [
    SHA256,
    COMMIT,
    COMMIT.upper(),
    "bert-base-uncased",
    "keyboard",
    "monkey",
    "0.001",
    "TestVeryLongCamelCaseFunctionNameNumber1",
    "123e4567-e89b-12d3-a456-426614174000",
    "https://github.com/ada/digits.git",
    "git@github.com:ada/digits.git",
    "sklearn.datasets",
    "s3://bucket/models/model.onnx",
    "task-runner-v2",
]


@pytest.mark.parametrize(
    "name",
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "API_KEY",
        "apikey",
        "apiKey",
        "secret",
        "password",
        "PASSWORD",
        "passwd",
        "credentials",
        "auth",
        "private_key",
        "db.password",
        "api-key",
        "--api-key",
        "MY_SERVICE_PASSWORD",
        "db_secret",
        "client_secret",
        "TF_SERVING_TOKEN",
        "token",
        "WANDB_API_KEY",
        "KAGGLE_KEY",
        "db_pwd",
        "Authorization",
        "dbpassword",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "learning_rate",
        "tokenizer",
        "tokenizer_name",
        "keyboard",
        "monkey",
        "pad_token",
        "eos_token_id",
        "max_new_tokens",
        "token_type_ids",
        "sort_key",
        "key",
        "HF_TOKEN_PATH",
        "PWD",
        "author",
        "auth_type",
        "OMP_NUM_THREADS",
        "TOKENIZERS_PARALLELISM",
        "sha256",
        "commit",
        "monitor",
        "batch_size",
        "",
    ],
)
def test_harmless_names(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize("value", SHAPED)
def test_secret_shapes_are_recognised(value: str) -> None:
    assert looks_like_secret(value)
    assert looks_like_secret(f"pasted here: {value} (oops)")


@pytest.mark.parametrize("value", HARMLESS)
def test_harmless_values_are_not_secrets(value: str) -> None:
    assert not looks_like_secret(value)
    assert redact_text(value) == value


def test_env_dict_is_redacted() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "HF_TOKEN": HF_TOKEN,
        "MY_SERVICE_PASSWORD": PASSWORD,
        "GH": GITHUB_TOKEN,
        "OMP_NUM_THREADS": "4",
        "DATABASE_URL": f"postgres://admin:{URL_PASSWORD}@db.local:5432/runs",
        "CHECKSUM": SHA256,
    }
    out = redact_mapping(env)
    dumped = json.dumps(out)
    for secret in ALL_SECRETS:
        assert secret not in dumped
    assert out["OMP_NUM_THREADS"] == "4"
    assert out["CHECKSUM"] == SHA256
    assert out["DATABASE_URL"] == f"postgres://admin:{REDACTED}@db.local:5432/runs"


def test_nested_params_are_redacted_in_a_copy() -> None:
    params = {
        "learning_rate": 0.001,
        "tokenizer": "bert-base-uncased",
        "pad_token": "<pad>",
        "use_auth_token": True,
        "keyboard": "qwerty",
        "database": {"host": "db.local", "password": PASSWORD, "db_secret": DB_SECRET},
        "hub": [{"token": HF_TOKEN}, f"Bearer {JWT}"],
        "credentials": {"user": "ada", "pem": PEM},
        "notes": f"AWS {AWS_KEY_ID} / {AWS_SECRET}",
        "model_sha256": SHA256,
        "commit": COMMIT,
        "layers": (32, 64),
    }
    before = copy.deepcopy(params)
    out = redact_mapping(params)
    assert params == before
    dumped = json.dumps(out)
    for secret in ALL_SECRETS:
        assert secret not in dumped
    for key in (
        "learning_rate",
        "tokenizer",
        "pad_token",
        "use_auth_token",
        "keyboard",
        "model_sha256",
        "commit",
        "layers",
    ):
        assert out[key] == params[key]
    assert out["database"] == {"host": "db.local", "password": REDACTED, "db_secret": REDACTED}
    assert out["credentials"] == REDACTED
    assert out["notes"] == f"AWS {REDACTED} / {REDACTED}"


CODE = textwrap.dedent(
    f'''\
    import os

    HF_TOKEN = "{HF_TOKEN}"  # committed by mistake
    db_password = "{PASSWORD}"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "{AWS_SECRET}"
    GITHUB = "{GITHUB_TOKEN}"
    config = {{"db_secret": "{DB_SECRET}", "learning_rate": 0.001}}
    token = os.environ.get("HF_TOKEN")
    ranked = sorted(items, key=lambda item: item[1])
    tokenizer = "bert-base-uncased"
    checksum = "{SHA256}"


    def connect(password: str = "{PASSWORD}", url: str = "https://ada:{URL_PASSWORD}@db.local/x"):
        return login(password=password, jwt="{JWT}")
    '''
)
HARMLESS_CODE_LINES = [
    "import os",
    'token = os.environ.get("HF_TOKEN")',
    "ranked = sorted(items, key=lambda item: item[1])",
    'tokenizer = "bert-base-uncased"',
    f'checksum = "{SHA256}"',
    '    return login(password=password, jwt="' + REDACTED + '")',
]


def test_code_text_is_redacted_and_the_rest_kept() -> None:
    out = redact_text(CODE)
    for secret in ALL_SECRETS:
        assert secret not in out
    lines = out.splitlines()
    for line in HARMLESS_CODE_LINES:
        assert line in lines
    assert f'HF_TOKEN = "{REDACTED}"  # committed by mistake' in lines
    assert len(lines) == len(CODE.splitlines())
    assert redact_text(out) == out  # idempotent


def test_config_formats_are_redacted() -> None:
    text = textwrap.dedent(
        f"""\
        # .env
        MY_SERVICE_PASSWORD={PASSWORD}
        export HF_TOKEN={HF_TOKEN} OMP_NUM_THREADS=4
        # yaml
        database:
          password: {PASSWORD}  # from the vault
          db_secret: "{DB_SECRET}"
          host: db.local
        # json
        {{"api-key": "{OPENAI_KEY}", "batch_size": 32}}
        {PEM}
        python train.py --password {PASSWORD} --db.secret={DB_SECRET} --epochs 3
        """
    )
    out = redact_text(text)
    for secret in ALL_SECRETS:
        assert secret not in out
    assert f"export HF_TOKEN={REDACTED} OMP_NUM_THREADS=4" in out
    assert f"  password: {REDACTED}  # from the vault" in out
    assert "  host: db.local" in out
    assert f'{{"api-key": "{REDACTED}", "batch_size": 32}}' in out
    assert f"python train.py --password {REDACTED} --db.secret={REDACTED} --epochs 3" in out


def test_argv_is_redacted() -> None:
    argv = [
        "train.py",
        "--api-key",
        OPENAI_KEY,
        "--token",
        "plain-value",
        f"--password={PASSWORD}",
        "--lr",
        "0.1",
        "--tokenizer",
        "bert-base-uncased",
    ]
    assert redact_argv(argv) == [
        "train.py",
        "--api-key",
        REDACTED,
        "--token",
        REDACTED,
        f"--password={REDACTED}",
        "--lr",
        "0.1",
        "--tokenizer",
        "bert-base-uncased",
    ]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def test_git_diff_of_a_real_repo_is_redacted(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "train.py").write_text("HF_TOKEN = None\nEPOCHS = 3\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-qm", "v1")
    (tmp_path / "train.py").write_text(CODE)
    (tmp_path / "settings.yaml").write_text(f"password: {PASSWORD}\naws_key: {AWS_KEY_ID}\n")
    _git(tmp_path, "add", "settings.yaml")
    diff = _git(tmp_path, "diff", "HEAD")
    assert f'+HF_TOKEN = "{HF_TOKEN}"' in diff
    out = redact_text(diff)
    for secret in ALL_SECRETS:
        assert secret not in out
    assert f'+HF_TOKEN = "{REDACTED}"  # committed by mistake' in out
    assert "-HF_TOKEN = None" in out and "-EPOCHS = 3" in out
    assert f'+checksum = "{SHA256}"' in out
    kept = [
        line
        for line in diff.splitlines()
        if line.startswith(("diff --git", "index ", "@@", "---", "+++"))
    ]
    assert all(line in out.splitlines() for line in kept)
