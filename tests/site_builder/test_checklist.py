"""The reproducibility checklist on experiment pages: 13 items, project parts that never go stale."""

from __future__ import annotations

import json
import random
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from support.browser import served_page
from support.catalog_site import PAYLOAD_ATTR, read_json
from support.synthetic_store import metadata, write_bundle

from modelkb.reproducibility.checklist import ITEMS, PROJECT_ITEMS, checklist
from modelkb.site_builder.build import build_site
from modelkb.store import Store

PROJECT = "Ablation"
GROUP = f"grp-{PAYLOAD_ATTR}"  # group ids are user text: they reach the page as text only


def _run(store: Path, index: int, *, group: str | None = None, seed: int = 0) -> str:
    meta = metadata(random.Random(index), index, PROJECT, 1_790_000_000_000 + index * 60_000)
    meta["seed"] = seed
    meta["hyperparameters"]["epochs"] = 10 + index
    if group is not None:
        meta["group"] = group
    write_bundle(store, meta)
    return meta["id"]


def _three_runs(root: Path) -> tuple[Path, list[str]]:
    store = root / "store"
    ids = [_run(store, 0, group=GROUP, seed=1), _run(store, 1, group=GROUP, seed=2), _run(store, 2)]
    return store, ids


class _Checklist(HTMLParser):
    """The checklist items of a page as the browser shows them once ``experiment.js`` has run."""

    def __init__(self, project: dict[str, Any]) -> None:
        super().__init__()
        self.project = project
        self.items: dict[str, dict[str, Any]] = {}
        self._item: dict[str, Any] | None = None
        self._stack: list[tuple[str, str | None]] = []

    def _lookup(self, path: list[str]) -> Any:
        node: Any = self.project
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return node

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "li" and attr.get("data-item"):
            self._item = {
                "status": attr["class"].removeprefix("mkb-ck-"),
                "text": "",
                "path": attr.get("data-project"),
            }
            self.items[attr["data-item"]] = self._item
        elif self._item is not None and tag == "span" and attr.get("data-project"):
            path = json.loads(attr["data-project"])
            value = self._lookup(path)
            self._item["text"] += value if isinstance(value, str) else ""
            self._stack.append(("skip", None))
            return
        self._stack.append((tag, None))

    def handle_endtag(self, tag: str) -> None:
        if self._stack:
            self._stack.pop()
        if tag == "li" and self._item is not None:
            if self._item["path"]:
                entry = self._lookup(json.loads(self._item["path"]))
                self._item.update(status=entry["status"], text=entry["text"])
            self._item = None

    def handle_data(self, data: str) -> None:
        if (
            self._item is not None
            and self._stack
            and self._stack[-1][0] == "span"
            and "skip" not in [t for t, _ in self._stack]
        ):
            self._item["text"] += data


def _page_items(
    site: Path, experiment_id: str, slug: str = "ablation"
) -> dict[str, dict[str, Any]]:
    parser = _Checklist(read_json(site / "data" / "checklist" / f"{slug}.json"))
    parser.feed((site / "experiments" / experiment_id / "index.html").read_text(encoding="utf-8"))
    return parser.items


def test_page_shows_13_items_and_the_project_parts_match_the_cli(tmp_path: Path) -> None:
    store_dir, ids = _three_runs(tmp_path)
    build_site(Store(store_dir), tmp_path / "site", zip_bundles=False)
    html = (tmp_path / "site" / "experiments" / ids[0] / "index.html").read_text(encoding="utf-8")
    assert html.count("data-item=") == 13
    assert PAYLOAD_ATTR not in html  # escaped everywhere, data-project attributes included
    items = _page_items(tmp_path / "site", ids[0])
    assert list(items) == [item_id for item_id, _, _ in ITEMS]
    assert items["model"]["status"] in (
        "needs_user_input",
        "filled",
    )  # synthetic notes may be empty
    assert (
        items["data_preprocessing"]["status"] == "needs_user_input"
    )  # the user's words, marked as such
    assert "To complete: State which data were excluded" in html
    # once completed from data/checklist/ablation.json, the page says what `modelkb checklist` says
    store = Store(store_dir)
    for experiment_id in ids:
        items = _page_items(tmp_path / "site", experiment_id)
        cli = {i["id"]: i for i in checklist(store.get(experiment_id), store, flops=False)["items"]}
        for item_id in PROJECT_ITEMS:
            assert (items[item_id]["status"], items[item_id]["text"]) == (
                cli[item_id]["status"],
                cli[item_id]["text"],
            )
    grouped = _page_items(tmp_path / "site", ids[0])
    assert grouped["variation"]["status"] == "filled" and "±" in grouped["variation"]["text"]
    assert "(n=2, seeds [1, 2])" in grouped["variation"]["text"]
    assert (
        f"group {GROUP}: 2 run(s)" in grouped["runs"]["text"]
        and "project: 3 run(s)" in grouped["runs"]["text"]
    )
    assert "across 3 run(s) of the project varied: " in grouped["hyperparameters"]["text"]
    assert "; epochs 10–12;" in grouped["hyperparameters"]["text"]
    single = _page_items(tmp_path / "site", ids[2])
    assert single["variation"]["status"] == "missing"
    assert f"To complete: Run `modelkb repeat {ids[2]} -n 5`" in (
        tmp_path / "site" / "experiments" / ids[2] / "index.html"
    ).read_text(encoding="utf-8")


