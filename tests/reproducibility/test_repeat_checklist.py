"""modelkb repeat / group, and the reproducibility checklist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.training_scripts import run_script

from modelkb import Store
from modelkb.cli import main
from modelkb.reproducibility.checklist import ITEMS, checklist, render_markdown
from modelkb.reproducibility.repeat import group_statistics, repeat

STATUSES = {"filled", "needs_user_input", "missing"}


@pytest.mark.slow
def test_repeat_records_a_group_with_mean_and_std(
    trained_store: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(trained_store["store"])
    result = repeat(store, trained_store["torch"], 3)
    assert result.group.startswith("grp-")
    assert sorted(r.bundle.metadata["seed"] for r in result.runs) == [1, 2, 3]
    assert all(r.bundle.metadata["group"] == result.group for r in result.runs)
    stats = group_statistics(store, result.group)
    assert stats["n"] == 3 and sorted(stats["runs"]) == sorted(r.bundle.id for r in result.runs)
    accuracy = stats["metrics"]["val_accuracy"]
    assert accuracy["n"] == 3 and accuracy["std"] > 0
    assert accuracy["min"] <= accuracy["mean"] <= accuracy["max"]
    main(["group", result.group, "--store", str(store.root)])
    assert "±" in capsys.readouterr().out
    main(["show", result.runs[0].bundle.id, "--store", str(store.root)])
    shown = capsys.readouterr().out
    assert (
        f"group {result.group}: 3 run(s)" in shown and "val_accuracy = " in shown and "±" in shown
    )
    # the checklist of a grouped run fills the mean ± std item
    items = {i["id"]: i for i in checklist(result.runs[0].bundle, store)["items"]}
    assert items["variation"]["status"] == "filled" and "±" in items["variation"]["text"]


@pytest.mark.slow
def test_checklist_has_every_item(trained_store: dict, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(trained_store["store"])
    result = checklist(store.get(trained_store["torch"]), store)
    assert [item["id"] for item in result["items"]] == [item_id for item_id, _, _ in ITEMS]
    assert len(result["items"]) == 13
    for item in result["items"]:
        assert item["status"] in STATUSES and item["text"] and item["question"]
        if item["status"] != "filled":
            assert item["how_to_complete"]
    items = {i["id"]: i for i in result["items"]}
    complexity = items["complexity"]["value"]
    assert complexity["parameter_count"] == 38282
    assert (
        complexity["flops_per_sample"] == 232704
    )  # 2 x (conv 82944 + dense 33408) multiply-accumulates
    assert complexity["peak_memory_mb"] > 0 and complexity["training_time_s"] > 0
    assert items["code"]["status"] == "filled" and items["dependencies"]["status"] == "filled"
    assert items["hyperparameters"]["status"] == "needs_user_input"
    assert "log_params" in items["hyperparameters"]["how_to_complete"]
    main(["checklist", trained_store["keras"], "--store", str(store.root), "--format", "json"])
    keras_items = json.loads(capsys.readouterr().out)["items"]
    assert len(keras_items) == 13
    assert (
        next(i for i in keras_items if i["id"] == "complexity")["value"]["flops_per_sample"]
        == 232704
    )


def test_checklist_markdown_of_a_framework_free_run(tmp_path: Path, toy_script: Path) -> None:
    store = Store(tmp_path / "store")
    run = run_script(toy_script, store.root, "--seed", "1")
    result = checklist(store.get(run), store)
    assert len(result["items"]) == 13
    text = render_markdown(result)
    assert text.count("\n1") >= 1 and "13. **Computing infrastructure**" in text
    items = {i["id"]: i for i in result["items"]}
    assert items["model"]["status"] == "missing"  # no callback, no architecture
    assert (
        items["variation"]["status"] == "missing"
        and "modelkb repeat" in items["variation"]["how_to_complete"]
    )
