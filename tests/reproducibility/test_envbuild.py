"""--env locked: a venv from requirements.lock; uninstallable pins are reported, never substituted."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from support.training_scripts import run_script

from modelkb import Store
from modelkb.cli import main
from modelkb.reproducibility.envbuild import read_pins

IMPOSSIBLE = "modelkb-test-no-such-distribution==0.0.1"
# What the framework-free toy script needs: ModelKB's own dependencies, at the installed versions.
DEPENDENCIES = (
    "click",
    "jinja2",
    "markupsafe",
    "pyyaml",
    "jsonschema",
    "attrs",
    "referencing",
    "rpds-py",
    "jsonschema-specifications",
    "fastjsonschema",
    "rich",
    "markdown-it-py",
    "mdurl",
    "pygments",
    "typing-extensions",
)


def test_read_pins_ignores_comments(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "# header\nsix==1.17.0\n# torch: version unknown\nNumPy == 2.0.2 ; python_version>'3'\n\n"
    )
    assert read_pins(lock) == [("six", "1.17.0"), ("NumPy", "2.0.2")]


@pytest.mark.slow
def test_locked_env_reports_an_uninstallable_package(
    tmp_path: Path, toy_script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path / "store")
    run = run_script(toy_script, store.root, "--seed", "5")
    bundle = store.get(run)
    pins = [f"{name}=={metadata.version(name)}" for name in DEPENDENCIES]
    (bundle.path / "requirements.lock").write_text(
        "# test lockfile\n" + "\n".join([*pins, "modelkb==0.1.0", IMPOSSIBLE]) + "\n",
        encoding="utf-8",
    )
    main(
        [
            "reproduce",
            run,
            "--store",
            str(store.root),
            "--env",
            "locked",
            "--env-dir",
            str(tmp_path / "venv"),
        ]
    )
    out = capsys.readouterr().out
    assert "NOT installable (modelkb-test-no-such-distribution==0.0.1)" in out
    assert "nothing was substituted" in out
    assert f"not installable: {IMPOSSIBLE}" in out
    assert f"{len(pins)} installed as locked" in out and "1 local package(s) skipped" in out
    assert "MATCH" in out  # the rest of the environment was enough to re-run the script exactly
    assert (tmp_path / "venv" / "bin" / "python").exists()
