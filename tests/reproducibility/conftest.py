"""Fixtures: a store with seeded 2-epoch runs of the example scripts, and a framework-free script."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.training_scripts import EXAMPLES, TOY_SCRIPT, run_script


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("MODELKB_HOME", "MODELKB_REPRODUCES", "MODELKB_GROUP", "MODELKB_SEED_OVERRIDE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One seeded 2-epoch run of each example script (trained once per session)."""
    root = tmp_path_factory.mktemp("repro-store")
    store = root / "store"
    store.mkdir()
    ids = {}
    for framework, script in (
        ("torch", "train_torch_digits.py"),
        ("keras", "train_keras_digits.py"),
    ):
        pytest.importorskip(framework if framework == "torch" else "keras")
        ids[framework] = run_script(EXAMPLES / script, store, "--epochs", "2", cwd=root)
    return {"store": store, **ids}


@pytest.fixture
def toy_script(tmp_path: Path) -> Path:
    folder = tmp_path / "toy"
    folder.mkdir()
    script = folder / "train_toy.py"
    script.write_text(TOY_SCRIPT, encoding="utf-8")
    return script
