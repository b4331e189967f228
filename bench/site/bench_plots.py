"""Benchmark the project page's plots (ECharts parallel coordinates + scatter) in Chromium.

Usage: ``python bench/site/bench_plots.py [--rows 10000,100000] [--workdir DIR]``

A real catalog is built from a few synthetic runs (``tests/support/synthetic_store.py``); then its
project table data (``data/projects/<slug>/``, written by ``table_data.write_columns``) is
replaced by N generated rows with the fields the plots read (6 hyperparameters, 4 final metrics,
id, owner, status), so the real table.js, query.js and plots.js run on N runs without building N
experiment pages. Measured, median of 3 page loads:

* ``ready``: navigation to the plots' first frame (fetch + parse of the table JSON, the table's
  first render, ECharts loaded, both plots' options set);
* ``first render``: ``ModelKBPlots.render()`` (both plots' ``setOption``, synchronous);
* ``drawn``: a render until ECharts' ``finished`` event (its progressive rendering done);
* ``query``: ``ModelKBTable.apply(QUERY)`` (table filter + render, then both plots, to ``finished``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.synthetic_store import OPTIMIZERS, USERS, make_store

from modelkb.site_builder.build import build_site
from modelkb.site_builder.table_data import write_columns
from modelkb.store import Store

QUERY = "epochs > 10 && optimizer = Adam && accuracy > 0.9"
KEYS = [
    "hyperparameters.batch_size",
    "hyperparameters.epochs",
    "hyperparameters.learning_rate",
    "hyperparameters.optimizer.name",
    "hyperparameters.params.dropout",
    "hyperparameters.params.filters",
    "id",
    "metrics.final.accuracy",
    "metrics.final.loss",
    "metrics.final.val_accuracy",
    "metrics.final.val_loss",
    "status",
    "user",
]

DRAWN = """() => new Promise(resolve => {
  const P = window.ModelKBPlots, t0 = performance.now();
  P.parallel.on('finished', function done() {
    P.parallel.off('finished', done);
    resolve(performance.now() - t0);
  });
  P.render();
})"""
QUERIED = """(query) => new Promise(resolve => {
  const P = window.ModelKBPlots, t0 = performance.now();
  P.parallel.on('finished', function done() {
    P.parallel.off('finished', done);
    resolve(performance.now() - t0);
  });
  window.ModelKBTable.apply(query);
})"""


def table_columns(rows: int, seed: int = 0) -> dict[str, list]:
    rng = random.Random(seed)
    body = []
    for i in range(rows):
        accuracy = round(rng.uniform(0.6, 0.995), 4)
        body.append(
            [
                rng.choice((16, 32, 64, 128)),
                rng.randint(1, 40),
                rng.choice((0.1, 0.01, 0.001, 0.0003, 1e-05)),
                rng.choice(OPTIMIZERS),
                rng.choice((0, 0.1, 0.25, 0.5)),
                rng.choice((4, 8, 16, 32)),
                f"run{i:07d}",
                accuracy,
                round(2.3 * (1 - accuracy) + 0.05, 4),
                round(accuracy - 0.02, 4),
                round(2.3 * (1 - accuracy) + 0.1, 4),
                "completed",
                rng.choice(USERS),
            ]
        )
    return {key: [row[k] for row in body] for k, key in enumerate(KEYS)}


def measure(site: Path, slug: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    from modelkb.site_builder.serve import serve_in_thread

    server, url = serve_in_thread(site)
    found: dict[str, list[float]] = {"ready": [], "first render": [], "drawn": [], "query": []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            errors: list[str] = []
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("pageerror", lambda err: errors.append(str(err)))
                t0 = time.perf_counter()
                page.goto(f"{url}projects/{slug}/")
                page.wait_for_selector("#mkb-plots[data-ready='true']", timeout=300_000)
                found["ready"].append((time.perf_counter() - t0) * 1000)
                found["first render"].append(page.evaluate("window.ModelKBPlots.lastRenderMs"))
                found["drawn"].append(page.evaluate(DRAWN))
                found["query"].append(page.evaluate(QUERIED, QUERY))
                assert not errors, errors
                page.close()
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return {name: statistics.median(values) for name, values in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000", help="comma-separated run counts")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="modelkb-bench-plots-"))
    make_store(work / "store", count=3, projects=1)
    site = work / "site"
    build_site(Store(work / "store"), site, zip_bundles=False)
    (table_dir,) = (p for p in (site / "data" / "projects").iterdir() if p.is_dir())
    slug = table_dir.name
    print(f"{'runs':>8} {'ready ms':>9} {'render ms':>10} {'drawn ms':>9} {'query ms':>9}")
    for rows in (int(text) for text in args.rows.split(",")):
        write_columns(
            table_dir,
            title=slug,
            slug=slug,
            version=str(rows),
            columns=table_columns(rows),
            write_text=lambda path, text: path.write_text(text, encoding="utf-8"),
        )
        m = measure(site, slug)
        print(
            f"{rows:>8} {m['ready']:>9.0f} {m['first render']:>10.0f} {m['drawn']:>9.0f} "
            f"{m['query']:>9.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
