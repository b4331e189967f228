"""The CLI: ls, show, query, compare, rm, reindex; one-line errors with a next step."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest


def modelkb(
    *args: str, store: Path | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    extra = ["--store", str(store)] if store is not None else []
    argv = (
        [sys.executable, "-m", "modelkb", *args[:1], *extra, *args[1:]]
        if args
        else [sys.executable, "-m", "modelkb"]
    )
    return subprocess.run(argv, capture_output=True, text=True, input=input, timeout=120)


@pytest.fixture
def populated(tmp_path: Path, make_run) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "store"
    ids = {
        "adam_good": make_run(root, "Digits", epochs=12, accuracy=0.95).id,
        "adam_short": make_run(root, "Digits", epochs=5, accuracy=0.97).id,
        "sgd_good": make_run(
            root, "Digits", epochs=15, accuracy=0.96, params={"optimizer": "SGD"}
        ).id,
        "adam_weak": make_run(root, "Digits", epochs=20, accuracy=0.80).id,
        "other": make_run(root, "Iris", epochs=30, accuracy=0.99).id,
    }
    return root, ids


def test_query_the_papers_expression(populated) -> None:
    root, ids = populated
    done = modelkb(
        "query", "epochs > 10 && optimizer = Adam && accuracy > 0.9", "--format", "json", store=root
    )
    assert done.returncode == 0, done.stderr
    found = {row["id"] for row in json.loads(done.stdout)}
    assert found == {ids["adam_good"], ids["other"]}
    done = modelkb(
        "query",
        "epochs > 10 && optimizer = adam && accuracy > 0.9",
        "--project",
        "Digits",
        "--format",
        "csv",
        "--columns",
        "id,epochs,optimizer,accuracy",
        store=root,
    )
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["id"] for r in rows] == [ids["adam_good"]]
    assert rows[0]["optimizer"] == "Adam" and rows[0]["epochs"] == "12"


def test_query_syntax_error_points_at_the_column(populated) -> None:
    root, _ = populated
    done = modelkb("query", "epochs > && optimizer = Adam", store=root)
    assert done.returncode != 0
    assert "column 10" in done.stderr
    assert "Traceback" not in done.stderr
    done = modelkb("query", "epohcs > 3", store=root)
    assert done.returncode != 0 and "epochs" in done.stderr and "Traceback" not in done.stderr


def test_ls_sort_and_formats(populated) -> None:
    root, ids = populated
    done = modelkb(
        "ls",
        "Digits",
        "--sort",
        "-accuracy",
        "--format",
        "json",
        "--columns",
        "id,accuracy",
        store=root,
    )
    rows = json.loads(done.stdout)
    assert [r["id"] for r in rows] == [
        ids["adam_short"],
        ids["sgd_good"],
        ids["adam_good"],
        ids["adam_weak"],
    ]
    table = modelkb("ls", store=root)
    assert table.returncode == 0 and ids["other"][:10] in table.stdout


def test_show_compare_rm_reindex(populated) -> None:
    root, ids = populated
    done = modelkb("show", ids["sgd_good"][:12], store=root)
    assert done.returncode == 0 and "hyperparameters.optimizer.name = SGD" in done.stdout
    meta = json.loads(modelkb("show", ids["sgd_good"], "--json", store=root).stdout)
    assert meta["id"] == ids["sgd_good"]
    done = modelkb("compare", ids["adam_good"], ids["sgd_good"], "--format", "json", store=root)
    fields = {row["field"] for row in json.loads(done.stdout)}
    assert "hyperparameters.optimizer.name" in fields and "hyperparameters.epochs" in fields
    assert "project" not in fields and "user" not in fields  # identical ones hidden
    done = modelkb("rm", ids["adam_weak"], "--yes", store=root)
    assert done.returncode == 0
    done = modelkb("reindex", store=root)
    assert "indexed 4 experiment(s)" in done.stdout


def test_errors_are_one_line_with_a_hint(populated) -> None:
    root, ids = populated
    done = modelkb("show", "zzzzzz", store=root)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: no experiment") and "Hint:" in done.stderr
    assert "Traceback" not in done.stderr
    done = modelkb("show", "0", store=root)  # every id starts with 0 in this century
    assert done.returncode == 1 and "matches 5 experiments" in done.stderr
    done = modelkb("compare", ids["other"], store=root)
    assert done.returncode == 2 and "at least two" in done.stderr


def test_empty_store_says_what_to_do(tmp_path: Path) -> None:
    done = modelkb("ls", store=tmp_path / "nothing")
    assert done.returncode == 0 and "No experiments" in done.stderr


def _bad_invocations(root: Path, run_id: str, tmp_path: Path) -> list[tuple[list[str], str]]:
    """(argv, text the one-line error must name) for user mistakes across the commands."""
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("not a store", encoding="utf-8")
    missing = tmp_path / "no-such-folder"
    store = ["--store", str(root)]
    return [
        (["show", "zzzz-missing", *store], "zzzz-missing"),
        (["compare", run_id, "zzzz-missing", *store], "zzzz-missing"),
        (["rm", "zzzz-missing", "--yes", *store], "zzzz-missing"),
        (["checklist", "zzzz-missing", *store], "zzzz-missing"),
        (["package", "zzzz-missing", *store, "--out", str(tmp_path / "pkg")], "zzzz-missing"),
        (["export", "zzzz-missing", *store], "zzzz-missing"),
        (["reproduce", "zzzz-missing", *store], "zzzz-missing"),
        (["query", "epochs >> 3", *store], "column"),
        (["query", "accuracy > 0.9 &&", *store], "&&"),
        (["ls", "--store", str(a_file)], "a-file.txt"),
        (["build", "--store", str(missing)], "no-such-folder"),
        (["build", *store, "--out", str(root / "site")], "site"),
        (["site", "serve", str(missing)], "no-such-folder"),
        (["import", str(missing / "run.zip"), *store], "run.zip"),
        (["import", str(a_file), *store], "a-file.txt"),
        (["export", run_id, *store, "--out", str(a_file / "x.zip")], "a-file.txt"),
        (["repeat", run_id, "-n", "0", *store], "0"),
        (["build", *store, "--port", "99999", "--serve"], "99999"),
        (["clone", "ftp://nowhere/run", *store], "ftp://nowhere/run"),
    ]


def test_user_mistakes_end_in_one_line_never_a_traceback(populated, tmp_path: Path) -> None:
    root, ids = populated
    for argv, named in _bad_invocations(root, ids["adam_good"], tmp_path):
        done = modelkb(*argv)
        output = done.stdout + done.stderr
        assert done.returncode != 0, (argv, output)
        assert "Traceback" not in output, (argv, output)
        assert named in output, (argv, output)
