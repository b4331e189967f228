"""modelkb reproduce: seeded runs match to 1e-6, changed seeds and unseeded runs are explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.training_scripts import run_script

from modelkb import Store
from modelkb.cli import main
from modelkb.reproducibility.compare import compare_runs
from modelkb.reproducibility.reproduce import reproduce


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_seeded_reproduction_matches(trained_store: dict, framework: str) -> None:
    store = Store(trained_store["store"])
    original = trained_store[framework]
    result = reproduce(store, original)
    assert result.comparison.status == "match", result.comparison.summary()
    assert result.comparison.max_abs_difference is not None
    assert result.comparison.max_abs_difference <= 1e-6
    print(f"{framework}: max metric difference {result.comparison.max_abs_difference!r}")
    scopes = {row.scope for row in result.comparison.rows}
    assert {"final", "epoch 0", "epoch 1"} <= scopes
    new = store.get(result.new_id).metadata
    assert new["reproduces"] == original and new["seed"] == 42 and new["id"] != original
    assert new["resources"]["peak_rss_mb"] > 0


@pytest.mark.slow
def test_changed_seed_is_reported_as_mismatch(
    trained_store: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = str(trained_store["store"])
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "reproduce",
                trained_store["keras"],
                "--store",
                store_path,
                "--seed",
                "7",
                "--format",
                "json",
            ]
        )
    assert exit_info.value.code == 2
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "mismatch"
    assert report["seed"] == {"original": 42, "reproduction": 7}
    assert "seed changed: 42 -> 7" in report["reasons"]
    assert report["max_abs_difference"] > 1e-6
    new = Store(store_path).get(report["reproduction"]).metadata
    assert any("MODELKB_SEED_OVERRIDE" in w["message"] for w in new["warnings"])


def test_unseeded_run_differs_as_expected(
    tmp_path: Path, toy_script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "store"
    original = run_script(toy_script, store_path, "--epochs", "2")
    main(["reproduce", original, "--store", str(store_path)])
    out = capsys.readouterr().out
    assert "EXPECTED DIFFERENCE" in out and "not seeded" in out
    runs = Store(store_path).search()
    reproduction = next(r for r in runs if r.flat.get("reproduces") == original)
    assert reproduction.flat.get("seed") is None


def test_seeded_toy_reproduction_matches(tmp_path: Path, toy_script: Path) -> None:
    store = Store(tmp_path / "store")
    original = run_script(toy_script, store.root, "--seed", "3")
    result = reproduce(store, original)
    assert result.comparison.status == "match"
    assert result.comparison.max_abs_difference == 0


def test_compare_flags_missing_metrics(sample_metadata: dict) -> None:
    other = json.loads(json.dumps(sample_metadata))
    del other["metrics"]["final"]["val_loss"]
    other["metrics"]["history"][0]["train"]["loss"] += 1e-3
    result = compare_runs(sample_metadata, other)
    assert result.status == "mismatch"
    assert [r.metric for r in result.missing] == ["val_loss"]
    assert result.max_abs_difference == pytest.approx(1e-3)
