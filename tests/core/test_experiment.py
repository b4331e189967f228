"""The Experiment API writes complete, valid bundles and never loses a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelkb.bundle import METADATA_FILE, METRICS_FILE, RUN_STATE_FILE, read_bundle, update_metadata
from modelkb.experiment import Experiment
from modelkb.ids import is_id
from modelkb.schema import validate_metadata
from modelkb.store import Store


def test_completed_run_writes_a_valid_bundle(tmp_path: Path, make_run) -> None:
    exp = make_run(tmp_path / "store", epochs=3)
    folder = exp.path
    assert folder == tmp_path / "store" / "digits" / exp.id
    assert is_id(exp.id)
    meta = json.loads((folder / METADATA_FILE).read_text())
    validate_metadata(meta)
    assert meta["status"] == "completed"
    assert meta["project"] == "Digits" and meta["user"] == "alice"
    assert meta["name"].startswith("digits-") and meta["name"].endswith(exp.id[-4:])
    assert meta["hyperparameters"]["epochs"] == 3
    assert meta["hyperparameters"]["optimizer"]["name"] == "Adam"
    assert [e["epoch"] for e in meta["metrics"]["history"]] == [0, 1, 2]
    assert meta["metrics"]["final"]["accuracy"] == pytest.approx(0.9)
    assert meta["metrics"]["final"]["val_accuracy"] == pytest.approx(0.89)
    assert meta["seed"] == 1 and "python" in meta["determinism"]["seeded"]
    assert not (folder / RUN_STATE_FILE).exists()
    lines = (folder / METRICS_FILE).read_text().splitlines()
    assert len(lines) == 3
    listed = {a["path"]: a for a in meta["artifacts"]}
    assert {"metrics.jsonl", "README.md", "requirements.lock"} <= set(listed)
    import hashlib

    for rel, art in listed.items():
        data = (folder / rel).read_bytes()
        assert art["size"] == len(data) and art["sha256"] == hashlib.sha256(data).hexdigest()
    assert "context" in meta and meta["context"]["python"]


def test_ids_are_unique_and_sort_by_time(tmp_path: Path, make_run) -> None:
    runs = [make_run(tmp_path / "s", epochs=1) for _ in range(5)]
    ids = [r.id for r in runs]
    assert len(set(ids)) == 5
    assert ids == sorted(ids)


def test_unseeded_run_says_so(tmp_path: Path, make_run) -> None:
    exp = make_run(tmp_path / "s", seed=None, epochs=1)
    meta = read_bundle(exp.path).metadata
    assert meta["seed"] is None
    assert any(w["source"] == "seed" and "seed=42" in w["message"] for w in meta["warnings"])


def test_exception_marks_failed_and_reraises_unchanged(tmp_path: Path) -> None:
    boom = RuntimeError("loss went NaN")
    with (
        pytest.raises(RuntimeError) as caught,
        Experiment("P", "u", seed=0, store=tmp_path / "s", capture_code=False) as exp,
    ):
        exp.log_metrics({"loss": 1.0}, epoch=0)
        raise boom
    assert caught.value is boom
    meta = read_bundle(exp.path).metadata
    assert meta["status"] == "failed"
    assert "RuntimeError: loss went NaN" in meta["error"]
    assert len(meta["metrics"]["history"]) == 1


def test_manual_api_artifacts_and_final_metrics(tmp_path: Path) -> None:
    extra = tmp_path / "confusion.csv"
    extra.write_text("a,b\n1,2\n")
    with Experiment("P", "u", seed=3, store=tmp_path / "s", notes="first try", tags=["cnn"]) as exp:
        exp.log_artifact(extra)
        exp.log_metrics({"test_accuracy": 0.97})
    meta = read_bundle(exp.path).metadata
    assert meta["metrics"]["final"]["test_accuracy"] == 0.97
    assert meta["notes"] == "first try" and meta["tags"] == ["cnn"]
    assert any(a["path"] == "artifacts/confusion.csv" for a in meta["artifacts"])


def test_unwritable_store_never_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with Experiment("P", "u", seed=0, store=blocker / "store", capture_code=False) as exp:
        exp.log_params(epochs=2)
        exp.log_metrics({"loss": 0.5}, epoch=0)
    assert exp.finished
    assert any(w["source"] in ("store", "metrics") for w in exp.metadata["warnings"])


def test_unknown_keys_survive_read_modify_write(tmp_path: Path, make_run) -> None:
    exp = make_run(tmp_path / "s", epochs=1)
    update_metadata(exp.path, {"x_future_field": {"nested": [1, 2]}})
    update_metadata(exp.path, {"notes": "edited"})
    meta = read_bundle(exp.path).metadata
    assert meta["x_future_field"] == {"nested": [1, 2]}
    assert meta["notes"] == "edited"


def test_invalid_arguments_fail_before_training(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="project"):
        Experiment("  ", store=tmp_path)
    with pytest.raises(TypeError, match="seed"):
        Experiment("P", seed="42", store=tmp_path)  # type: ignore[arg-type]


def test_store_lists_new_runs(tmp_path: Path, make_run) -> None:
    make_run(tmp_path / "s", "Alpha")
    make_run(tmp_path / "s", "Beta")
    store = Store(tmp_path / "s")
    assert store.projects() == {"Alpha": 1, "Beta": 1}


@pytest.mark.parametrize(
    "name", ["val_loss", "valid_loss", "validation_loss", "val/loss", "validation/loss"]
)
def test_validation_metric_spellings_are_filed_as_validation(tmp_path: Path, name: str) -> None:
    from modelkb.metric_names import split_metric

    assert split_metric(name) == ("val", "loss")
    with Experiment("P", "u", store=tmp_path / "s", capture_code=False) as exp:
        exp.log_metrics({"loss": 0.9, name: 0.7}, epoch=0)
    (entry,) = read_bundle(exp.path).metadata["metrics"]["history"]
    assert entry["train"] == {"loss": 0.9} and entry["val"] == {"loss": 0.7}
