"""The primary metric rule (which key ranks a project's runs, which run is best) and the project
setting that chooses it, down to the built dashboard card and experiment page header."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from modelkb.errors import ProjectSettingsError
from modelkb.project_settings import read_settings, settings_path, write_settings
from modelkb.site_builder.build import build_site
from modelkb.site_builder.catalog import ExperimentSummary, summarize
from modelkb.site_builder.primary_metric import best_run, candidate_keys, metric_key
from modelkb.store import Store


def _run(tmp_path: Path, name: str, **final: float) -> ExperimentSummary:
    metadata = {"id": name, "project": "P", "name": name, "metrics": {"final": final}}
    return summarize(metadata, folder=tmp_path, slug="p", stamp=None)


def test_a_name_stands_for_its_validation_value_then_its_training_value() -> None:
    assert candidate_keys("accuracy") == ("metrics.final.val_accuracy", "metrics.final.accuracy")
    assert candidate_keys("metrics.final.mae") == ("metrics.final.val_mae", "metrics.final.mae")
    assert candidate_keys("val_f1") == ("metrics.final.val_f1",)
    assert candidate_keys(" ") == ()


def test_the_validation_metric_wins_when_any_run_records_it(tmp_path: Path) -> None:
    runs = [_run(tmp_path, "a", accuracy=0.99), _run(tmp_path, "b", accuracy=0.9, val_accuracy=0.8)]
    assert metric_key(runs) == "metrics.final.val_accuracy"
    best = best_run(runs)
    assert best is not None and best.summary.id == "b" and best.value == 0.8
    assert metric_key(runs[:1]) == "metrics.final.accuracy"  # no val_: the training value


def test_defaults_are_accuracy_then_loss_and_a_loss_is_best_lowest(tmp_path: Path) -> None:
    runs = [
        _run(tmp_path, "a", loss=0.5, val_loss=0.7),
        _run(tmp_path, "b", loss=0.9, val_loss=0.6),
    ]
    best = best_run(runs)
    assert best is not None
    assert (best.key, best.name, best.summary.id, best.value) == (
        "metrics.final.val_loss",
        "val_loss",
        "b",
        0.6,
    )
    assert best_run([_run(tmp_path, "c")]) is None


def test_chosen_names_come_first_and_an_unrecorded_name_falls_through(tmp_path: Path) -> None:
    runs = [
        _run(tmp_path, "a", accuracy=0.9, val_mae=3.0, bleu=20.0),
        _run(tmp_path, "b", accuracy=0.8, val_mae=2.0, bleu=30.0),
    ]
    assert best_run(runs, ("mae",)).summary.id == "b"  # type: ignore[union-attr]  # lowest error
    assert best_run(runs, ("bleu",)).summary.id == "b"  # type: ignore[union-attr]  # unknown: higher
    assert best_run(runs, ("f1", None, "accuracy")).summary.id == "a"  # type: ignore[union-attr]
    assert metric_key(runs, ("f1",)) == "metrics.final.accuracy"  # nobody has f1: the default


def test_ties_go_to_the_first_run(tmp_path: Path) -> None:
    runs = [_run(tmp_path, "new", accuracy=0.9), _run(tmp_path, "old", accuracy=0.9)]
    assert best_run(runs).summary.id == "new"  # type: ignore[union-attr]


def test_project_settings_round_trip_keeping_unknown_keys(tmp_path: Path) -> None:
    assert read_settings(tmp_path, "My Project") == {}
    path = settings_path(tmp_path, "My Project")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"owner_note": "keep me"}), encoding="utf-8")
    written = write_settings(tmp_path, "My Project", primary_metric="val_f1")
    assert read_settings(tmp_path, "My Project") == written
    assert written == {"owner_note": "keep me", "primary_metric": "val_f1", "schema_version": 1}
    assert path.read_text(encoding="utf-8").endswith("}\n")  # house JSON: indented, newline
    assert "primary_metric" not in write_settings(tmp_path, "My Project", primary_metric=None)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "cannot be read as JSON"),
        ("[1]", "expected a JSON object, found list"),
        ('{"primary_metric": 3}', r"Received: primary_metric=3"),
    ],
)
def test_an_unusable_settings_file_is_named_with_its_problem(
    tmp_path: Path, text: str, match: str
) -> None:
    path = settings_path(tmp_path, "p")
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProjectSettingsError, match=match) as info:
        read_settings(tmp_path, "p")
    assert info.value.path == path


def _store(tmp_path: Path) -> Path:
    from support.sample_run import sample_metadata
    from support.synthetic_store import write_bundle

    for index, (val_accuracy, val_loss) in enumerate([(0.91, 0.30), (0.97, 0.45), (0.88, 0.25)]):
        meta = sample_metadata()
        meta["id"] = f"01jdx3k9y2q8m4t6v0w1a2b3c{index}"
        meta["name"] = f"run-{index}"
        meta["metrics"]["final"].update(val_accuracy=val_accuracy, val_loss=val_loss)
        write_bundle(tmp_path / "store", meta)
    return tmp_path / "store"


def _card_best(site: Path) -> tuple[str, str, str]:
    html = (site / "index.html").read_text(encoding="utf-8")
    found = re.search(
        r'class="mkb-card-best" data-metric="([^"]+)">best \S+ <strong title="([^"]+)">[^<]+</strong> '
        r'<a class="mkb-card-run" href="experiments/([^/]+)/"',
        html,
    )
    assert found, html
    return found.group(1), found.group(2), found.group(3)


def _header_metric(site: Path, experiment_id: str) -> Any:
    html = (site / "experiments" / experiment_id / "index.html").read_text(encoding="utf-8")
    return re.search(r'data-fact="metric"><dt>[^<]+</dt><dd title="[^"]+">([^<]+)</dd>', html)[1]  # type: ignore[index]


def test_the_build_ranks_by_the_project_setting_then_the_option(tmp_path: Path) -> None:
    store_dir = _store(tmp_path)
    site = tmp_path / "site"
    build_site(Store(store_dir), site, zip_bundles=False)
    assert _card_best(site) == ("metrics.final.val_accuracy", "0.97", "01jdx3k9y2q8m4t6v0w1a2b3c1")
    assert _header_metric(site, "01jdx3k9y2q8m4t6v0w1a2b3c0") == "val_accuracy 0.91"

    build_site(Store(store_dir), site, zip_bundles=False, primary_metric="loss")
    assert _card_best(site) == ("metrics.final.val_loss", "0.25", "01jdx3k9y2q8m4t6v0w1a2b3c2")
    assert _header_metric(site, "01jdx3k9y2q8m4t6v0w1a2b3c0") == "val_loss 0.3"  # re-rendered

    title = json.loads(next(store_dir.glob("*/*/metadata.json")).read_text())["project"]
    write_settings(store_dir, title, primary_metric="accuracy")  # the project's choice wins
    build_site(Store(store_dir), site, zip_bundles=False, primary_metric="loss")
    assert _card_best(site)[0] == "metrics.final.val_accuracy"
    assert _header_metric(site, "01jdx3k9y2q8m4t6v0w1a2b3c2") == "val_accuracy 0.88"


def test_a_bad_settings_file_is_a_notice_not_a_failed_build(tmp_path: Path) -> None:
    store_dir = _store(tmp_path)
    title = json.loads(next(store_dir.glob("*/*/metadata.json")).read_text())["project"]
    settings_path(store_dir, title).write_text("{oops", encoding="utf-8")
    report = build_site(
        Store(store_dir), tmp_path / "site", zip_bundles=False, primary_metric="loss"
    )
    assert report.experiments == 3
    assert any("ignored the settings of project" in notice for notice in report.notices)
    assert _card_best(tmp_path / "site")[0] == "metrics.final.val_loss"


def test_the_cli_sets_a_project_metric_and_builds_with_an_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelkb.cli import main

    store_dir = _store(tmp_path)
    title = json.loads(next(store_dir.glob("*/*/metadata.json")).read_text())["project"]
    site = str(tmp_path / "site")
    main(
        ["build", "--store", str(store_dir), "--out", site, "--no-zip", "--primary-metric", "loss"]
    )
    assert _card_best(tmp_path / "site")[0] == "metrics.final.val_loss"
    main(["project", "--store", str(store_dir), title, "--primary-metric", "accuracy"])
    assert '"primary_metric": "accuracy"' in capsys.readouterr().out
    assert read_settings(store_dir, title)["primary_metric"] == "accuracy"
    main(
        ["build", "--store", str(store_dir), "--out", site, "--no-zip", "--primary-metric", "loss"]
    )
    assert _card_best(tmp_path / "site")[0] == "metrics.final.val_accuracy"
    main(["project", "--store", str(store_dir), title, "--unset-primary-metric"])
    assert "primary_metric" not in read_settings(store_dir, title)
    with pytest.raises(SystemExit):
        main(["project", "--store", str(store_dir), "No such project"])
    assert "there is no project 'No such project'" in capsys.readouterr().err


def test_a_new_choice_re_renders_only_the_pages_it_changes(tmp_path: Path) -> None:
    from support.sample_run import sample_metadata
    from support.synthetic_store import write_bundle

    store_dir = _store(tmp_path)
    other = sample_metadata()
    other.update(id="01jdx3k9y2q8m4t6v0w1a2b3z9", name="other-run", project="Other project")
    write_bundle(store_dir, other)
    site = tmp_path / "site"
    assert build_site(Store(store_dir), site, zip_bundles=False).rendered == 4
    assert build_site(Store(store_dir), site, zip_bundles=False).rendered == 0
    write_settings(store_dir, "Other project", primary_metric="loss")
    assert build_site(Store(store_dir), site, zip_bundles=False).rendered == 1
    assert _header_metric(site, other["id"]).startswith("val_loss ")
    assert build_site(Store(store_dir), site, zip_bundles=False).rendered == 0
    report = build_site(Store(store_dir), site, zip_bundles=False, primary_metric="loss")
    assert report.rendered == 4  # every project's choices changed
