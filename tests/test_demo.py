"""The README's main job: `modelkb demo` trains both frameworks, stores, catalogs and packages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    store = tmp_path / "demo-output" / "store"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelkb",
            "demo",
            "--store",
            str(store),
            "--epochs",
            "1",
            "--no-serve",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    bundles = sorted(store.glob("digits/*/metadata.json"))
    frameworks = sorted(json.loads(path.read_text())["framework"]["name"] for path in bundles)
    assert frameworks == ["keras", "keras", "pytorch"]
    for path in bundles:
        meta = json.loads(path.read_text())
        assert meta["status"] == "completed" and meta["onnx"]["max_abs_diff"] < 1e-4
        assert (path.parent / "model.onnx").is_file() and (path.parent / "code").is_dir()
    assert "Best run:" in done.stdout
    site = tmp_path / "demo-output" / "site"
    assert (site / "index.html").is_file() and len(list((site / "experiments").iterdir())) == 3
    lambda_dir = tmp_path / "demo-output" / "lambda"
    for name in ("handler.py", "predict.py", "Dockerfile", "template.yaml"):
        assert (lambda_dir / name).is_file(), name
