"""Benchmark ``modelkb build`` at scale and the project table in Chromium.

Usage: ``python bench/site/bench_build.py [--count 10000] [--projects 20] [--workdir DIR] [--no-browser]``

Measures, on synthetic bundles (``tests/support/synthetic_store.py``):

1. a full build (cold: mkdocs shell, Netron copy, every experiment page, zips);
2. an incremental build after adding one new run;
3. HTML/JSON bytes per experiment (its page + data.json + its share of the project table JSON);
4. a second store with every run in ONE project, opened in Chromium: time to apply the paper's
   query to the full table (``performance.now()`` around filter + render), median of 5.
"""

from __future__ import annotations

import argparse
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

QUERY = "epochs > 10 && optimizer = Adam && accuracy > 0.9"


def bytes_per_experiment(site: Path) -> tuple[float, float]:
    experiments = [p for p in (site / "experiments").iterdir() if p.is_dir()]
    own = sum(
        f.stat().st_size for d in experiments for f in d.iterdir() if f.suffix in (".html", ".json")
    )
    tables = sum(f.stat().st_size for f in (site / "data" / "projects").glob("*.json"))
    zips = sum(
        (d / "bundle.zip").stat().st_size for d in experiments if (d / "bundle.zip").exists()
    )
    return (own + tables) / len(experiments), zips / len(experiments)


def filter_timing(site: Path, slug: str) -> list[float]:
    from playwright.sync_api import sync_playwright

    from modelkb.site_builder.serve import serve_in_thread

    server, url = serve_in_thread(site)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            t0 = time.perf_counter()
            page.goto(f"{url}projects/{slug}/")
            page.wait_for_selector("#mkb-table-app[data-ready='true']", timeout=120_000)
            load = time.perf_counter() - t0
            runs = [page.evaluate(f"window.ModelKBTable.apply({QUERY!r})") for _ in range(5)]
            count = page.evaluate("window.ModelKBTable.n")
            browser.close()
    finally:
        server.shutdown()
    print(
        f"  table of {count} rows loaded and rendered in {load:.2f} s; query matched {runs[0]['count']} rows"
    )
    return [run["ms"] for run in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="modelkb-bench-"))
    store_dir, site = work / "store", work / "site"
    t0 = time.perf_counter()
    make_store(store_dir, count=args.count, projects=args.projects)
    print(
        f"wrote {args.count} synthetic bundles in {args.projects} projects in {time.perf_counter() - t0:.1f} s ({work})"
    )

    full = build_site(Store(store_dir), site)
    print(
        f"full build: {full.seconds:.1f} s ({full.rendered} pages, mkdocs shell rebuilt={full.shell_rebuilt})"
    )
    noop = build_site(Store(store_dir), site)
    print(f"no-change rebuild: {noop.seconds:.2f} s ({noop.rendered} pages)")
    make_store(store_dir, count=1, projects=1, seed=12345, start_ms=1_900_000_000_000)
    one = build_site(Store(store_dir), site)
    print(
        f"one new run: {one.seconds:.2f} s ({one.rendered} page) = "
        f"{100 * one.seconds / full.seconds:.1f} % of the full build"
    )
    per_exp, per_zip = bytes_per_experiment(site)
    print(
        f"HTML+JSON per experiment: {per_exp / 1024:.1f} KB (bundle.zip: {per_zip / 1024:.1f} KB more)"
    )

    if not args.no_browser:
        single_store, single_site = work / "store1", work / "site1"
        make_store(single_store, count=args.count, projects=1, seed=1)
        one_project = build_site(Store(single_store), single_site, zip_bundles=False)
        table = (single_site / "data" / "projects" / "project-a.json").stat().st_size
        print(
            f"one project of {args.count}: built in {one_project.seconds:.1f} s, table JSON {table / 1e6:.1f} MB"
        )
        timings = filter_timing(single_site, "project-a")
        print(
            f"filter + render in Chromium: median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms "
            f"({', '.join(f'{t:.1f}' for t in timings)})"
        )


if __name__ == "__main__":
    main()
