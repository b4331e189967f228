"""The project page's plots (ECharts) and the dashboard's best runs, in headless Chromium, on
each site engine.

The plots are checked through what ECharts itself holds for its rendered series (the series'
data store, its values by dimension), not by the presence of a canvas. Every page also stays
clean: no console error, no request leaving the site's origin (``PageWatch``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.browser import save_screenshot, served_page
from support.catalog_site import XSS_PROJECT, SiteInfo, copy_site_store, read_json

from modelkb.fields import flatten
from modelkb.project_settings import write_settings
from modelkb.query import Query
from modelkb.site_builder.build import build_site
from modelkb.store import Store

pytestmark = pytest.mark.slow

QUERY = "epochs > 10 && optimizer = Adam"
VAL_ACCURACY = "metrics.final.val_accuracy"

# What ECharts rendered: every row of a chart's first series, all its dimensions.
RENDERED = """(which) => {
  const data = window.ModelKBPlots[which].getModel().getSeriesByIndex(0).getData();
  const rows = [];
  for (let i = 0; i < data.count(); i++) rows.push(data.getValues(i));
  return rows;
}"""


def _sweep(info: SiteInfo) -> dict[str, dict[str, Any]]:
    flats = {}
    for experiment_id in info.sweep_ids:
        (path,) = info.store.glob(f"*/{experiment_id}/metadata.json")
        flats[experiment_id] = flatten(read_json(path))
    return flats


def _matching(flats: dict[str, dict[str, Any]], text: str) -> dict[str, dict[str, Any]]:
    predicate = Query(text).predicate(sorted({k for f in flats.values() for k in f}))
    return {i: f for i, f in flats.items() if predicate(f)}


def _open_plots(page: Any, url: str) -> None:
    page.goto(f"{url}projects/sweep/")
    page.wait_for_selector("#mkb-plots[data-ready='true']")


def _apply(page: Any, text: str, count: int) -> None:
    page.fill("#mkb-query", text)
    page.click("#mkb-query-apply")
    page.wait_for_function(
        f"document.getElementById('mkb-plots').getAttribute('data-parallel-runs') === '{count}'"
    )


def test_parallel_coordinates_follow_the_query(
    page: Any, site_url: str, site_info: SiteInfo
) -> None:
    flats = _sweep(site_info)
    _open_plots(page, site_url)
    assert page.evaluate("window.ModelKBPlots.choice().metric") == VAL_ACCURACY
    axes = page.evaluate("window.ModelKBPlots.parallel.getOption().parallelAxis.map(a => a.name)")
    assert axes == ["epochs", "optimizer.name", "val_accuracy"]  # batch size and lr never vary
    rendered = page.evaluate(RENDERED, "parallel")
    assert len(rendered) == len(flats) == 6
    assert sorted(r[-1] for r in rendered) == sorted(f[VAL_ACCURACY] for f in flats.values())

    matching = _matching(flats, QUERY)
    assert len(matching) == 3  # Adam/20, Adam/12 and adam/30 (text compares fold case)
    _apply(page, QUERY, len(matching))
    rendered = page.evaluate(RENDERED, "parallel")
    expected = [
        [f["hyperparameters.epochs"], f["hyperparameters.optimizer.name"], f[VAL_ACCURACY]]
        for f in matching.values()
    ]
    categories = page.evaluate(
        "window.ModelKBPlots.parallel.getModel().getComponent('parallelAxis', 1).axis.scale"
        ".getOrdinalMeta().categories"
    )
    shown = [[r[0], categories[r[1]], r[2]] for r in rendered]  # a category is held by its index
    assert sorted(shown) == sorted(expected)
    assert "3 runs: 3 with val_accuracy" in page.locator("#mkb-plots-status").inner_text()

    page.click("#mkb-query-clear")
    page.wait_for_function(
        "document.getElementById('mkb-plots').getAttribute('data-parallel-runs') === '6'"
    )
    page.select_option("#mkb-parallel-metric", "metrics.final.loss")  # another metric
    rendered = page.evaluate(RENDERED, "parallel")
    assert sorted(r[-1] for r in rendered) == sorted(
        f["metrics.final.loss"] for f in flats.values()
    )
    axes = page.evaluate("window.ModelKBPlots.parallel.getOption().parallelAxis.map(a => a.name)")
    assert axes[-1] == "loss"
    page.evaluate("document.querySelector('.md-header').style.visibility = 'hidden'")
    save_screenshot(page.locator("#mkb-plots"), "project-plots", site_info.engine)
    save_screenshot(page, "project", site_info.engine, full_page=True)
    page.watch.assert_clean()


def test_scatter_axes_can_be_changed_and_follow_the_query(
    page: Any, site_url: str, site_info: SiteInfo
) -> None:
    flats = _sweep(site_info)
    _open_plots(page, site_url)
    options = page.eval_on_selector_all("#mkb-scatter-x option", "os => os.map(o => o.value)")
    assert {"hyperparameters.epochs", "metrics.final.accuracy", VAL_ACCURACY} <= set(options)
    assert "hyperparameters.optimizer.name" not in options  # numeric fields only
    start = page.evaluate("window.ModelKBPlots.choice()")
    assert start["y"] == VAL_ACCURACY
    assert start["x"] == "hyperparameters.epochs"  # the learning rate never varies here

    page.select_option("#mkb-scatter-x", "hyperparameters.epochs")
    page.select_option("#mkb-scatter-y", "metrics.final.accuracy")
    names = page.evaluate(
        "(() => { const o = window.ModelKBPlots.scatter.getOption();"
        " return [o.xAxis[0].name, o.yAxis[0].name]; })()"
    )
    assert names == ["epochs", "accuracy"]
    points = sorted(tuple(r[:2]) for r in page.evaluate(RENDERED, "scatter"))
    assert points == sorted(
        (f["hyperparameters.epochs"], f["metrics.final.accuracy"]) for f in flats.values()
    )

    matching = _matching(flats, QUERY)
    _apply(page, QUERY, len(matching))
    points = sorted(tuple(r[:2]) for r in page.evaluate(RENDERED, "scatter"))
    assert points == sorted(
        (f["hyperparameters.epochs"], f["metrics.final.accuracy"]) for f in matching.values()
    )
    assert page.get_attribute("#mkb-plots", "data-scatter-runs") == "3"

    # A click on a point opens its run.
    target = next(iter(matching))
    point = [matching[target]["hyperparameters.epochs"], matching[target]["metrics.final.accuracy"]]
    page.evaluate("document.querySelector('.md-header').style.visibility = 'hidden'")  # sticky
    page.locator("#mkb-scatter").scroll_into_view_if_needed()
    x, y = page.evaluate(
        "(p) => window.ModelKBPlots.scatter.convertToPixel({seriesIndex: 0}, p)", point
    )
    box = page.locator("#mkb-scatter").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url(f"**/experiments/{target}/")
    page.watch.assert_clean()


def _card(page: Any, slug: str) -> dict[str, Any]:
    return page.eval_on_selector(
        f".mkb-card[data-project='{slug}'] .mkb-card-best",
        """el => ({metric: el.getAttribute('data-metric'), text: el.textContent,
                  value: el.querySelector('strong').textContent,
                  full: el.querySelector('strong').getAttribute('title'),
                  href: el.querySelector('a.mkb-card-run').getAttribute('href')})""",
    )


def test_dashboard_cards_link_the_best_run_by_the_primary_metric(
    page: Any, site_url: str, site_info: SiteInfo
) -> None:
    flats = _sweep(site_info)
    best = max(flats, key=lambda i: flats[i][VAL_ACCURACY])
    page.goto(site_url)
    card = _card(page, "sweep")
    assert card["metric"] == VAL_ACCURACY
    assert card["text"].startswith("best val_accuracy ")
    assert card["full"] == repr(flats[best][VAL_ACCURACY])  # the full value on hover
    assert card["value"] == f"{flats[best][VAL_ACCURACY]:.4g}"
    assert len(card["value"].replace("0.", "").replace(".", "")) <= 4  # 4 significant digits
    assert card["href"] == f"experiments/{best}/"
    page.click(".mkb-card[data-project='sweep'] a.mkb-card-run")
    page.wait_for_url(f"**/experiments/{best}/")
    header = page.locator("[data-fact='metric'] dd")
    assert header.inner_text() == f"val_accuracy {card['value']}"  # the header's rule is the card's
    assert header.get_attribute("title") == card["full"]
    page.watch.assert_clean()


def _recent(page: Any) -> dict[str, dict[str, Any]]:
    """The dashboard's recent experiments, by run id: the metric cell's key, text and full value."""
    return page.eval_on_selector_all(
        "table.mkb-recent tbody tr",
        """rows => Object.fromEntries(rows.map(r => {
             const cell = r.querySelector('td.mkb-recent-metric'), strong = cell.querySelector('strong');
             return [r.dataset.id, {metric: cell.getAttribute('data-metric'), text: cell.textContent,
                     value: strong && strong.textContent, full: strong && strong.getAttribute('title')}];
           }))""",
    )


def _check_recent(page: Any, info: SiteInfo, keys: dict[str, str]) -> None:
    """Every recent run shows its value of its project's primary metric (``keys``: by run id),
    named, with 4 significant digits and the full value on hover; the header says what it is."""
    shown = _recent(page)
    assert set(shown) == set(keys)
    headers = page.eval_on_selector_all(
        "table.mkb-recent thead th", "hs => hs.map(h => h.textContent)"
    )
    assert headers[-1] == "Primary metric"
    for experiment_id, key in keys.items():
        (path,) = info.store.glob(f"*/{experiment_id}/metadata.json")
        value = flatten(read_json(path))[key]
        name = key.rsplit(".", 1)[-1]
        assert shown[experiment_id] == {
            "metric": key,
            "text": f"{name} {value:.4g}",
            "value": f"{value:.4g}",
            "full": repr(value),
        }, experiment_id


def test_recent_experiments_show_each_runs_primary_metric(
    page: Any, site_url: str, site_info: SiteInfo
) -> None:
    page.goto(site_url)
    ids = [*site_info.sweep_ids, site_info.model_id, site_info.xss_id]
    _check_recent(page, site_info, dict.fromkeys(ids, VAL_ACCURACY))
    sweep_card = _card(page, "sweep")["full"]  # the same rule as the card's: its best run's value
    assert max(float(_recent(page)[i]["full"]) for i in site_info.sweep_ids) == float(sweep_card)
    save_screenshot(page, "dashboard", site_info.engine, full_page=True)
    page.watch.assert_clean()


def test_primary_metric_option_changes_the_cards(
    browser: Any, site_info: SiteInfo, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    store = copy_site_store(site_info, tmp_path / "store")
    write_settings(store, XSS_PROJECT, primary_metric="accuracy")  # a project's setting wins
    build_site(
        Store(store), site, zip_bundles=False, primary_metric="loss", engine=site_info.engine
    )
    flats = _sweep(site_info)
    lowest = min(f["metrics.final.val_loss"] for f in flats.values())
    digits = flatten(read_json(next(site_info.store.glob(f"*/{site_info.model_id}/metadata.json"))))
    with served_page(browser, site, "") as page:
        card = _card(page, "sweep")
        assert card["metric"] == "metrics.final.val_loss"
        assert card["text"].startswith("best val_loss ")
        assert card["full"] == repr(lowest)
        best = card["href"].split("/")[1]
        assert flats[best]["metrics.final.val_loss"] == lowest
        card = _card(page, "digits-torch")
        assert card["full"] == repr(digits["metrics.final.val_loss"])
        assert card["value"] == f"{digits['metrics.final.val_loss']:.4g}"
        keys = dict.fromkeys([*site_info.sweep_ids, site_info.model_id], "metrics.final.val_loss")
        _check_recent(page, site_info, {**keys, site_info.xss_id: VAL_ACCURACY})
        page.goto(page.url + "projects/sweep/")
        page.wait_for_selector("#mkb-plots[data-ready='true']")
        assert page.evaluate("window.ModelKBPlots.choice().metric") == "metrics.final.val_loss"


def test_without_echarts_the_project_page_says_what_is_missing(
    browser: Any, engine: str, tmp_path: Path
) -> None:
    from support.browser import PageWatch
    from support.synthetic_store import make_store

    from modelkb.site_builder.serve import serve_in_thread

    make_store(tmp_path / "store", count=3, projects=1)
    site = tmp_path / "site"
    build_site(Store(tmp_path / "store"), site, zip_bundles=False, engine=engine)
    (site / "vendor" / "echarts" / "echarts.min.js").unlink()
    server, url = serve_in_thread(site)
    context = browser.new_context()
    try:
        page = context.new_page()
        watch = PageWatch(page, url.rstrip("/"))
        page.goto(f"{url}projects/project-a/")
        page.wait_for_selector("#mkb-plots[data-ready='error']")
        assert "The plots need ECharts" in page.locator("#mkb-plots-status").inner_text()
        page.wait_for_selector("#mkb-table-app[data-ready='true']")  # the table does not care
        assert page.locator("#mkb-table tbody tr").count() == 3
        assert watch.foreign == [] and watch.dialogs == []
        assert [e for e in watch.errors if "404" not in e] == []  # only the missing file
    finally:
        context.close()
        server.shutdown()
        server.server_close()
