"""Imported runs are first-class: compared with a native run, built into the catalog (saying what
the tool did not record), pushed to S3 and cloned back like any bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.processes import run_cli
from support.runs import artifact_bytes, make_bundle

from modelkb.site_builder.build import build_site
from modelkb.store import Store

pytest.importorskip("boto3")


def _mlflow_file_store(root: Path) -> Path:
    """A small MLflow file store in MLflow 3's layout: one run with a logged Keras model."""
    experiment = root / "mlruns" / "7"
    run = experiment / "abc123"
    for folder in ("params", "metrics", "tags", "artifacts"):
        (run / folder).mkdir(parents=True)
    (experiment / "meta.yaml").write_text(
        "experiment_id: '7'\nname: Digits CNN\n", encoding="utf-8"
    )
    (run / "meta.yaml").write_text(
        "run_id: abc123\nrun_name: from-mlflow\nstatus: 3\nstart_time: 1790000000000\n"
        "end_time: 1790000060000\nuser_id: ana\nartifact_uri: artifacts\n",
        encoding="utf-8",
    )
    (run / "params" / "lr").write_text("0.01", encoding="utf-8")
    (run / "tags" / "team").write_text("vision", encoding="utf-8")
    (run / "metrics" / "loss").write_text("1 0.9 0\n2 0.5 1\n", encoding="utf-8")
    (run / "metrics" / "val_accuracy").write_text("1 0.7 0\n2 0.8 1\n", encoding="utf-8")
    (run / "artifacts" / "notes.txt").write_text("trained on digits", encoding="utf-8")
    model = experiment / "models" / "m-1"
    (model / "artifacts" / "data").mkdir(parents=True)
    (model / "meta.yaml").write_text("model_id: m-1\nsource_run_id: abc123\n", encoding="utf-8")
    (model / "artifacts" / "MLmodel").write_text(
        "flavors:\n  keras:\n    data: data\n", encoding="utf-8"
    )
    (model / "artifacts" / "data" / "model.keras").write_bytes(b"PK\x03\x04 not a real zip")
    (model / "artifacts" / "data" / "extra.pth").write_bytes(b"\x80\x04pickle")
    return root / "mlruns"


@pytest.fixture
def both(tmp_path: Path, store: Store) -> tuple[str, str]:
    """``(imported id, native id)`` in ``store``."""
    native = make_bundle(store.root)
    done = run_cli(
        "import", "mlflow", str(_mlflow_file_store(tmp_path)), "--store", str(store.root)
    )
    assert done.returncode == 0, done.stderr
    imported = next(r.id for r in store.search() if r.id != native)
    return imported, native


def test_an_imported_run_compares_with_a_native_one(both: tuple[str, str], store: Store) -> None:
    imported, native = both
    done = run_cli("compare", imported, native, "--store", str(store.root))
    assert done.returncode == 0, done.stderr
    assert "imported.from" in done.stdout and "mlflow" in done.stdout
    meta = store.get(imported).metadata
    assert meta["imported"]["untrusted"] == ["mlflow_model/data/extra.pth"]
    assert meta["hyperparameters"]["learning_rate"] == 0.01
    assert meta["metrics"]["final"] == {"loss": 0.5, "val_accuracy": 0.8}
    notes = store.get(imported).path / "artifacts" / "notes.txt"
    assert notes.read_text(encoding="utf-8") == "trained on digits"


def test_the_catalog_says_what_mlflow_did_not_record(
    both: tuple[str, str], store: Store, tmp_path: Path
) -> None:
    imported, _ = both
    build_site(store, tmp_path / "site", zip_bundles=False)
    page = (tmp_path / "site" / "experiments" / imported / "index.html").read_text(encoding="utf-8")
    assert "Imported from mlflow" in page and "Not recorded by mlflow: " in page and "seed" in page


def test_an_imported_run_is_pushed_and_cloned_back(
    both: tuple[str, str], store: Store, moto: str, s3, tmp_path: Path
) -> None:
    imported, _ = both
    s3.create_bucket(Bucket="models")
    original = artifact_bytes(store.get(imported).path)
    done = run_cli(
        "push", imported, "s3://models/team", "--endpoint-url", moto, "--store", str(store.root)
    )
    assert done.returncode == 0, done.stderr
    gid = done.stdout.strip().splitlines()[-1]
    other = tmp_path / "other-store"
    done = run_cli("clone", gid, "--store", str(other), env={"AWS_ENDPOINT_URL": moto})
    assert done.returncode == 0, done.stderr
    cloned = Store(other).get(imported)
    assert artifact_bytes(cloned.path) == original
    assert cloned.metadata["imported"]["run_uri"] == "runs:/abc123"
    assert json.loads((cloned.path / "metadata.json").read_text())["imported"]["from"] == "mlflow"


def test_an_mlflow_2_run_with_its_model_in_the_artifacts(tmp_path: Path, store: Store) -> None:
    """MLflow 2.x logged models inside the run's artifacts (``artifacts/model/MLmodel``)."""
    experiment = tmp_path / "mlruns" / "0"
    run = experiment / "r2"
    model = run / "artifacts" / "model"
    (model / "data").mkdir(parents=True)
    (run / "metrics").mkdir()
    (experiment / "meta.yaml").write_text("experiment_id: '0'\nname: Default\n", encoding="utf-8")
    (run / "meta.yaml").write_text(
        "run_uuid: r2\nstatus: 3\nartifact_uri: artifacts\n", encoding="utf-8"
    )
    (run / "metrics" / "loss").write_text("1 0.5 0\n", encoding="utf-8")
    (model / "MLmodel").write_text("flavors:\n  onnx:\n    data: model.onnx\n", encoding="utf-8")
    (model / "model.onnx").write_bytes(b"onnx bytes")
    (model / "requirements.txt").write_text("onnx==1.17.0\n", encoding="utf-8")
    done = run_cli("import", "mlflow", str(tmp_path / "mlruns"), "--store", str(store.root))
    assert done.returncode == 0, done.stderr
    [entry] = store.search()
    bundle = store.get(entry.id)
    assert (bundle.path / "model.onnx").read_bytes() == b"onnx bytes"
    assert "onnx==1.17.0" in (bundle.path / "requirements.lock").read_text(encoding="utf-8")
