"""log_artifact never carries a secret into a bundle, the catalog's bundle.zip or an export."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelkb.bundle import read_bundle
from modelkb.cli import cli
from modelkb.experiment import Experiment

PASSWD = "root:x:0:0:planted-passwd-line:/root:/bin/bash"
AWS_SECRET = "planted/aws+secret/0123456789abcdefghijABCDEFGHIJ"
DOTENV = "DATABASE_URL=postgres://app:planted-dotenv-pw@db/app"
PEM_BODY = "planted-pem-body"
YAML_PASSWORD = "planted-yaml-pw"
PLANTED = (PASSWD, AWS_SECRET, "planted-dotenv-pw", PEM_BODY, YAML_PASSWORD)


def _hostile_folder(tmp_path: Path) -> Path:
    """A results folder as a user might have it: config, .env, keys, and links out to the system."""
    outside = tmp_path / "outside"
    (outside / ".aws").mkdir(parents=True)
    (outside / "passwd").write_text(PASSWD + "\n")
    (outside / ".aws" / "credentials").write_text(
        f"[default]\naws_secret_access_key = {AWS_SECRET}\n"
    )
    folder = tmp_path / "results"
    (folder / "nested").mkdir(parents=True)
    (folder / "config.yaml").write_text(f"epochs: 3\nsmtp_password: {YAML_PASSWORD}\n")
    (folder / ".env").write_text(DOTENV + "\n")
    (folder / "server.pem").write_text(
        f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"
    )
    (folder / "nested" / "scores.csv").write_text("epoch,loss\n0,0.5\n")
    (folder / "weights.bin").write_bytes(b"\0\1\2binary" * 10)
    os.symlink(outside / "passwd", folder / "passwd")
    os.symlink(outside / ".aws", folder / "aws")
    os.symlink(outside / ".aws" / "credentials", folder / "nested" / "credentials.txt")
    os.symlink(folder / "nested" / "scores.csv", folder / "latest.csv")  # a link inside: fine
    return folder


def _texts_of(path: Path) -> str:
    """Every byte of ``path`` or under it (files and the members of any zip), decoded loosely."""
    chunks = []
    for file in path.rglob("*") if path.is_dir() else [path]:
        if file.is_file():
            chunks.append(file.read_bytes().decode("utf-8", "replace"))
            if zipfile.is_zipfile(file):
                with zipfile.ZipFile(file) as archive:
                    chunks += [
                        archive.read(n).decode("utf-8", "replace") for n in archive.namelist()
                    ]
    return "\n".join(chunks)


def test_a_hostile_folder_reaches_no_bundle_site_or_export(tmp_path: Path) -> None:
    folder = _hostile_folder(tmp_path)
    store = tmp_path / "store"
    with Experiment("P", "u", store=store, capture_code=False) as exp:
        copied = exp.log_artifact(folder)
        exp.log_metrics({"loss": 0.5}, epoch=0)
    assert copied == exp.path / "artifacts" / "results"
    # what is harmless arrives
    assert (copied / "nested" / "scores.csv").read_text() == "epoch,loss\n0,0.5\n"
    assert (copied / "latest.csv").read_text() == "epoch,loss\n0,0.5\n"
    assert (copied / "weights.bin").read_bytes() == b"\0\1\2binary" * 10
    assert "epochs: 3" in (copied / "config.yaml").read_text()
    # each thing left out or changed is named in the run's warnings
    warnings = "\n".join(w["message"] for w in read_bundle(exp.path).metadata["warnings"])
    for name in (".env", "server.pem", "passwd", "aws/", "nested/credentials.txt", "config.yaml"):
        assert f"artifact {name}" in warnings, warnings

    site = tmp_path / "site"
    built = CliRunner().invoke(cli, ["build", "--store", str(store), "--out", str(site)])
    assert built.exit_code == 0, built.output
    exported = tmp_path / "export.zip"
    done = CliRunner().invoke(
        cli, ["export", exp.id, "--store", str(store), "--out", str(exported), "--no-serving"]
    )
    assert done.exit_code == 0, done.output
    for where in (store, site, exported):
        leaked = [secret for secret in PLANTED if secret in _texts_of(where)]
        assert not leaked, f"{leaked} reached {where}"


@pytest.mark.parametrize("name", [".env", "id_rsa", "deploy.pem", "credentials"])
def test_a_secret_file_named_directly_is_refused_with_a_warning(tmp_path: Path, name: str) -> None:
    secret = tmp_path / name
    secret.write_text("token = planted-direct-secret\n")
    with Experiment("P", "u", store=tmp_path / "store", capture_code=False) as exp:
        assert exp.log_artifact(secret) is None  # training goes on
    meta = read_bundle(exp.path).metadata
    assert any(name in w["message"] and w["source"] == "artifact" for w in meta["warnings"])
    assert "planted-direct-secret" not in _texts_of(exp.path)


@pytest.mark.parametrize("name", ["../escape.txt", "{tmp}/abs.txt", "a/../../b"])
def test_an_artifact_name_cannot_leave_the_bundle(tmp_path: Path, name: str) -> None:
    source = tmp_path / "ok.txt"
    source.write_text("fine\n")
    with Experiment("P", "u", store=tmp_path / "store", capture_code=False) as exp:
        assert exp.log_artifact(source, name=name.format(tmp=tmp_path)) is None
    outside_bundle = [p for p in tmp_path.rglob("*") if p.is_file() and exp.path not in p.parents]
    assert sorted(p.name for p in outside_bundle if not p.name.startswith("index.sqlite")) == [
        "ok.txt"
    ]
    assert any("artifact name" in w["message"] for w in read_bundle(exp.path).metadata["warnings"])
