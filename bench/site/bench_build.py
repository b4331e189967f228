"""Benchmark ``modelkb build`` at scale and the project table in Chromium.

Usage: ``python bench/site/bench_build.py [--count 10000] [--projects 20] [--workdir DIR] [--no-browser]
[--browser-only]``

Measures, on synthetic bundles (``tests/support/synthetic_store.py``):

1. a full build (cold: mkdocs shell, Netron copy, every experiment page, zips);
2. a no-change rebuild and an incremental build after adding one new run;
3. HTML/JSON bytes per experiment (its page + data.json + its share of the project table files);
4. a second store with every run in ONE project, opened in Chromium: page load to the first
   rendered page, what it fetched, then each of ``QUERIES`` applied cold (fetching the fields it
   names) and warm (``performance.now()`` around filter + render, ``REPEATS`` times each: median,
   p95, max), sorting by a number and by a text column, and the query box (set the text, submit
   the form, until the view is rendered; also ``REPEATS`` times per query).

The machine's load average is printed before each step: the timings only mean something beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The synthetic-store generator and the browser options are the catalog tests' own (tests/support).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.synthetic_store import make_store

from modelkb.site_builder.build import build_site
from modelkb.store import Store

QUERIES = (
    "epochs > 10 && optimizer = Adam && accuracy > 0.9",
    "context.git.dirty = true && lr < 0.01",
    "(framework = torch || batch_size >= 64) && !(status = failed)",
    "tags ~ baseline || notes ~ 'learning rate'",
    "created >= 2026-09-21 && user != ada && val_accuracy > 0.8",
)
REPEATS = 20
QUERY_BOX = """query => new Promise(resolve => {
  const t0 = performance.now();
  document.addEventListener("modelkb:table-view", () => resolve(performance.now() - t0), {once: true});
  document.getElementById("mkb-query").value = query;
  document.getElementById("mkb-query-form").requestSubmit();
})"""


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"[load {one:.2f}/{five:.2f}]"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def bytes_per_experiment(site: Path) -> tuple[float, float, float]:
    """(HTML+JSON per experiment, of which table data, bundle.zip per experiment)."""
    experiments = [p for p in (site / "experiments").iterdir() if p.is_dir()]
    own = sum(
        f.stat().st_size for d in experiments for f in d.iterdir() if f.suffix in (".html", ".json")
    )
    tables = sum(f.stat().st_size for f in (site / "data" / "projects").rglob("*.json"))
    zips = sum(
        (d / "bundle.zip").stat().st_size for d in experiments if (d / "bundle.zip").exists()
    )
    n = len(experiments)
    return (own + tables) / n, tables / n, zips / n


def browser_timing(site: Path, slug: str) -> None:
    from playwright.sync_api import sync_playwright

    from modelkb.site_builder.serve import serve_in_thread

    server, url = serve_in_thread(site)
    table_dir = f"/data/projects/{slug}/"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            fetched: list[str] = []
            page.on("requestfinished", lambda req: fetched.append(req.url))
            t0 = time.perf_counter()
            page.goto(f"{url}projects/{slug}/")
            page.wait_for_selector("#mkb-table-app[data-ready='true']", timeout=300_000)
            ready = time.perf_counter() - t0
            files = [u.split("?")[0] for u in fetched if table_dir in u]
            size = sum((site / u.split("/", 3)[3]).stat().st_size for u in files)
            rows = page.evaluate("window.ModelKBTable.n")
            fields = page.evaluate("window.ModelKBTable.fields.length")
            print(
                f"  {load()} {rows} rows, {fields} fields: ready in {ready:.2f} s, "
                f"fetched {len(files)} table files ({size / 1e6:.1f} MB)"
            )
            warm: list[float] = []
            for query in QUERIES:
                cold = page.evaluate(f"window.ModelKBTable.apply({query!r})")
                runs = [
                    page.evaluate(f"window.ModelKBTable.apply({query!r})")["ms"]
                    for _ in range(REPEATS)
                ]
                warm.extend(runs)
                print(
                    f"  {query!r}: {cold['count']} rows; cold {cold['ms']:.0f} ms (fetches its fields), "
                    f"warm median {statistics.median(runs):.1f} ms, p95 {percentile(runs, 0.95):.1f} ms"
                )
            print(
                f"  filter + render, all {len(warm)} warm runs: median {statistics.median(warm):.1f} ms, "
                f"p95 {percentile(warm, 0.95):.1f} ms, max {max(warm):.1f} ms"
            )
            page.evaluate("window.ModelKBTable.apply('')")
            for key in ("metrics.final.accuracy", "created"):
                sort = [
                    page.evaluate(
                        "key => { const t0 = performance.now(); "
                        "return window.ModelKBTable.sortBy(key).then(() => performance.now() - t0); }",
                        key,
                    )
                    for _ in range(6)
                ]
                print(
                    f"  sort all rows by {key}: median {statistics.median(sort):.0f} ms, max {max(sort):.0f} ms"
                )
            box = [page.evaluate(QUERY_BOX, query) for query in QUERIES * (REPEATS // 2)]
            print(
                f"  query box (set the text, submit the form, until the view is rendered): "
                f"median {statistics.median(box):.1f} ms, p95 {percentile(box, 0.95):.1f} ms, max {max(box):.1f} ms"
            )
            browser.close()
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--browser-only", action="store_true", help="skip the 20-project builds")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="modelkb-bench-"))
    store_dir, site = work / "store", work / "site"
    print(f"{load()} {os.cpu_count()} CPUs; workdir {work}")

    if not args.browser_only:
        t0 = time.perf_counter()
        make_store(store_dir, count=args.count, projects=args.projects)
        print(
            f"{load()} wrote {args.count} synthetic bundles in {args.projects} projects "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        full = build_site(Store(store_dir), site)
        print(
            f"{load()} full build: {full.seconds:.1f} s ({full.rendered} pages, "
            f"mkdocs shell rebuilt={full.shell_rebuilt})"
        )
        noop = build_site(Store(store_dir), site)
        print(f"{load()} no-change rebuild: {noop.seconds:.2f} s ({noop.rendered} pages)")
        for seed in (12345, 12346, 12347):
            make_store(store_dir, count=1, projects=1, seed=seed, start_ms=1_900_000_000_000 + seed)
            one = build_site(Store(store_dir), site)
            print(
                f"{load()} one new run: {one.seconds:.2f} s ({one.rendered} page) = "
                f"{100 * one.seconds / full.seconds:.1f} % of the full build"
            )
        per_exp, per_table, per_zip = bytes_per_experiment(site)
        print(
            f"HTML+JSON per experiment: {per_exp / 1024:.1f} KB, of which table data {per_table / 1024:.2f} KB "
            f"(bundle.zip: {per_zip / 1024:.1f} KB more)"
        )

    if not args.no_browser:
        single_store, single_site = work / "store1", work / "site1"
        if not (single_site / "data" / "projects" / "project-a").is_dir():
            make_store(single_store, count=args.count, projects=1, seed=1)
            one_project = build_site(Store(single_store), single_site, zip_bundles=False)
            print(f"{load()} one project of {args.count}: built in {one_project.seconds:.1f} s")
        table = sum(
            f.stat().st_size for f in (single_site / "data" / "projects" / "project-a").iterdir()
        )
        print(f"  its table data: {table / 1e6:.1f} MB in all")
        browser_timing(single_site, "project-a")


if __name__ == "__main__":
    main()
