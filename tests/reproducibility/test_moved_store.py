"""A store is a folder: after `cp -r` or `mv` every command works on the copy, with no reindex.

The index keeps bundle paths relative to the store root. Before that, a copied store read (and
reproduced beside) the original folder, and a moved one said "bundle ... is gone".
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from support.training_scripts import run_script

from modelkb import Store
from modelkb.cli import cli as modelkb_cli


def cli(*args: str) -> str:
    done = CliRunner().invoke(modelkb_cli, list(args), catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.output


def snapshot(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


def test_reproduce_in_a_copied_store_leaves_the_original_untouched(
    tmp_path: Path, toy_script: Path
) -> None:
    original = tmp_path / "store"
    run_id = run_script(toy_script, original, "--seed", "3")
    cli("ls", "--store", str(original))  # the original's index now holds this run
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    before = snapshot(original)

    report = json.loads(cli("reproduce", run_id, "--store", str(copy), "--format", "json"))

    assert report["status"] == "match"
    assert (copy / "toy" / report["reproduction"] / "metadata.json").is_file()
    assert snapshot(original) == before
    assert Store(copy).get(run_id).path.is_relative_to(copy.resolve())


def test_every_command_works_in_a_moved_store(tmp_path: Path, toy_script: Path) -> None:
    first = tmp_path / "store"
    ids = [run_script(toy_script, first, "--seed", str(seed)) for seed in (1, 2)]
    cli("ls", "--store", str(first))
    moved = tmp_path / "elsewhere" / "store"
    moved.parent.mkdir()
    shutil.move(first, moved)
    store = ["--store", str(moved)]

    assert ids[0] in cli("show", ids[0], *store)
    assert {row["id"] for row in json.loads(cli("ls", *store, "--format", "json"))} == set(ids)
    rows = json.loads(cli("query", "learning_rate = 0.1", *store, "--format", "json"))
    assert {row["id"] for row in rows} == set(ids)
    assert "seed" in cli("compare", *ids, *store)
    archive = tmp_path / "run.zip"
    cli("export", ids[0], *store, "--out", str(archive), "--no-serving")
    assert archive.stat().st_size > 0
    site = tmp_path / "site"
    cli("build", *store, "--out", str(site))
    assert (site / "experiments" / ids[0] / "data.json").is_file()
    report = json.loads(cli("reproduce", ids[0], *store, "--format", "json"))
    assert report["status"] == "match"
    cli("repeat", ids[1], *store, "-n", "2")
    cli("rm", ids[1], *store, "--yes")
    assert not (moved / "toy" / ids[1]).exists()

    assert not first.exists(), "a command wrote into the store's old location"
