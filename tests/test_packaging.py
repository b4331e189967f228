"""A plain, non-editable install gives one `modelkb` namespace, its package data and the command."""

from __future__ import annotations

import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_one_namespace_with_data_and_command(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    wheel = next(wheels.glob("modelkb-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"modelkb"}, tops
    for expected in (
        "modelkb/collector/__init__.py",
        "modelkb/site_builder/__init__.py",
        "modelkb/serverless/__init__.py",
        "modelkb/templates/model_card.md.j2",
        "modelkb/templates/hub/template.yaml",  # `modelkb hub deploy` deploys it
        "modelkb/templates/hub/Dockerfile.j2",
        "modelkb/schemas/metadata-v1.schema.json",
        "modelkb/py.typed",
        "modelkb/cli/__init__.py",
    ):
        assert expected in names, expected
    root = Path(__file__).resolve().parents[1]
    sources = {root / "src" / "modelkb": "modelkb"} | {
        root / name: f"modelkb/{name}" for name in ("collector", "site_builder", "serverless")
    }
    for folder, prefix in sources.items():  # every subpackage, also ones added later
        for init in folder.rglob("__init__.py"):
            expected = f"{prefix}/{init.relative_to(folder).as_posix()}"
            assert expected in names, f"{expected} is missing from the wheel (pyproject packages)"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    before = {p.name for p in purelib.iterdir()}
    subprocess.run(
        [str(vpy), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    installed = {p.name for p in purelib.iterdir()} - before
    assert {n for n in installed if not n.endswith(".dist-info")} == {"modelkb"}, installed
    # borrow the test venv's third-party deps (click, jinja2, ...) *after* the fresh install
    (purelib / "zz-borrowed-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    cmd = venv / "bin" / "modelkb"
    done = subprocess.run([str(cmd), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "query" in done.stdout
    where = subprocess.run(
        [
            str(vpy),
            "-c",
            "import modelkb.collector, modelkb.templates as t; print(modelkb.collector.__file__); "
            "import importlib.resources as r; "
            "print(r.files('modelkb.templates').joinpath('model_card.md.j2').is_file())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    assert str(purelib) in where.stdout and "True" in where.stdout
