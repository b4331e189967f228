"""The project table over its columnar data (one file per field) in headless Chromium.

The page fetches only the columns it shows and the fields a query names; what it selects is
exactly what the store's own query (``Store.search``, the SQLite backend) selects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.browser import served_page
from support.synthetic_store import make_store

from modelkb.site_builder.build import build_site
from modelkb.site_builder.table_data import MANIFEST, read_project_table
from modelkb.store import Store

pytestmark = pytest.mark.slow

ROWS = 600
QUERIES = [
    "epochs > 10 && optimizer = Adam && accuracy > 0.9",
    "context.git.dirty = true && lr < 0.01",
    "(framework = torch || batch_size >= 64) && !(status = failed)",
    "tags ~ baseline || notes ~ 'learning rate'",
    "created >= 2026-09-21 && user != ada",
    "dataset.samples.train > 1400 && val_accuracy <= 0.8",
    "seed = null",
    "filters = 16 and dropout > 0.2",
]


@pytest.fixture(scope="module")
def big_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("table")
    make_store(root / "store", count=ROWS, projects=1, seed=3)
    build_site(Store(root / "store"), root / "site", zip_bundles=False)
    return root / "store", root / "site"


@pytest.fixture
def table_page(browser: Any, big_site: tuple[Path, Path]) -> Iterator[Any]:
    with served_page(browser, big_site[1], "projects/project-a/") as page:
        page.fetched = []
        page.on("request", lambda req: page.fetched.append(req.url.split("?")[0]))
        page.reload()  # served_page already navigated: load again with the listener in place
        page.wait_for_selector("#mkb-table-app[data-ready='true']")
        yield page


def _field_files(site: Path) -> dict[str, str]:
    manifest, _ = read_project_table(site / "data" / "projects" / "project-a")
    return {entry["key"]: entry["file"] for entry in manifest["fields"]}


def _fetched_keys(page: Any, files: dict[str, str]) -> set[str]:
    by_file = {file: key for key, file in files.items()}
    prefix = "/data/projects/project-a/"
    return {
        by_file[url.split(prefix, 1)[1]]
        for url in page.fetched
        if prefix in url and not url.endswith(MANIFEST)
    }


def test_the_table_fetches_only_the_columns_it_needs(
    table_page: Any, big_site: tuple[Path, Path]
) -> None:
    files = _field_files(big_site[1])
    manifest, _ = read_project_table(big_site[1] / "data" / "projects" / "project-a")
    shown = set(
        table_page.eval_on_selector_all(
            "#mkb-table thead th[data-key]", "ths => ths.map(t => t.getAttribute('data-key'))"
        )
    )
    wanted = shown | {"id"}
    if table_page.locator("#mkb-plots[data-echarts]").count():
        table_page.wait_for_selector("#mkb-plots[data-ready='true']")
        wanted |= {  # the plots read the numeric fields and the hyperparameters
            f["key"]
            for f in manifest["fields"]
            if f["kind"] in ("num", "mixed") or f["key"].startswith("hyperparameters.")
        }
    first = _fetched_keys(table_page, files)
    assert first == wanted, first ^ wanted
    texts = {f["key"] for f in manifest["fields"] if f["kind"] == "text"} - first
    assert {"context.os", "context.cwd", "context.git.commit"} <= texts  # left on the server
    result = table_page.evaluate("window.ModelKBTable.apply('context.os ~ linux && epochs > 20')")
    assert 0 < result["count"] < ROWS
    assert _fetched_keys(table_page, files) == first | {"context.os"}
    # The public API fetches any other field on demand.
    values = table_page.evaluate("window.ModelKBTable.values('context.cwd').then(v => v.t)")
    assert len(values) == result["count"] and set(values) == {"/home/bench"}
    assert _fetched_keys(table_page, files) == first | {"context.os", "context.cwd"}


def test_filtering_the_columns_selects_what_the_store_selects(
    table_page: Any, big_site: tuple[Path, Path]
) -> None:
    store = Store(big_site[0])
    for query in QUERIES:
        expected = [run.id for run in store.search(query)]
        result = table_page.evaluate(f"window.ModelKBTable.apply({query!r})")
        assert "error" not in result, (query, result)
        shown = table_page.evaluate("window.ModelKBTable.filteredIds()")
        assert sorted(shown) == sorted(expected), query
        assert 0 < len(expected) < ROWS or query == "seed = null", (query, len(expected))
    shown_count = table_page.locator("#mkb-count").inner_text()
    assert shown_count.startswith(f"{len(expected)} of {ROWS}")


def test_columns_are_dictionary_encoded_where_values_repeat(big_site: tuple[Path, Path]) -> None:
    folder = big_site[1] / "data" / "projects" / "project-a"
    manifest, columns = read_project_table(folder)
    fields = {entry["key"]: entry for entry in manifest["fields"]}
    assert manifest["rows"] == ROWS == len(columns["id"])
    assert fields["hyperparameters.optimizer.name"]["kind"] == "text"
    assert fields["hyperparameters.epochs"]["kind"] == "num"
    assert 1 <= fields["hyperparameters.epochs"]["min"] <= fields["hyperparameters.epochs"]["max"]
    optimizer = (folder / fields["hyperparameters.optimizer.name"]["file"]).read_text()
    assert optimizer.startswith('{"dict":')
    assert (folder / fields["id"]["file"]).read_text().startswith('{"values":')
