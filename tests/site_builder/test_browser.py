"""The built catalog in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Every test also checks that nothing left the site's origin, no console error was logged and no
dialog opened (see ``PageWatch``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.catalog_site import PAYLOAD_ATTR, PAYLOAD_SCRIPT, SiteInfo, read_json, search_results

from modelkb.fields import flatten
from modelkb.query import Query, field_rows

pytestmark = pytest.mark.slow

PAPER_QUERY = "epochs > 10 && optimizer = Adam && accuracy > 0.9"


def _flat(info: SiteInfo, experiment_id: str) -> dict[str, Any]:
    for path in info.store.glob(f"*/{experiment_id}/metadata.json"):
        return flatten(read_json(path))
    raise AssertionError(experiment_id)


def _open_project(page: Any, url: str, slug: str) -> None:
    page.goto(f"{url}projects/{slug}/")
    page.wait_for_selector("#mkb-table-app[data-ready='true']")


def _table_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#mkb-table tbody tr", "rows => rows.map(r => r.getAttribute('data-id'))"
    )


def test_dashboard_shows_projects_and_recent_runs(
    page: Any, site_url: str, site_info: SiteInfo
) -> None:
    page.goto(site_url)
    cards = page.locator(".mkb-dashboard .mkb-card")
    assert cards.count() == 3
    assert "6 experiments" in page.locator(".mkb-card[data-project='sweep']").inner_text()
    assert page.locator("table.mkb-recent tbody tr").count() == 8
    page.watch.assert_clean()


def test_query_shows_exactly_the_matching_rows(
    page: Any, site_url: str, site_info: SiteInfo
) -> None:
    _open_project(page, site_url, "sweep")
    page.fill("#mkb-query", PAPER_QUERY)
    page.click("#mkb-query-apply")
    page.wait_for_function("document.getElementById('mkb-count').textContent.startsWith('2 of')")
    flats = {i: _flat(site_info, i) for i in site_info.sweep_ids}
    predicate = Query(PAPER_QUERY).predicate(sorted({k for f in flats.values() for k in f}))
    expected = {i for i, flat in flats.items() if predicate(flat)}
    assert len(expected) == 2  # Adam/20/0.95 and adam/30/0.92 (text compares fold case)
    assert set(_table_ids(page)) == expected
    page.watch.assert_clean()


def test_query_syntax_error_points_at_the_column(page: Any, site_url: str) -> None:
    _open_project(page, site_url, "sweep")
    page.fill("#mkb-query", "epochs > && a = 1")
    page.click("#mkb-query-apply")
    error = page.locator("#mkb-query-error")
    error.wait_for(state="visible")
    assert error.get_attribute("data-column") == "10"
    assert "Column 10: missing value after '>', found '&&'" in error.inner_text()
    page.fill("#mkb-query", "optimiser = Adam")
    page.click("#mkb-query-apply")
    assert "did you mean 'optimizer'" in error.inner_text()
    page.watch.assert_clean()


def test_csv_export_matches_the_table(page: Any, site_url: str) -> None:
    _open_project(page, site_url, "sweep")
    page.fill("#mkb-query", "epochs >= 11")
    page.click("#mkb-query-apply")
    page.click("th[data-key='hyperparameters.epochs'] button")  # sort ascending
    headers = page.eval_on_selector_all(
        "#mkb-table thead th[data-key] button",
        "els => els.map(e => e.textContent.replace(/ [▲▼]$/, ''))",
    )
    cells = page.eval_on_selector_all(
        "#mkb-table tbody tr",
        "rows => rows.map(r => Array.from(r.querySelectorAll('td')).slice(1).map(td => td.textContent))",
    )
    with page.expect_download() as download_info:
        page.click("[data-export='csv']")
    text = Path(download_info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == headers
    assert rows[1:] == cells
    assert [int(r[headers.index("epochs")]) for r in rows[1:]] == [11, 12, 15, 20, 30]
    for fmt, check in (
        ("json", lambda b: len(json.loads(b)) == 5),
        ("latex", lambda b: b"\\toprule" in b),
        ("pdf", lambda b: b.startswith(b"%PDF-1.4") and b.rstrip().endswith(b"%%EOF")),
    ):
        with page.expect_download() as info:
            page.click(f"[data-export='{fmt}']")
        assert check(Path(info.value.path()).read_bytes()), fmt
    page.watch.assert_clean()


def test_compare_highlights_exactly_the_differing_fields(
    page: Any, site_url: str, site_info: SiteInfo
) -> None:
    a, b = site_info.sweep_ids[0], site_info.sweep_ids[2]
    page.goto(f"{site_url}compare/?ids={a},{b}")
    page.wait_for_selector("#mkb-compare-app[data-ready='true']")
    rows_a = {k: t for k, _, t in field_rows(_flat(site_info, a))}
    rows_b = {k: t for k, _, t in field_rows(_flat(site_info, b))}
    expected = {k for k in rows_a.keys() | rows_b.keys() if rows_a.get(k) != rows_b.get(k)}
    shown = set(
        page.eval_on_selector_all(
            "#mkb-compare-grid tr.mkb-diff", "rs => rs.map(r => r.getAttribute('data-key'))"
        )
    )
    same = set(
        page.eval_on_selector_all(
            "#mkb-compare-grid tr[data-key]:not(.mkb-diff)",
            "rs => rs.map(r => r.getAttribute('data-key'))",
        )
    )
    assert shown == expected
    assert {"hyperparameters.epochs", "hyperparameters.optimizer.name", "id"} <= shown
    assert same == (rows_a.keys() | rows_b.keys()) - expected
    folds = page.locator("#mkb-compare-grid details")
    assert folds.count() >= 2 and all(
        folds.nth(i).get_attribute("open") is None for i in range(folds.count())
    )  # identical fields and run details are folded
    assert page.locator("#mkb-compare-charts .mkb-series").count() >= 4  # overlaid curves
    page.watch.assert_clean()


def test_project_table_selection_opens_compare(
    page: Any, site_url: str, site_info: SiteInfo
) -> None:
    _open_project(page, site_url, "sweep")
    boxes = page.locator("#mkb-table tbody input.mkb-select")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#mkb-compare")
    page.wait_for_selector("#mkb-compare-app[data-ready='true']")
    assert "ids=" in page.url
    assert page.locator("#mkb-compare-head thead th").count() == 3
    page.watch.assert_clean()


def test_netron_renders_the_graph_and_shows_node_properties(
    page: Any, site_url: str, site_info: SiteInfo
) -> None:
    page.goto(f"{site_url}experiments/{site_info.model_id}/")
    page.click("[data-tab='architecture']")
    frame = page.frame_locator("#mkb-netron")
    nodes = frame.locator("#canvas g.node")
    nodes.first.wait_for(timeout=30_000)
    assert nodes.count() >= 3  # Conv, Relu, Gemm/MatMul, Softmax ...
    frame.locator("#canvas g.node", has_text="Conv").first.click()
    frame.locator(".sidebar").first.wait_for(state="visible")
    assert "conv" in frame.locator(".sidebar").first.inner_text().lower()
    page.watch.assert_clean()


def test_inference_in_the_browser_matches_onnxruntime(
    page: Any, site_url: str, site_info: SiteInfo, tmp_path: Path
) -> None:
    np = pytest.importorskip("numpy")
    ort = pytest.importorskip("onnxruntime")
    image_module = pytest.importorskip("PIL.Image")
    grey = np.round(site_info.digits_sample / 16.0 * 255).astype(np.uint8)
    png = tmp_path / "digit.png"
    image_module.fromarray(grey, mode="L").convert("RGB").save(png)
    # The catalog's documented pipeline: grey / 255 * R with R = 1 / factor, then the recorded steps.
    pixels = np.asarray(image_module.open(png).convert("RGB"), dtype=np.float64).mean(axis=2)
    x = (pixels / 255 * 16) * (1 / 16)
    session = ort.InferenceSession(
        str(site_info.out / "experiments" / site_info.model_id / "model.onnx")
    )
    expected = session.run(
        None, {session.get_inputs()[0].name: x.astype(np.float32).reshape(1, 1, 8, 8)}
    )[0][0]

    page.goto(f"{site_url}experiments/{site_info.model_id}/")
    page.click("[data-tab='inference']")
    page.wait_for_selector("#mkb-infer[data-state='ready']", timeout=60_000)
    page.set_input_files("#mkb-infer-file", str(png))
    page.wait_for_function(
        "document.getElementById('mkb-infer-preview').complete"
        " && document.getElementById('mkb-infer-preview').naturalWidth === 8"
    )
    page.click("#mkb-infer-run")
    page.wait_for_selector("#mkb-infer[data-state='done']", timeout=30_000)
    result = page.evaluate("window.ModelKBInferResult")
    assert result["top"] == int(np.argmax(expected))
    assert np.allclose(result["probs"], expected, atol=1e-4)
    bars = page.locator("#mkb-infer-result li")
    assert bars.first.get_attribute("data-class") == str(int(np.argmax(expected)))
    page.watch.assert_clean()


def test_user_text_never_executes(page: Any, site_url: str, site_info: SiteInfo) -> None:
    slug = next(p.name for p in site_info.store.iterdir() if p.name.startswith("evil"))
    other = site_info.sweep_ids[0]
    for path in (
        "",
        "projects/",
        f"projects/{slug}/",
        f"experiments/{site_info.xss_id}/",
        f"compare/?ids={site_info.xss_id},{other}",
        "about/",
    ):
        page.goto(site_url + path)
        page.wait_for_load_state("load")
        if path.startswith("projects/evil"):
            page.wait_for_selector("#mkb-table-app[data-ready='true']")
            page.locator("#mkb-columns summary").click()
            page.locator(
                "#mkb-columns-list input"
            ).last.check()  # show every column, payload keys too
        if path.startswith("compare"):
            page.wait_for_selector("#mkb-compare-app[data-ready='true']")
        page.wait_for_timeout(200)
        assert page.evaluate("window.__xss") is None, path
    # The payload is shown as text where it belongs.
    page.goto(f"{site_url}experiments/{site_info.xss_id}/")
    assert "<script>window.__xss=1" in page.locator(".mkb-notes").inner_text()
    # Search results render titles and text from the index; the payload stays inert there too.
    page.goto(site_url)
    shown = [text for _, text in search_results(page, site_info.engine, "evil")]
    page.wait_for_timeout(300)
    assert any(PAYLOAD_SCRIPT in text and PAYLOAD_ATTR in text for text in shown), shown
    assert page.evaluate("window.__xss") is None
    page.watch.assert_clean()


def test_search_finds_experiments(page: Any, site_url: str, site_info: SiteInfo) -> None:
    page.goto(site_url)
    links = [href for href, _ in search_results(page, site_info.engine, site_info.model_id[:12])]
    assert any(site_info.model_id in href for href in links)
    page.goto(site_url)
    links = [href for href, _ in search_results(page, site_info.engine, "Sweep")]
    assert any(urlsplit(href).path.endswith("projects/sweep/") for href in links), links
    page.watch.assert_clean()


def test_filter_works_on_many_rows(page: Any, site_url: str) -> None:
    """10,000 rows in the browser: the filter selects exactly the matching copies (speed: bench/site)."""
    _open_project(page, site_url, "sweep")
    timing = page.evaluate(
        """async () => {
          const table = window.ModelKBTable;
          const q = 'epochs > 10 && optimizer = Adam && accuracy > 0.9';
          await table.apply(q);
          const baseHits = new Set(table.view), base = table.n, size = 10000;
          let expected = 0;
          for (let i = 0; i < size; i++) if (baseHits.has(i % base)) expected++;
          for (const [key, col] of table.cols) {
            const t = new Array(size), n = new Array(size);
            for (let i = 0; i < size; i++) { t[i] = key === 'id' ? 'x' + i : col.t[i % base]; n[i] = col.n[i % base]; }
            table.cols.set(key, {t, n});
          }
          table.n = size; table.ids = table.cols.get('id').t;
          table.order = Array.from({length: size}, (_, i) => i);
          const result = await table.apply(q);
          return {count: result.count, expected: expected, shown: table.view.length};
        }"""
    )
    assert timing["expected"] > 0
    assert timing["count"] == timing["expected"] == timing["shown"], timing
    page.watch.assert_clean()
