"""Keep secrets out of bundles: detect secret names and secret-looking values, and mask them.

Two complementary checks run over every captured value, parameter, git diff and code file:

* **by name** — an assignment whose target is called like a secret (``HF_TOKEN = "..."``,
  ``password: ...``, ``"api-key": "..."``, ``--db.password=...``) has its value replaced;
* **by shape** — substrings that look like credentials wherever they appear (AWS key ids and
  secret keys, Hugging Face / GitHub / OpenAI / Slack tokens, JWTs, PEM private keys, passwords
  in URLs) are replaced.

Everything else is kept byte-identical. Hex digests (sha256 sums, git commit ids) are never
treated as secrets: they are public identifiers, and redacting them would break provenance.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import pairwise
from typing import Any

logger = logging.getLogger(__name__)

REDACTED = "***REDACTED***"

# -- secret names ---------------------------------------------------------------------------------
# Substrings that make any name part a secret (``dbpassword``, ``client_secret``, ``apikey``).
_SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "credential",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "authtoken",
    "accesstoken",
    "refreshtoken",
    "sessiontoken",
)
# A trailing part that turns a secret-sounding name into a harmless one (``HF_TOKEN_PATH``).
_SAFE_SUFFIXES = frozenset(
    {
        "path",
        "file",
        "filename",
        "dir",
        "directory",
        "env",
        "var",
        "name",
        "names",
        "type",
        "types",
        "length",
        "len",
        "prompt",
        "policy",
        "required",
        "enabled",
        "provider",
        "method",
        "mode",
        "url",
        "endpoint",
        "host",
        "scheme",
    }
)
# ``pad_token``, ``eos_token``, ``max_token``: tokenizer vocabulary, not credentials.
_VOCAB_TOKEN_PREFIXES = frozenset(
    {
        "pad",
        "eos",
        "bos",
        "unk",
        "cls",
        "sep",
        "mask",
        "start",
        "end",
        "special",
        "additional",
        "max",
        "min",
        "num",
        "n",
        "image",
        "audio",
        "video",
        "vision",
        "boi",
        "eoi",
        "decoder",
        "sentinel",
        "new",
        "oov",
        "unknown",
        "padding",
        "separator",
        "begin",
        "eot",
        "sot",
    }
)
# ``db_pass``, ``SMTP_PASS``, ``--pass``: a password; ``forward_pass``, ``num_pass``: a training pass.
_TRAINING_PASS_PREFIXES = frozenset(
    {
        "num",
        "n",
        "max",
        "min",
        "first",
        "second",
        "third",
        "last",
        "next",
        "forward",
        "backward",
        "multi",
        "single",
        "one",
        "two",
        "each",
        "per",
        "eval",
        "train",
        "training",
        "inference",
        "render",
    }
)
# ``sort_key``, ``label_key``, ``attention_key``: lookup keys, not credentials.
_LOOKUP_KEY_PREFIXES = frozenset(
    {
        "sort",
        "primary",
        "foreign",
        "partition",
        "hash",
        "range",
        "input",
        "output",
        "label",
        "labels",
        "feature",
        "target",
        "image",
        "text",
        "cache",
        "metric",
        "monitor",
        "group",
        "dict",
        "lookup",
        "column",
        "index",
        "row",
        "sequence",
        "seq",
        "value",
        "data",
        "dataset",
        "batch",
        "state",
        "field",
        "map",
        "join",
        "shard",
        "split",
        "class",
        "name",
        "audio",
        "video",
        "mask",
        "pixel",
        "attention",
        "query",
        "hot",
        "short",
        "unique",
        "dedup",
        "random",
        "rng",
        "prng",
        "seed",
        "sample",
        "config",
        "model",
        "layer",
        "weight",
        "dim",
    }
)
_KEY_QUALIFIERS = frozenset(
    {
        "access",
        "api",
        "secret",
        "private",
        "client",
        "signing",
        "encryption",
        "master",
        "ssh",
        "gpg",
        "pgp",
        "license",
        "account",
        "storage",
    }
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_PARTS = re.compile(r"[^a-z0-9]+")


def _name_parts(name: str) -> list[str]:
    return [part for part in _PARTS.split(_CAMEL.sub("_", name).lower()) if part]


@lru_cache(maxsize=4096)  # pure, and the same keys recur in every captured mapping
def is_secret_name(name: str) -> bool:
    """Whether a variable, parameter or key called ``name`` probably holds a secret.

    Case-insensitive; ``_``, ``.``, ``-`` and camelCase separate the parts, so ``HF_TOKEN``,
    ``db.password``, ``api-key``, ``apiKey`` and ``AWS_ACCESS_KEY_ID`` are secrets while
    ``tokenizer``, ``pad_token``, ``keyboard``, ``monkey``, ``sort_key`` and ``HF_TOKEN_PATH``
    are not.

    Args:
        name: The name to judge.

    Returns:
        ``True`` when values under this name must be redacted.
    """
    parts = _name_parts(name)
    if not parts:
        return False
    if len(parts) > 1 and parts[-1] in _SAFE_SUFFIXES:
        return False
    last, before = parts[-1], (parts[-2] if len(parts) > 1 else "")
    if any(word in part for part in parts for word in _SECRET_WORDS):
        return True
    if last == "token" and before not in _VOCAB_TOKEN_PREFIXES:
        return True
    if "auth" in parts or "authorization" in parts or "bearer" in parts or "creds" in parts:
        return True
    if last == "pass" and before not in _TRAINING_PASS_PREFIXES:
        return True
    if "pwd" in parts and len(parts) > 1:  # ``db_pwd``; a lone ``PWD`` is the working directory
        return True
    if last == "key" and before and before not in _LOOKUP_KEY_PREFIXES:
        return True
    # ``access_key_id``, ``signing_key_pem``: a qualified key anywhere in the name.
    return any(a in _KEY_QUALIFIERS and b == "key" for a, b in pairwise(parts))


# -- secret-looking values ------------------------------------------------------------------------
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z)",  # a cut-off block is hidden to the end
    re.DOTALL,
)
_TOKENS = re.compile(
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # AWS access key id
    r"|\bhf_[A-Za-z0-9]{30,}\b"  # Hugging Face
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_\w{22,}"  # GitHub
    r"|\bglpat-[A-Za-z0-9_\-]{20,}"  # GitLab personal access token
    r"|(?<=[?&]sig=)[A-Za-z0-9%/+=]{8,}"  # Azure SAS signature
    r"|\bsk-[A-Za-z0-9_\-]{20,}"  # OpenAI, Anthropic
    r"|\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|\bAIza[0-9A-Za-z_\-]{35}"  # Google API key
    r"|\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}"  # JWT
    r"|(?<=\bBearer )[A-Za-z0-9._~+/=\-]{16,}"  # HTTP bearer token
)
_URL_PASSWORD = re.compile(
    r"(\b[a-zA-Z][a-zA-Z0-9+.\-]{0,31}://[^\s:/@'\"]{0,256}:)([^\s/@'\"]{1,256})(@)"
)
# 40 base64 characters on their own: the shape of an AWS secret access key.
_BASE64_40 = re.compile(r"(?<![A-Za-z0-9/+_\-])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_\-])")


def _high_entropy(candidate: str) -> bool:
    if not (
        re.search(r"[a-z]", candidate)
        and re.search(r"[A-Z]", candidate)
        and re.search(r"[0-9]", candidate)
    ):
        return False  # hex digests and plain words never qualify
    counts = Counter(candidate)
    entropy = -sum(n / len(candidate) * math.log2(n / len(candidate)) for n in counts.values())
    return entropy >= 4.3


def _redact_shapes(text: str) -> str:
    text = _PEM.sub(REDACTED, text)
    text = _TOKENS.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    return _BASE64_40.sub(lambda m: REDACTED if _high_entropy(m.group()) else m.group(), text)


def looks_like_secret(value: str) -> bool:
    """Whether ``value`` is or contains a credential-shaped string.

    Detects AWS access key ids and 40-character secret keys, Hugging Face, GitHub, OpenAI-style,
    Stripe, Slack and Google tokens, JWTs, bearer tokens, PEM private keys and ``user:password@``
    in URLs. Hex digests (sha256 sums, git commit ids) do not count.

    Args:
        value: Any string.

    Returns:
        ``True`` when :func:`redact_text` would change something in ``value`` by its shape alone.
    """
    return isinstance(value, str) and _redact_shapes(value) != value


# -- assignments ----------------------------------------------------------------------------------
_NAME = r"(?<![\w.])(?<!\w-)(?P<nq>[\"']?)(?P<name>[A-Za-z_][\w.\-]{0,127})(?P=nq)\]?"
_QUOTED = re.compile(
    _NAME + r"(?P<sep>\s*(?::\s*[A-Za-z_][\w.\[\], |]{0,60}?\s*)?"  # optional type annotation
    r"(?::=|==|=|:|(?<=[\"']),)\s*[rRbBuUfF]{0,2})"
    r"(?P<value>\"\"\"[\s\S]*?\"\"\"|'\'\'[\s\S]*?'\'\'|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')"
)
_UNQUOTED = re.compile(_NAME + r"(?P<sep>[ \t]*[:=][ \t]*)(?P<value>[^\s\"'#,;)}\]=][^\n]*)")
_FLAG = re.compile(
    r"(?<!\S)--(?P<name>[A-Za-z][\w.\-]{0,127})(?P<sep>[ \t]+)(?P<value>(?!--[A-Za-z])[^\s]+)"
)
_CODE_VALUE = re.compile(
    r"(?:os|self|cls|args|cfg|config|settings|env|environ)\.|[A-Za-z_][\w.]*\s*[(\[]"
    r"|(?:None|True|False|null|true|false|lambda|not|await|str|bytes|int|Optional|Any|SecretStr)\b"
    r"|[$%{<~]"
)


_CONTAINER = re.compile(_NAME + r"(?P<sep>[ \t]*(?::=|=|:)[ \t]*)(?P<open>[{\[(])")
_STRING = re.compile(r"\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'")
_CLOSE = {"{": "}", "[": "]", "(": ")"}
_MAX_CONTAINER = 8192
_YAML_BLOCK = re.compile(
    r"(?P<indent>[ \t]*)(?P<nq>[\"']?)(?P<name>[A-Za-z_][\w.\-]{0,127})(?P=nq)[ \t]*:[ \t]*[|>][+\-0-9]*[ \t]*(?:#.*)?"
)
_DIFF_MARKS = "+- "
_LOGIN_KEY = re.compile(
    r"(\blogin\s*\((?:[^()]|\([^()]*\))*?\bkey\s*=\s*[rRbBuU]{0,2})(\"[^\"\n]*\"|'[^'\n]*')"
)


def _redact_containers(text: str) -> str:
    """``SECRETS = {"db": "x"}``, ``auth=("user", "pw")``: every string value inside is hidden (keys stay)."""
    out, last = [], 0
    for match in _CONTAINER.finditer(text):
        if match.start() < last or not is_secret_name(match.group("name")):
            continue
        start = match.end("open") - 1
        end = _closing(text, start)
        body = _STRING.sub(
            lambda m, start=start: (
                m.group()
                if re.match(r"\s*:", text[start + m.end() : start + m.end() + 8])
                else m.group()[0] + REDACTED + m.group()[-1]
            ),
            text[start:end],
        )
        out += [text[last:start], body]
        last = end
    return "".join(out) + text[last:] if out else text


def _closing(text: str, start: int) -> int:
    """The index after the bracket closing ``text[start]`` (strings skipped; capped at 8 KiB)."""
    depth, position, limit = 0, start, min(len(text), start + _MAX_CONTAINER)
    while position < limit:
        char = text[position]
        if char in "\"'":
            found = _STRING.match(text, position)
            position = found.end() if found else position + 1
            continue
        if char in _CLOSE:
            depth += 1
        elif char in _CLOSE.values():
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return limit


def _redact_yaml_blocks(text: str) -> str:
    """``password: |`` (or ``>``) then the value on the next, deeper-indented lines; also in a diff."""
    if "|" not in text and ">" not in text:
        return text
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        mark = line[:1] if line[:1] in "+-" else ""
        header = _YAML_BLOCK.fullmatch(line[len(mark) :])
        index += 1
        if header is None or not is_secret_name(header.group("name")):
            continue
        depth = len(header.group("indent").expandtabs())
        while index < len(lines):
            body = lines[index][len(mark) :] if mark and lines[index][:1] == mark else lines[index]
            stripped = body.strip()
            indent = len(body) - len(body.lstrip())
            if stripped and indent <= depth:
                break
            if stripped:
                lines[index] = (
                    lines[index][: len(lines[index]) - len(body)] + body[:indent] + REDACTED
                )
            index += 1
    return "\n".join(lines)


def _quoted(match: re.Match[str]) -> str:
    value = match.group("value")
    if len(value) <= 2 or value[1:-1] == REDACTED or not is_secret_name(match.group("name")):
        return match.group()
    # ``getenv("API_TOKEN", "x")`` counts, a list of field names ``["password", "email"]`` does not.
    if match.group("sep").strip().startswith(","):
        before = match.string[max(0, match.start() - 80) : match.start()]
        if not before.rstrip().endswith("("):
            return match.group()
    return match.group()[: match.start("value") - match.start()] + value[0] + REDACTED + value[-1]


def _unquoted(match: re.Match[str]) -> str:
    name, value, sep = match.group("name"), match.group("value"), match.group("sep")
    if not is_secret_name(name) or _CODE_VALUE.match(value):
        return match.group()
    word = re.match(r"[A-Za-z_]\w*", value)
    if word and word.group().lower() in (name.lower(), name.rsplit(".", 1)[-1].lower()):
        return match.group()  # ``self.token = token``, ``api_key=api_key``: passing a variable on
    if ("=" in sep and not sep.startswith((" ", "\t"))) or match.group("nq"):
        # ``NAME=value`` (shell, kwargs, flags) and quoted JSON/dict keys end at a delimiter.
        end = re.search(r"[\s,;)}\]]", value)
        keep = value[end.start() :] if end else ""
    else:  # ``name: value`` (YAML) and ``name = value`` (INI) run to the end of the line.
        comment = re.search(r"\s+#", value)
        body = value[: comment.start()] if comment else value
        keep = value[len(body.rstrip()) :]
    secret = value[: len(value) - len(keep)]
    if not secret or secret == REDACTED:
        return match.group()
    return match.group()[: match.start("value") - match.start()] + REDACTED + keep


def _flag(match: re.Match[str]) -> str:
    if not is_secret_name(match.group("name")) or match.group("value") == REDACTED:
        return match.group()
    return f"--{match.group('name')}{match.group('sep')}{REDACTED}"


def redact_text(text: str) -> str:
    """Mask secrets in free text: code, shell, YAML, JSON, ``.env`` files, notes or git diffs.

    Replaces credential-shaped substrings and the values of assignments to secret names
    (``NAME=value``, ``NAME: value``, ``"name": "value"``, ``name="value"``, ``--name value``,
    with a leading diff ``+``/``-`` allowed) by :data:`REDACTED`; every other byte is kept.

    Args:
        text: The text to clean.

    Returns:
        The redacted text.
    """
    if not text:
        return text
    text = _redact_shapes(text)
    text = _redact_yaml_blocks(text)
    text = _redact_containers(text)
    text = _LOGIN_KEY.sub(lambda m: m.group(1) + m.group(2)[0] + REDACTED + m.group(2)[-1], text)
    text = _QUOTED.sub(_quoted, text)
    text = _UNQUOTED.sub(_unquoted, text)
    return _FLAG.sub(_flag, text)


_LONG_OPTION = re.compile(r"--[A-Za-z]")


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Redact a command line: ``--password=x`` and ``--password x`` lose their values.

    The argument after a secret-named option is hidden even when it starts with ``-``; only
    another long option (``--epochs``) is taken as the next option.

    Args:
        argv: Arguments, e.g. ``sys.argv``.

    Returns:
        A new list of the same length.
    """
    out: list[str] = []
    hide_next = False
    for arg in map(str, argv):
        if hide_next and not _LONG_OPTION.match(arg):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = arg.startswith("-") and "=" not in arg and is_secret_name(arg.lstrip("-"))
        out.append(redact_text(arg))
    return out


def redact_mapping(obj: Any) -> Any:
    """A redacted deep copy of nested dicts, lists and tuples.

    Values under secret-named keys (see :func:`is_secret_name`) become :data:`REDACTED` unless they
    are ``None``, a bool or empty (``use_auth_token=True`` is not a secret); every string anywhere
    goes through :func:`redact_text`. Other objects are returned as they are.

    Args:
        obj: A JSON-like structure.

    Returns:
        The redacted copy; ``obj`` is not modified.
    """
    if isinstance(obj, Mapping):
        return {
            key: REDACTED if _hide(key, value) else redact_mapping(value)
            for key, value in obj.items()
        }
    if isinstance(obj, list):
        return [redact_mapping(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(redact_mapping(item) for item in obj)
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def _hide(key: Any, value: Any) -> bool:
    if value is None or isinstance(value, bool) or value in ("", [], {}):
        return False
    return is_secret_name(str(key))
