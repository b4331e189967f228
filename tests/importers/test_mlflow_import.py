"""``modelkb import mlflow``: runs written by real MLflow (Keras autolog, the manual API) to its file
store and its SQLite backend become bundles whose every param, tag and metric value equals what
MLflow's own client reads back; importing again adds nothing; bad input is one line."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from modelkb.cli import main
from modelkb.store import Store

PROGRAM = Path(__file__).resolve().parents[1] / "programs" / "mlflow_runs.py"
pytest.importorskip("mlflow")


def _write_runs(workdir: Path, tracking_uri: str) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELKB_", "MLFLOW_"))}
    done = subprocess.run(
        [sys.executable, str(PROGRAM), tracking_uri, str(workdir / "reference.json")],
        cwd=workdir,
        env={**env, "MLFLOW_ALLOW_FILE_STORE": "true", "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((workdir / "reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=["file", "sqlite"])
def tracked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[dict]]:
    """``(source given to the import, MLflow's own reading)`` for each backend."""
    workdir = tmp_path_factory.mktemp(f"mlflow-{request.param}")
    if request.param == "file":
        uri, source = (workdir / "mlruns").as_uri(), str(workdir / "mlruns")
    else:
        uri = source = f"sqlite:///{workdir / 'mlflow.db'}"
    return source, _write_runs(workdir, uri)


def _imported(store: Store) -> dict[str, dict]:
    return {
        store.get(run.id).metadata["imported"]["run_id"]: store.get(run.id).metadata
        for run in store.search()
    }


def _value(history: list[dict], axis: str, key: str) -> dict[int, float]:
    """MLflow key -> {step or epoch: value} as the bundle holds it (val_ names under ``val``)."""
    found = {}
    for entry in history:
        at = entry.get("step", entry["epoch"]) if axis == "step" else entry["epoch"]
        for split, prefix in (("train", ""), ("val", "val_")):
            values = entry.get(split) or {}
            if (
                key.startswith(prefix)
                and key[len(prefix) :] in values
                and (split == "val" or key in values)
            ):
                found[at] = values[key[len(prefix) :]]
    return found


@pytest.mark.slow
def test_every_param_tag_and_metric_equals_mlflows_own_reading(
    tracked: tuple[str, list[dict]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, reference = tracked
    store_path = tmp_path / "store"
    main(["import", "mlflow", source, "--store", str(store_path)])
    assert capsys.readouterr().out.count("imported ") == len(reference) == 3
    runs = _imported(Store(store_path))
    compared = 0
    for expected in reference:
        meta = runs[expected["run_id"]]
        imported = meta["imported"]
        assert imported["from"] == "mlflow" and imported["run_uri"] == f"runs:/{expected['run_id']}"
        assert meta["project"] == expected["experiment"] and meta["name"] == expected["run_name"]
        assert meta["hyperparameters"].get("params", {}) == expected["params"]
        assert imported["tags"] == expected["tags"]
        assert imported["mlflow_status"] in (
            expected["status"],
            str({"FINISHED": 3, "FAILED": 4}[expected["status"]]),
        )
        assert meta["status"] == {"FINISHED": "completed", "FAILED": "failed"}[expected["status"]]
        assert meta["created"].startswith(_iso_prefix(expected["start_time"]))
        history = meta["metrics"]["history"]
        for key, points in expected["metrics"].items():
            if key == "epoch" and imported["axis"] == "epoch":
                continue
            if imported["axis"] == "epoch":  # steps mapped to the epoch MLflow logged beside them
                epochs = {step: int(value) for step, value in expected["metrics"]["epoch"]}
                last = {}
                for step, value in points:
                    last[epochs[step]] = value
                assert _value(history, "epoch", key) == last, key
            else:
                assert _value(history, "step", key) == dict(points), key
            compared += len(points)
    assert compared >= 30  # every point of every metric, both runs with metrics


def _iso_prefix(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.slow
def test_models_and_requirements_are_kept_and_nothing_is_unpickled(
    tracked: tuple[str, list[dict]], tmp_path: Path
) -> None:
    source, _ = tracked
    store_path = tmp_path / "store"
    main(["import", "mlflow", source, "--store", str(store_path)])
    store = Store(store_path)
    by_name = {store.get(r.id).metadata["name"]: store.get(r.id) for r in store.search()}
    keras_run = by_name["keras-autolog"]
    assert (keras_run.path / "model.keras").is_file()  # the logged Keras model, as native weights
    assert (keras_run.path / "mlflow_model" / "MLmodel").is_file()
    lock = (keras_run.path / "requirements.lock").read_text(encoding="utf-8")
    assert lock.startswith("# Imported from mlflow") and "mlflow" in lock
    manual = by_name["hand-written loop"]
    assert "numpy==1.26.4" in (manual.path / "requirements.lock").read_text(encoding="utf-8")
    assert manual.metadata["imported"]["axis"] == "epoch"  # an epoch metric was logged
    assert manual.metadata["hyperparameters"]["learning_rate"] == 0.05
    assert "dependencies" in by_name["crashed"].metadata["imported"]["not_recorded"]


@pytest.mark.slow
def test_importing_again_adds_nothing(
    tracked: tuple[str, list[dict]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, _ = tracked
    store_path = tmp_path / "store"
    main(["import", "mlflow", source, "--store", str(store_path)])
    main(["import", "mlflow", source, "--store", str(store_path), "--experiment", "manual"])
    out = capsys.readouterr().out
    assert out.count("already imported: ") == 2 and len(Store(store_path).search()) == 3


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelkb", "import", "mlflow", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_folder_that_is_no_tracking_store_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    done = _cli(str(tmp_path), "--store", str(tmp_path / "s"))
    assert done.returncode == 1 and "is not an MLflow tracking store" in done.stderr
    assert "Traceback" not in done.stderr
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table t (x)").connection.commit()
    done = _cli(f"sqlite:///{other}", "--store", str(tmp_path / "s"))
    assert done.returncode == 1 and "not MLflow's" in done.stderr


def _file_store(root: Path, run_id: str, meta: str, metrics: dict[str, str] | None = None) -> Path:
    experiment = root / "mlruns" / "1"
    run = experiment / run_id
    (run / "metrics").mkdir(parents=True)
    (experiment / "meta.yaml").write_text("experiment_id: '1'\nname: hostile\n", encoding="utf-8")
    (run / "meta.yaml").write_text(meta, encoding="utf-8")
    for key, text in (metrics or {}).items():
        (run / "metrics" / key).write_text(text, encoding="utf-8")
    return run


def test_a_corrupt_run_is_one_line_and_the_others_import(tmp_path: Path) -> None:
    _file_store(
        tmp_path, "good", "run_id: good\nrun_name: fine\nstatus: 3\n", {"loss": "1 0.5 0\n"}
    )
    _file_store(tmp_path, "bad", "run_id: bad\nstatus: 3\n", {"loss": "not a metric line\n"})
    done = _cli(str(tmp_path / "mlruns"), "--store", str(tmp_path / "s"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"skipped {tmp_path / 'mlruns' / '1' / 'bad'}: metrics/loss line 1 is not 'timestamp value step'"
    ]
    assert [r.flat["name"] for r in Store(tmp_path / "s").search()] == ["fine"]


def test_an_artifact_location_outside_the_store_and_links_are_not_copied(tmp_path: Path) -> None:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "credentials").write_text("aws_secret_access_key = x", encoding="utf-8")
    run = _file_store(
        tmp_path,
        "r1",
        f"run_id: r1\nstatus: 3\nartifact_uri: file://{secret}\n",
        {"loss": "1 0.5 0\n"},
    )
    (run / "artifacts").mkdir()
    done = _cli(str(tmp_path / "mlruns"), "--store", str(tmp_path / "s"))
    assert done.returncode == 0, done.stderr
    [entry] = Store(tmp_path / "s").search()
    bundle = Store(tmp_path / "s").get(entry.id)
    assert not list(bundle.path.rglob("credentials"))
    run2 = _file_store(tmp_path / "two", "r2", "run_id: r2\nstatus: 3\nartifact_uri: artifacts\n")
    (run2 / "artifacts").mkdir()
    (run2 / "artifacts" / "link").symlink_to(secret / "credentials")
    (run2 / "artifacts" / "kept.txt").write_text("kept", encoding="utf-8")
    (run2 / "metrics" / "loss").write_text("1 0.5 0\n", encoding="utf-8")
    done = _cli(str(tmp_path / "two" / "mlruns"), "--store", str(tmp_path / "s2"))
    assert done.returncode == 0, done.stderr
    [entry] = Store(tmp_path / "s2").search()
    second = Store(tmp_path / "s2").get(entry.id)
    assert (second.path / "artifacts" / "kept.txt").is_file()  # the folder was copied ...
    assert not list(second.path.rglob("link"))  # ... but not the link leaving it
    assert any("link" in w["message"] for w in second.metadata["warnings"])


def test_a_run_with_100000_metric_points_keeps_10000_and_says_so(tmp_path: Path) -> None:
    lines = "".join(f"{1000 + step} {step * 0.5} {step}\n" for step in range(100_000))
    _file_store(tmp_path, "long", "run_id: long\nstatus: 3\n", {"loss": lines})
    done = _cli(str(tmp_path / "mlruns"), "--store", str(tmp_path / "s"))
    assert done.returncode == 0, done.stderr
    [entry] = Store(tmp_path / "s").search()
    metadata = Store(tmp_path / "s").get(entry.id).metadata
    assert len(metadata["metrics"]["history"]) == 10_000
    assert metadata["metrics"]["history"][-1]["train"]["loss"] == 99_999 * 0.5
    assert any("kept 10,000 of 100,000" in w["message"] for w in metadata["warnings"])
