"""``modelkb build`` without a browser: layout, incremental rebuilds, problems, escaping, sizes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.catalog_site import PAYLOAD_ATTR, PAYLOAD_SCRIPT, SiteInfo, read_json
from support.synthetic_store import make_store

from modelkb.cli import cli
from modelkb.site_builder.build import build_site
from modelkb.site_builder.catalog import decode_cell, encode_cell
from modelkb.site_builder.engines import ENGINES
from modelkb.site_builder.shell import SLOT, TITLE_TOKEN
from modelkb.site_builder.table_data import read_project_table
from modelkb.store import Store


def test_layout_of_a_built_site(site_info: SiteInfo) -> None:
    out = site_info.out
    for rel in (
        "index.html",
        "projects/index.html",
        "projects/sweep/index.html",
        "compare/index.html",
        "about/index.html",
        "data/projects/sweep/index.json",
        ENGINES[site_info.engine].search_index,
        "vendor/netron/index.html",
        "vendor/onnxruntime-web/ort.wasm.min.js",
        "vendor/echarts/echarts.min.js",
        "vendor/echarts/LICENSE",
        "vendor/echarts/NOTICE",
        f"experiments/{site_info.model_id}/model.onnx",
        f"experiments/{site_info.model_id}/bundle.zip",
        f"experiments/{site_info.model_id}/README.md",
        f"experiments/{site_info.model_id}/data.json",
    ):
        assert (out / rel).is_file(), rel
    assert not (out / "experiments" / "shell").exists()
    for html in out.rglob("*.html"):
        if "vendor" in html.parts or ".modelkb-build" in html.parts:
            continue
        text = html.read_text(encoding="utf-8")
        assert SLOT not in text and TITLE_TOKEN not in text, html
        assert "fonts.googleapis" not in text and "https://cdn" not in text, html


def test_corrupt_bundle_is_listed_and_skipped(site_info: SiteInfo, tmp_path: Path) -> None:
    out = str(tmp_path / "site")
    result = CliRunner().invoke(
        cli, ["build", "--store", str(site_info.store), "--out", out, "--engine", site_info.engine]
    )
    assert result.exit_code == 0, result.output
    assert f"skipped {site_info.corrupt}" in result.output
    assert "not valid JSON" in result.output
    assert "Built 8 experiment(s) in 3 project(s)" in result.output
    assert not (tmp_path / "site" / "experiments" / site_info.corrupt.name).exists()
    about = (tmp_path / "site" / "about" / "index.html").read_text(encoding="utf-8")
    assert site_info.corrupt.name in about


def test_user_text_is_escaped_in_every_file(site_info: SiteInfo) -> None:
    for path in site_info.out.rglob("*"):
        if (
            path.suffix not in (".html", ".json")
            or "vendor" in path.parts
            or ".modelkb-build" in path.parts
        ):
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".html":
            assert "<script>window.__xss" not in text, path
            assert "<img src=x onerror" not in text, path
    page = (site_info.out / "experiments" / site_info.xss_id / "index.html").read_text(
        encoding="utf-8"
    )
    assert "&lt;script&gt;window.__xss=1" in page
    data = read_json(site_info.out / "experiments" / site_info.xss_id / "data.json")
    assert data["cells"]["notes"].startswith(
        "notes <script>"
    )  # JSON keeps the text; JS uses textContent
    assert any(key.endswith(PAYLOAD_ATTR.lower()) for key in data["cells"])  # a parameter *name*
    assert PAYLOAD_SCRIPT in data["cells"].values()


def test_search_index_lists_experiments(site_info: SiteInfo) -> None:
    engine = ENGINES[site_info.engine]
    docs = read_json(site_info.out / engine.search_index)[engine.entries_key]
    locations = {doc["location"] for doc in docs}
    assert f"experiments/{site_info.model_id}/" in locations
    assert "projects/sweep/" in locations
    entry = next(doc for doc in docs if doc["location"] == f"experiments/{site_info.model_id}/")
    for word in ("Digits torch", "torch", "Adam", "cnn", "Tiny CNN", site_info.model_id):
        assert word in entry["text"]


def test_incremental_rebuild_renders_only_new_runs(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    make_store(store_dir, count=60, projects=3)
    store = Store(store_dir)
    first = build_site(store, tmp_path / "site")
    assert (first.experiments, first.rendered, first.shell_rebuilt) == (60, 60, True)
    again = build_site(store, tmp_path / "site")
    assert (again.rendered, again.shell_rebuilt) == (0, False)
    make_store(store_dir, count=1, projects=1, seed=99, start_ms=1_800_000_000_000)
    third = build_site(store, tmp_path / "site")
    assert (third.experiments, third.rendered, third.shell_rebuilt) == (61, 1, False)
    manifest, columns = read_project_table(tmp_path / "site" / "data" / "projects" / "project-a")
    assert manifest["rows"] == 21 and len(columns["id"]) == 21
    removed = next((store_dir / "project-b").iterdir())
    shutil.rmtree(removed)
    fourth = build_site(store, tmp_path / "site")
    assert (
        fourth.experiments == 60 and not (tmp_path / "site" / "experiments" / removed.name).exists()
    )


@pytest.mark.parametrize("primary_metric", [None, "loss"])
def test_incremental_rebuild_writes_what_a_fresh_build_writes(
    tmp_path: Path, primary_metric: str | None
) -> None:
    """Unchanged projects come from the build cache (digests, search entries), never re-read."""
    store_dir = tmp_path / "store"
    make_store(store_dir, count=45, projects=3)
    build_site(Store(store_dir), tmp_path / "site", primary_metric=primary_metric)
    make_store(store_dir, count=1, projects=1, seed=5, start_ms=1_800_000_000_000)
    shutil.rmtree(next((store_dir / "project-c").iterdir()))
    again = build_site(Store(store_dir), tmp_path / "site", primary_metric=primary_metric)
    assert (again.experiments, again.rendered) == (45, 1)
    runs = tmp_path / "site" / ".modelkb-build" / "runs"
    stamps = {p.name: p.stat().st_mtime_ns for p in runs.iterdir()}
    make_store(store_dir, count=1, projects=1, seed=6, start_ms=1_800_000_100_000)
    build_site(Store(store_dir), tmp_path / "site", primary_metric=primary_metric)
    assert {p.name for p in runs.iterdir() if p.stat().st_mtime_ns != stamps[p.name]} == {
        "project-a.json"
    }  # one new run rewrites its own project's cache only
    fresh = build_site(Store(store_dir), tmp_path / "fresh", primary_metric=primary_metric)
    assert fresh.experiments == 46
    pages = ["index.html", "projects/index.html", "search/search_index.json"]
    pages += [f"projects/{slug}/index.html" for slug in ("project-a", "project-b", "project-c")]
    for rel in pages:  # the unchanged projects' pages too (their plots' metric directions)
        assert (tmp_path / "site" / rel).read_text() == (tmp_path / "fresh" / rel).read_text(), rel
    for slug in ("project-a", "project-b", "project-c"):
        built = read_project_table(tmp_path / "site" / "data" / "projects" / slug)
        assert built == read_project_table(tmp_path / "fresh" / "data" / "projects" / slug)


def test_experiment_pages_stay_small(tmp_path: Path) -> None:
    make_store(tmp_path / "store", count=20, projects=2)
    build_site(Store(tmp_path / "store"), tmp_path / "site", zip_bundles=False)
    for folder in (tmp_path / "site" / "experiments").iterdir():
        size = sum(f.stat().st_size for f in folder.iterdir() if f.suffix in (".html", ".json"))
        # two checklists (13 reproducibility items, 16 NeurIPS answers) make most of a page
        assert size < 32_000, (folder.name, size)


@pytest.mark.parametrize(
    "value",
    [3, 10.0, 0.001, 1e-05, 1e16, 123456789012, True, "12", "012", "Adam", float("inf"), 2**60],
)
def test_cells_round_trip_text_and_number(value: object) -> None:
    from modelkb.fields import text_form, to_number

    text, number = text_form(value), to_number(value)
    assert decode_cell(json.loads(json.dumps(encode_cell(number, text)))) == (text, number)


def test_output_inside_the_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside the store"):
        build_site(Store(tmp_path), tmp_path / "site")


def _user_folder(root: Path) -> dict[Path, str]:
    """A user's project folder whose names collide with the catalog's layout."""
    files = {
        root / "index.html": "<p>my page</p>",
        root / "projects" / "thesis" / "notes.md": "chapter 1",
        root / "data" / "projects" / "survey.json": "[1, 2]",
        root / "experiments" / "run1" / "log.txt": "ok",
        root / "train.py": "print('hi')",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def test_build_refuses_a_folder_of_other_files(tmp_path: Path) -> None:
    make_store(tmp_path / "store", count=3, projects=1)
    files = _user_folder(tmp_path / "work")
    result = CliRunner().invoke(
        cli, ["build", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "work")]
    )
    assert (
        isinstance(result.exception, ValueError) and "--force" in result.exception.hint
    )  # main() prints it in one line
    assert all(path.read_text() == text for path, text in files.items())
    assert not (tmp_path / "work" / ".modelkb-build").exists()


def test_forced_build_and_rebuilds_never_delete_what_they_did_not_write(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    make_store(store_dir, count=4, projects=2)
    files = _user_folder(tmp_path / "work")
    del files[
        tmp_path / "work" / "index.html"
    ]  # the catalog's home page replaces it: that is what --force says
    first = build_site(Store(store_dir), tmp_path / "work", force=True)
    assert first.experiments == 4
    removed = next(p for p in store_dir.rglob("metadata.json")).parent
    shutil.rmtree(removed)
    Store(store_dir).reindex()
    for incremental in (True, False):  # the incremental and the --full rebuild
        again = build_site(Store(store_dir), tmp_path / "work", incremental=incremental)
        assert again.experiments == 3
        assert not (
            tmp_path / "work" / "experiments" / removed.name
        ).exists()  # its own stale page goes
        assert all(
            path.read_text() == text for path, text in files.items()
        )  # the user's files stay


@pytest.mark.parametrize("where", ["parent", "same"])
def test_build_refuses_a_folder_holding_the_store(tmp_path: Path, where: str) -> None:
    make_store(tmp_path / "store", count=1, projects=1)
    out = tmp_path if where == "parent" else tmp_path / "store"
    with pytest.raises(ValueError, match="store"):
        build_site(Store(tmp_path / "store"), out, force=True)
    assert len(list((tmp_path / "store").rglob("metadata.json"))) == 1


def test_a_megabyte_value_is_shortened_on_every_page(tmp_path: Path) -> None:
    from modelkb.experiment import Experiment
    from modelkb.site_builder.catalog import LONG_VALUE

    huge = ("lorem ipsum dolor " * 60_000)[:1_000_000]
    with Experiment(
        "Long", "u", store=tmp_path / "store", capture_code=False, notes="n" * 1_000_000
    ) as exp:
        exp.log_params(prompt=huge, epochs=1)
        exp.set_dataset(location="https://example.org/" + "y" * 1_000_000)
        exp.log_metrics({"loss": 0.5}, epoch=0)
    build_site(Store(tmp_path / "store"), tmp_path / "site", zip_bundles=False)
    page = tmp_path / "site" / "experiments" / exp.id / "index.html"
    for path in (
        page,
        page.with_name("data.json"),
        *(tmp_path / "site" / "data" / "projects" / "long").iterdir(),
    ):
        assert path.stat().st_size < 60_000, (
            path
        )  # each of the three long values at most LONG_VALUE once or twice
    html = page.read_text(encoding="utf-8")
    assert (
        '<td class="mkb-long"><details><summary>lorem ipsum' in html
    )  # an expander, its head visible
    assert (
        "1,000,000 characters in all" in html
        and huge[:LONG_VALUE] in html
        and huge[: LONG_VALUE + 1] not in html
    )
    assert (
        Store(tmp_path / "store").get(exp.id).metadata["hyperparameters"]["params"]["prompt"]
        == huge
    )  # the bundle keeps it whole


def test_dashboard_numbers_are_for_people_with_the_full_value_on_hover(tmp_path: Path) -> None:
    from support.sample_run import sample_metadata
    from support.synthetic_store import write_bundle

    meta = sample_metadata()
    meta["metrics"]["final"]["val_accuracy"] = 0.95833333333333334
    write_bundle(tmp_path / "store", meta)
    build_site(Store(tmp_path / "store"), tmp_path / "site", zip_bundles=False)
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert '<strong title="0.9583333333333334">0.9583</strong>' in html  # the project card
    recent = (  # the recent experiments: the run's value of the project's primary metric
        '<td class="mkb-recent-metric" data-metric="metrics.final.val_accuracy">'
        'val_accuracy <strong title="0.9583333333333334">0.9583</strong></td>'
    )
    assert recent in html
    link = f'<a class="mkb-card-run" href="experiments/{meta["id"]}/" title="{meta["id"]}">'
    assert f"{link}{meta['name']}</a>" in html  # which run is best, a link to it


def test_a_catalog_without_echarts_does_not_ask_for_it(tmp_path: Path) -> None:
    from modelkb.site_builder import pages

    project = pages.ProjectInfo("P", "p")
    assert 'data-echarts="../../vendor/echarts/echarts.min.js"' in pages.render_project(project)
    without = pages.render_project(project, plots=False)
    assert 'id="mkb-plots"' in without and "data-echarts" not in without  # plots.js says why


def test_a_site_of_the_older_single_manifest_is_rebuilt_and_cleaned(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    make_store(store_dir, count=4, projects=1)
    site = tmp_path / "site"
    build_site(Store(store_dir), site)
    gone = next((store_dir / "project-a").iterdir())
    manifest = site / ".modelkb-build" / "manifest.json"
    runs = json.loads(manifest.read_text())["runs"]
    old = {  # what ModelKB wrote before the cache was split by project
        "format": 1,
        "render_key": "x",
        "projects": {"project-a": "k"},
        "summaries": {i: {"slug": slug, "path": path} for i, (slug, path, _) in runs.items()},
    }
    manifest.write_text(json.dumps(old))
    shutil.rmtree(gone)
    again = build_site(Store(store_dir), site)
    assert (again.experiments, again.rendered) == (3, 3)
    assert not (site / "experiments" / gone.name).exists()
