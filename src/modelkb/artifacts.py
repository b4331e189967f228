"""Copying a user's file or folder into a bundle without carrying secrets along.

A bundle is shared: it goes into the catalog's ``bundle.zip``, exports, S3 and the Hub. So what
``Experiment.log_artifact`` copies is filtered here:

* links are not followed out of the folder given (a link to ``/etc/passwd`` or
  ``~/.aws/credentials`` is skipped); a link inside it is copied as the file it points to;
* files that are secrets by name (``.env``, ``*.pem``, ``credentials``, ``id_rsa``, ...) are
  refused, whatever they hold;
* text files go through the same redactor as code and metadata (``config.yaml`` with a password);
  binary files (weights, images) are copied byte for byte.

Each file left out or changed is reported, so the run's warnings say what the bundle lacks.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from modelkb.redact import redact_text

# Names whose content is a secret whatever it looks like (compared in lower case).
SECRET_FILE_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    "credentials",
    "credentials.json",
    "credentials.yaml",
    "credentials.yml",
    "*.credentials",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.kdbx",
    "*.gpg",
    "*.asc",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_rsa.*",
    "id_dsa.*",
    "id_ecdsa.*",
    "id_ed25519.*",
    "secrets.json",
    "secrets.yaml",
    "secrets.yml",
    "secrets.toml",
    "*.secret",
    "*.secrets",
    "service-account*.json",
    "client_secret*.json",
    "htpasswd",
    ".htpasswd",
    "kubeconfig",
)
# Folders that hold only secrets (``~/.aws``, ``~/.ssh`` copied whole).
SECRET_DIRS = frozenset({".aws", ".ssh", ".gnupg", ".kube", ".docker"})
_TEXT_SNIFF = 8192
_MAX_TEXT_BYTES = (
    16 * 1024 * 1024
)  # larger text files are data, not configuration: scanned in full anyway


@dataclass
class CopyReport:
    """What a copy left out or changed, one line each, for the run's warnings."""

    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path in the folder, why)
    redacted: list[str] = field(default_factory=list)

    def messages(self) -> list[str]:
        lines = [f"artifact {item} was not copied: {why}" for item, why in self.skipped]
        lines += [
            f"artifact {item}: values that look like secrets were replaced by ***REDACTED***"
            for item in self.redacted
        ]
        return lines


def is_secret_file(name: str) -> bool:
    """True for a file name that holds credentials by convention (``.env``, ``*.pem``, ``credentials``)."""
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, pattern) for pattern in SECRET_FILE_PATTERNS)


def copy_artifact(source: Path, target: Path) -> CopyReport:
    """Copy ``source`` (a file or a folder) to ``target`` under the rules above.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: ``source`` itself is a secret file or folder.
    """
    report = CopyReport()
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    if source.is_dir():
        if source.name.lower() in SECRET_DIRS:
            raise ValueError(
                f"{source} holds credentials by convention; it is not copied into a shared bundle"
            )
        _copy_folder(source, target, report)
    else:
        for name in {source.name, source.resolve().name}:
            if is_secret_file(name):
                raise ValueError(
                    f"{source} is a secret file by its name ({name}); it is not copied into a "
                    "shared bundle. Log a copy without the credentials instead."
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_file(source, target, source.name, report)
    return report


def _copy_folder(root: Path, target: Path, report: CopyReport) -> None:
    real_root = root.resolve()
    target.mkdir(parents=True, exist_ok=True)
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        relative = here.relative_to(root)
        for name in list(dirs):
            entry = here / name
            shown = (relative / name).as_posix()
            if entry.is_symlink() or name.lower() in SECRET_DIRS:
                dirs.remove(name)
                why = (
                    "it is a link (links are not followed)"
                    if entry.is_symlink()
                    else "it holds credentials by convention"
                )
                report.skipped.append((f"{shown}/", why))
            else:
                (target / relative / name).mkdir(parents=True, exist_ok=True)
        for name in files:
            entry = here / name
            shown = (relative / name).as_posix()
            why = _refusal(entry, real_root)
            if why:
                report.skipped.append((shown, why))
                continue
            _copy_file(entry, target / relative / name, shown, report)


def _refusal(entry: Path, real_root: Path) -> str | None:
    """Why a file of the folder is not copied, or None."""
    if is_secret_file(entry.name):
        return "it is a secret file by its name"
    if entry.is_symlink():
        resolved = entry.resolve()
        if not resolved.is_relative_to(real_root):
            return f"it is a link leaving the folder (to {resolved})"
        if is_secret_file(resolved.name):
            return "it links to a secret file"
    try:
        mode = entry.stat().st_mode
    except OSError as err:
        return f"it cannot be read ({err.strerror or err})"
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    return None


def _copy_file(source: Path, target: Path, shown: str, report: CopyReport) -> None:
    """Copy one regular file: text through the redactor, anything else byte for byte."""
    with source.open("rb") as handle:
        head = handle.read(_TEXT_SNIFF)
    text = _as_text(source, head)
    if text is None:
        shutil.copyfile(source, target)
        return
    clean = redact_text(text)
    target.write_text(clean, encoding="utf-8", newline="")
    if clean != text:
        report.redacted.append(shown)


def _as_text(source: Path, head: bytes) -> str | None:
    """The file's text when it is UTF-8 text of a reasonable size, else None (binary)."""
    if b"\0" in head or source.stat().st_size > _MAX_TEXT_BYTES:
        return None
    try:
        return source.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None
