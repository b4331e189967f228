"""Secrets that got past the redactor when probed with hostile input: each case planted exactly."""

from __future__ import annotations

import pytest

from modelkb.context import allowed_env as environment
from modelkb.redact import REDACTED, is_secret_name, redact_argv, redact_mapping, redact_text

HEX40 = "0123456789abcdef0123456789abcdef01234567"

TEXT_CASES = {
    "url with an empty user": ("cache = 'redis://:hunter2pw@cache.local:6379/0'", "hunter2pw"),
    "triple-quoted password": ('PASSWORD = """tr1ple-quoted-pw"""', "tr1ple-quoted-pw"),
    "triple single quotes": ("db_password = '''tr1ple-single-pw'''", "tr1ple-single-pw"),
    "dict under a secret name": (
        'SECRETS = {"db": "dict-held-pw", "smtp": "other-held-pw"}',
        "dict-held-pw",
    ),
    "second dict value": (
        'SECRETS = {"db": "dict-held-pw", "smtp": "other-held-pw"}',
        "other-held-pw",
    ),
    "auth tuple": ('requests.get(url, auth=("alice", "tuple-held-pw"))', "tuple-held-pw"),
    "wandb login key": (f'wandb.login(key="{HEX40}")', HEX40),
    "gitlab token": (
        "token glpat-AbCdEfGhIjKlMnOpQrSt12 in a note",
        "glpat-AbCdEfGhIjKlMnOpQrSt12",
    ),
    "azure sas signature": (
        "https://acct.blob.core.windows.net/c/d.csv?sv=2022-11-02&sig=Zm9vYmFyYmF6cXV4MTIz%2Bx%3D",
        "Zm9vYmFyYmF6cXV4MTIz%2Bx%3D",
    ),
    "yaml block scalar": ("+smtp_password: |\n+  yaml-block-pw\n+other: 1\n", "yaml-block-pw"),
    "yaml folded scalar": (
        "db:\n  password: >-\n    folded-block-pw\n  host: x\n",
        "folded-block-pw",
    ),
    "DB_PASS assignment": ("DB_PASS=plain-pass-value", "plain-pass-value"),
    "SMTP_PASS export": ("export SMTP_PASS='smtp-pass-value'", "smtp-pass-value"),
    "pass flag in text": ("python train.py --pass flag-pass-value", "flag-pass-value"),
    "dash value flag in text": ("python train.py --password -dash-leading-pw", "-dash-leading-pw"),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_planted_secret_is_redacted_from_text(case: str) -> None:
    text, secret = TEXT_CASES[case]
    cleaned = redact_text(text)
    assert secret not in cleaned, cleaned
    assert REDACTED in cleaned


def test_yaml_block_redaction_keeps_the_next_key() -> None:
    cleaned = redact_text("+smtp_password: |\n+  yaml-block-pw\n+other: 1\n")
    assert "+other: 1" in cleaned


@pytest.mark.parametrize(
    "argv,secret",
    [
        (["train.py", "--password", "-dash-leading-pw", "--epochs", "3"], "-dash-leading-pw"),
        (["train.py", "--pass", "argv-pass-value"], "argv-pass-value"),
        (["train.py", "--db-pass=eq-pass-value"], "eq-pass-value"),
    ],
)
def test_planted_secret_is_redacted_from_argv(argv: list[str], secret: str) -> None:
    cleaned = redact_argv(argv)
    assert secret not in " ".join(cleaned) and len(cleaned) == len(argv)
    assert "--epochs" in cleaned or "--epochs" not in argv


def test_pass_names_are_secret_and_a_training_pass_is_not() -> None:
    assert all(
        is_secret_name(n) for n in ("DB_PASS", "SMTP_PASS", "db_pass", "pass", "PYTORCH_PASS")
    )
    assert not any(
        is_secret_name(n) for n in ("num_pass", "forward_pass", "passes", "bypass", "compass")
    )
    assert redact_mapping({"db_pass": "mapping-pass-value"}) == {"db_pass": REDACTED}


def test_env_allow_list_matches_whole_names_not_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTORCH_PASS", "prefix-allowed-pw")
    monkeypatch.setenv("TF_DB_PASSWD_HINT", "prefix-allowed-2")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    kept = environment()
    assert "PYTORCH_PASS" not in kept and "TF_DB_PASSWD_HINT" not in kept
    assert kept.get("OMP_NUM_THREADS") == "2"


def test_vocabulary_tokens_stay_readable() -> None:
    text = 'layer = TextVectorization(oov_token="[UNK]", max_tokens=20000)\ntok = Tokenizer(oov_token="<OOV>")'
    assert redact_text(text) == text
    assert redact_mapping({"oov_token": "[UNK]", "pad_token": "<pad>"}) == {
        "oov_token": "[UNK]",
        "pad_token": "<pad>",
    }
