"""Keeping secrets out of bundles: names that say secret, and values that look like one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***REDACTED***"

_SECRET_NAME = re.compile(
    r"(?:^|[_.\-\s])(?:token|secret|password|passwd|pwd|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|"
    r"secret[_\-]?key|credentials?|auth|authorization|session[_\-]?key|key)$"
    r"|^(?:token|secret|password|passwd|apikey|api_key|credentials|auth)",
    re.IGNORECASE,
)

_SECRET_VALUES = [
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\b"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
    # a 40-character AWS secret access key: base64 alphabet with at least one '/' or '+', or mixed case+digits
    re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=]))(?=[^\s]*[a-z])(?=[^\s]*[A-Z])(?=[^\s]*[0-9/+])[A-Za-z0-9/+]{40}"),
]
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.IGNORECASE)

# NAME = value, NAME: value, "name": "value", --name value, export NAME=value
_ASSIGNMENT = re.compile(
    r"""(?P<name>(?:--)?[A-Za-z_][A-Za-z0-9_.\-]*)(?P<q1>["']?)(?P<sep>[ \t]*[=:][ \t]*|(?<=[A-Za-z0-9_])[ \t]+(?=[^=:\s-]))(?P<q2>["']?)(?P<value>[^\s"',;)}\]#]+)""",
)


def is_secret_name(name: str) -> bool:
    """Whether a variable/parameter name says its value is a secret (``HF_TOKEN``, ``db.password``)."""
    name = name.strip().strip("-")
    if not name or name.lower() in {"key", "keys", "tokenizer", "token_type", "max_tokens", "num_tokens"}:
        return False
    lowered = name.lower()
    if lowered.endswith(("_tokens", "tokenizer", "_key_id")) and not lowered.startswith("aws_access_key"):
        return lowered.endswith("_key_id")
    return bool(_SECRET_NAME.search(name))


def looks_like_secret(value: str) -> bool:
    """Whether a string value looks like a credential whatever its name."""
    if not isinstance(value, str) or len(value) < 16:
        return False
    if re.fullmatch(r"[0-9a-f]{32,128}", value):  # hex digests and commit shas are not secrets
        return False
    return any(p.search(value) for p in _SECRET_VALUES) or bool(_URL_CREDENTIALS.search(value))


def redact_text(text: str) -> str:
    """Replace secret-looking substrings and values assigned to secret names; keep the rest intact."""
    if not text:
        return text
    for pattern in _SECRET_VALUES:
        text = pattern.sub(lambda m: REDACTED if not re.fullmatch(r"[0-9a-f]+", m.group(0)) else m.group(0), text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{REDACTED}@", text)

    def assignment(match: re.Match[str]) -> str:
        if match.group("sep").strip() == "" and not match.group("name").startswith("--"):
            # `word value`: not an assignment; rescan from the value so `export NAME=x` is seen
            return match.group(0)[: match.start("value") - match.start(0)] + redact_text(match.group("value"))
        if not is_secret_name(match.group("name")) or match.group("value") == REDACTED:
            return match.group(0)
        value = match.group("value")
        if value in {"None", "null", "os.environ", "os.getenv"} or value.startswith(("os.", "getenv", "environ")):
            return match.group(0)
        start = match.start("value") - match.start(0)
        return match.group(0)[:start] + REDACTED

    return _ASSIGNMENT.sub(assignment, text)


def redact_mapping(obj: Any) -> Any:
    """A deep copy of ``obj`` with values under secret names and secret-looking strings redacted."""
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if is_secret_name(str(key)) and value not in (None, "", [], {}) and not isinstance(value, (Mapping, list)):
                out[key] = REDACTED
            else:
                out[key] = redact_mapping(value)
        return out
    if isinstance(obj, list):
        return [redact_mapping(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_mapping(v) for v in obj)
    if isinstance(obj, str):
        return redact_text(obj) if looks_like_secret(obj) else obj
    return obj