def test_a_new_run_updates_old_pages_without_rewriting_them(tmp_path: Path) -> None:
    store_dir, ids = _three_runs(tmp_path)
    site = tmp_path / "site"
    build_site(Store(store_dir), site, zip_bundles=False)
    old_page = site / "experiments" / ids[0] / "index.html"
    before = old_page.stat()
    assert "project: 3 run(s)" in _page_items(site, ids[0])["runs"]["text"]
    _run(store_dir, 3, group=GROUP, seed=3)
    report = build_site(Store(store_dir), site, zip_bundles=False)
    assert report.rendered == 1
    after = old_page.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    items = _page_items(site, ids[0])
    assert (
        "project: 4 run(s)" in items["runs"]["text"]
        and f"group {GROUP}: 3 run(s)" in items["runs"]["text"]
    )
    assert "(n=3, seeds [1, 2, 3])" in items["variation"]["text"]
    assert "across 4 run(s) of the project" in items["hyperparameters"]["text"]


def test_checklist_data_of_a_removed_project_is_removed(tmp_path: Path) -> None:
    store_dir, _ = _three_runs(tmp_path)
    build_site(Store(store_dir), tmp_path / "site", zip_bundles=False)
    assert (tmp_path / "site" / "data" / "checklist" / "ablation.json").is_file()
    for path in (store_dir / "ablation").iterdir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    _run(store_dir / "other", 9)
    build_site(Store(store_dir), tmp_path / "site", zip_bundles=False)
    assert not (tmp_path / "site" / "data" / "checklist" / "ablation.json").exists()


def test_flops_are_estimated_for_a_real_model(site_info: Any) -> None:
    pytest.importorskip("onnx")
    html = (site_info.out / "experiments" / site_info.model_id / "index.html").read_text(
        encoding="utf-8"
    )
    start = html.index('data-item="complexity"')
    assert "FLOPs per forward sample" in html[start : html.index("</li>", start)]


@pytest.mark.slow
def test_browser_completes_the_checklist(browser: Any, tmp_path: Path) -> None:
    store_dir, ids = _three_runs(tmp_path)
    build_site(Store(store_dir), tmp_path / "site", zip_bundles=False)
    with served_page(browser, tmp_path / "site", f"experiments/{ids[0]}/#reproducibility") as page:
        page.wait_for_selector("#mkb-checklist[data-ready='true']")
        assert page.locator("#mkb-checklist > li").count() == 13
        runs = page.locator("li[data-item='runs']").inner_text()
        assert "project: 3 run(s)" in runs and f"group {GROUP}: 2 run(s)" in runs
        variation = page.locator("li[data-item='variation']")
        assert variation.get_attribute("class") == "mkb-ck-filled" and "±" in variation.inner_text()
        assert page.locator("li[data-item='data_location'] i").inner_text() == "needs your words"
        assert (
            "downloadable version of the dataset"
            in page.locator("li[data-item='data_location']").inner_text()
        )
        assert page.evaluate("window.__xss") is None


def test_page_shows_the_16_neurips_questions_as_the_cli_drafts_them(tmp_path: Path) -> None:
    from html import escape

    from modelkb.reproducibility.neurips import QUESTIONS, paper_checklist

    store_dir, ids = _three_runs(tmp_path)
    build_site(Store(store_dir), tmp_path / "site", zip_bundles=False)
    html = (tmp_path / "site" / "experiments" / ids[2] / "index.html").read_text(encoding="utf-8")
    section = html.split('id="mkb-paper-checklist"')[1].split("</ol>")[0]
    assert section.count("data-question=") == len(QUESTIONS) == 16
    store = Store(store_dir)
    bundle = store.get(ids[2])
    cli = paper_checklist([(bundle, checklist(bundle, flops=False, project_level=False))], scope="")
    for item in cli["items"]:
        assert f'data-question="{item["id"]}"' in section
        assert escape(item["title"], quote=False) in section
    grouped = (tmp_path / "site" / "experiments" / ids[0] / "index.html").read_text(
        encoding="utf-8"
    )
    significance = grouped.split('data-question="significance"')[1].split("</li>")[0]
    assert "[Yes]" in significance  # a grouped run: mean ± std over its group
    assert PAYLOAD_ATTR not in grouped  # the group id is user text: escaped in the answer too


def test_project_page_shows_the_projects_neurips_checklist(browser: Any, tmp_path: Path) -> None:
    store_dir, ids = _three_runs(tmp_path)
    build_site(Store(store_dir), tmp_path / "site", zip_bundles=False)
    paper = read_json(tmp_path / "site" / "data" / "checklist" / "ablation.json")["paper"]
    assert paper["scope"] == f"project {PROJECT} (3 runs)" and sorted(paper["runs"]) == sorted(ids)
    with served_page(browser, tmp_path / "site", "projects/ablation/") as page:
        page.wait_for_selector("#mkb-paper-checklist[data-ready='true']")
        assert page.locator("#mkb-paper-checklist > li").count() == 16
        significance = page.locator("li[data-question='significance']").inner_text()
        assert (
            "[Yes]" in significance
            and "±" in significance
            and "(n=2, seeds [1, 2])" in significance
        )
        claims = page.locator("li[data-question='claims']").inner_text()
        assert "[needs the authors]" in claims and "To complete:" in claims
        assert page.evaluate("window.__xss") is None
