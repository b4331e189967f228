"""The compare page in headless Chromium at 1280x900 with 10 and 20 runs side by side.

The catalog is built from synthetic, schema-shaped bundles (:mod:`support.synthetic_store`) that
also carry the fields a real run changes every time (pid, code entry, module file).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from support.browser import save_screenshot, served_page
from support.synthetic_store import metadata, write_bundle

from modelkb.store import Store

pytestmark = pytest.mark.slow

VIEWPORT = {"width": 1280, "height": 900}
SECTION_ORDER = ["metrics", "hyperparameters", "dataset", "architecture", "environment", "other"]
VOLATILE = [
    "id",
    "name",
    "created",
    "finished",
    "duration_s",
    "context.pid",
    "context.host",
    "context.cwd",
    "code.entry",
    "architecture.module.file",
]
ABSENT_IN = 3  # the run without hyperparameters.params.dropout
LONG_VALUE = 2.718281828  # a final val_loss with more digits than the page shows


@pytest.fixture(scope="module")
def compare_site(
    tmp_path_factory: pytest.TempPathFactory, engine: str
) -> tuple[Path, list[dict[str, Any]]]:
    """A catalog of 20 runs of one project built by ``engine``, and their metadata in the order
    of their ids."""
    from modelkb.site_builder.build import build_site

    root = tmp_path_factory.mktemp("compare")
    rng = random.Random(17)
    runs = []
    for i in range(20):
        meta = metadata(rng, i, "Compare", 1_790_000_000_000 + i * 60_000)
        meta["context"]["pid"] = 4000 + i
        meta["code"] = {"entry": f"train_{i}.py", "files": [f"train_{i}.py"], "notebook": False}
        meta["architecture"]["module"] = {"class": "Net", "file": f"net_{i}.py"}
        runs.append(meta)
    del runs[ABSENT_IN]["hyperparameters"]["params"]["dropout"]
    runs[5]["metrics"]["final"]["val_loss"] = LONG_VALUE
    for meta in runs:
        write_bundle(root / "store", meta)
    build_site(Store(root / "store"), root / "site", zip_bundles=False, engine=engine)
    return root / "site", runs


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box


def _best_ids(runs: list[dict[str, Any]], metric: str, pick: Any) -> set[str]:
    best = pick(r["metrics"]["final"][metric] for r in runs)
    return {r["id"] for r in runs if r["metrics"]["final"][metric] == best}


def _marked_ids(page: Any, key: str) -> set[str]:
    return set(
        page.evaluate(
            """key => {
              const ids = [...document.querySelectorAll('#mkb-compare-head th[data-id]')].map(th => th.dataset.id);
              const cells = [...document.querySelector(`tr[data-key="${key}"]`).cells].slice(1);
              return cells.flatMap((td, i) => td.classList.contains('mkb-best') ? [ids[i]] : []);
            }""",
            key,
        )
    )


def _check_every_header_is_reachable(page: Any, runs: list[dict[str, Any]]) -> None:
    """Scroll the table container to each run's column: its header is whole, inside the viewport,
    right of the field column, on top at its centre, and the field column has not moved."""
    page.locator("#mkb-compare-scroll").evaluate("s => s.scrollIntoView({block: 'center'})")
    dims = page.locator("#mkb-compare-scroll").evaluate(
        "s => ({scroll: s.scrollWidth, client: s.clientWidth})"
    )
    assert dims["scroll"] > dims["client"], "the runs fit without scrolling: nothing is tested"
    field, row_field = _box(page, "#mkb-compare-head th.mkb-field"), _box(page, "tr[data-key] th")
    scroller = _box(page, "#mkb-compare-scroll")
    for i, run in enumerate(runs):
        header = f"#mkb-compare-head th[data-id='{run['id']}']"
        page.locator(header).evaluate(
            """th => { document.getElementById('mkb-compare-scroll').scrollLeft =
                         th.offsetLeft - document.querySelector('#mkb-compare-head th.mkb-field').offsetWidth; }"""
        )
        box = _box(page, header)
        assert box["x"] >= field["x"] + field["width"] - 1, (i, box)
        assert (
            box["x"] + box["width"] <= min(scroller["x"] + scroller["width"], VIEWPORT["width"]) + 1
        ), (i, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], (i, box)
        on_top = page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y).closest('th')?.dataset.id",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert on_top == run["id"], i
        href = page.locator(f"{header} a").get_attribute("href")
        assert href.endswith(f"experiments/{run['id']}/"), href
        assert _box(page, "#mkb-compare-head th.mkb-field")["x"] == pytest.approx(field["x"])
        assert _box(page, "tr[data-key] th")["x"] == pytest.approx(row_field["x"])
    assert page.locator("#mkb-compare-scroll").evaluate("s => s.scrollLeft") > 0


@pytest.mark.parametrize("count", [10, 20])
def test_compare_many_runs_side_by_side(
    browser: Any, compare_site: tuple[Path, list[dict[str, Any]]], count: int, engine: str
) -> None:
    site, all_runs = compare_site
    runs = all_runs[:count]
    ids = ",".join(r["id"] for r in runs)
    with served_page(browser, site, f"compare/?ids={ids}", viewport=VIEWPORT) as page:
        page.wait_for_selector("#mkb-compare-app[data-ready='true']")
        _check_every_header_is_reachable(page, runs)

        # Sections in order, run details folded at the end.
        sections = page.eval_on_selector_all(
            "#mkb-compare-grid [data-section]", "els => els.map(e => e.dataset.section)"
        )
        assert sections == [*SECTION_ORDER, "run"]
        assert page.locator("#mkb-compare-run").get_attribute("open") is None
        for key in VOLATILE:
            assert page.locator(f"tr[data-key='{key}']").count() == 1, key
            assert page.locator(f"#mkb-compare-run tr[data-key='{key}']").count() == 1, key
            assert not page.locator(f"tr[data-key='{key}']").is_visible(), key

        # Identical fields folded in their section; every row has a cell for every run.
        same = page.locator("[data-section='dataset'] details.mkb-same")
        assert same.get_attribute("open") is None
        n_same = same.locator("tr[data-key]").count()
        assert same.locator("summary").inner_text() == f"{n_same} identical fields"
        assert same.locator("tr[data-key='dataset.name']").count() == 1
        cells = page.eval_on_selector_all(
            "#mkb-compare-grid tr", "rows => [...new Set(rows.map(r => r.cells.length))]"
        )
        assert cells == [count + 1]

        # Best final metrics, direction from the name; numbers for people, full value on hover.
        assert _marked_ids(page, "metrics.final.val_loss") == _best_ids(runs, "val_loss", min)
        assert _marked_ids(page, "metrics.final.accuracy") == _best_ids(runs, "accuracy", max)
        assert page.locator("tr[data-key='metrics.epochs_run'] td.mkb-best").count() == 0
        long_cell = page.locator("tr[data-key='metrics.final.val_loss'] td").nth(5)
        assert long_cell.inner_text() == "2.718"
        assert long_cell.get_attribute("title") == str(LONG_VALUE)

        # A field one run lacks shows an em dash in that run's column.
        absent = page.locator("tr[data-key='hyperparameters.params.dropout'] td").nth(ABSENT_IN)
        assert absent.inner_text() == "—"

        # One legend entry per run; pressing it hides that run's curves and only those.
        chart = page.locator("#mkb-compare-charts .mkb-chart").first
        assert chart.locator(".mkb-legend-toggle").count() == count
        name, other = runs[0]["name"], runs[1]["name"]
        chart.locator(f".mkb-legend-toggle[data-legend='{name}']").click()
        assert not chart.locator(f"path[data-series^='{name} ']").first.is_visible()
        assert chart.locator(f"path[data-series^='{other} ']").first.is_visible()
        chart.locator(f".mkb-legend-toggle[data-legend='{name}']").click()
        assert chart.locator(f"path[data-series^='{name} ']").first.is_visible()

        page.locator("#mkb-compare-scroll").evaluate("s => { s.scrollLeft = 0; }")
        save_screenshot(page, f"compare-{count}-runs", engine, full_page=True)
