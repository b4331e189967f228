"""Benchmark: index and query 100,000 synthetic bundles' metadata.

Writes N synthetic sealed bundles (metadata.json only) into a store, then measures:
- ``reindex``: rebuild the SQLite index from the bundles (read + validate + flatten + insert);
- ``refresh`` with nothing changed (what every CLI command pays);
- query latency (median/p95 of repeated runs) for typical filters, through ``Index.search``.

Usage: python bench/index_bench.py [--n 100000] [--dir .bench/index] [--keep]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import time
from pathlib import Path

from modelkb.fsutil import atomic_write_json
from modelkb.ids import auto_name, new_id
from modelkb.query import Query
from modelkb.store import Store

OPTIMIZERS = ["Adam", "SGD", "RMSprop", "AdamW"]
PROJECTS = [f"Project {i}" for i in range(20)]
QUERIES = [
    "epochs > 10 && optimizer = Adam && accuracy > 0.9",
    "framework = keras && val_accuracy >= 0.95",
    "batch_size = 64 || learning_rate < 0.0005",
    "name ~ 'project-3' && !(status = failed)",
    "created > 2026-01-01 && loss < 0.2",
]


def synthetic_metadata(rng: random.Random, index: int) -> dict:
    project = rng.choice(PROJECTS)
    experiment_id = new_id(1_700_000_000_000 + index * 1000)
    epochs = rng.randint(1, 50)
    history = [
        {
            "epoch": e,
            "train": {"loss": 1 / (e + 1), "accuracy": 1 - 1 / (e + 2)},
            "val": {"loss": 1.1 / (e + 1), "accuracy": 1 - 1.1 / (e + 2)},
        }
        for e in range(min(epochs, 5))
    ]
    accuracy = rng.random()
    return {
        "schema_version": 1,
        "id": experiment_id,
        "project": project,
        "name": auto_name(project, experiment_id),
        "user": rng.choice(["alice", "bob", "carol"]),
        "status": rng.choice(["completed"] * 8 + ["failed", "interrupted"]),
        "created": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00.000Z",
        "tags": rng.sample(["cnn", "mlp", "baseline", "tuned", "digits"], 2),
        "framework": {
            "name": rng.choice(["keras", "pytorch"]),
            "version": "3.15.1",
            "versions": {},
        },
        "hyperparameters": {
            "optimizer": {
                "name": rng.choice(OPTIMIZERS),
                "config": {"learning_rate": 0.001, "beta_1": 0.9},
            },
            "learning_rate": rng.choice([0.1, 0.01, 0.001, 0.0001]),
            "loss": "sparse_categorical_crossentropy",
            "epochs": epochs,
            "batch_size": rng.choice([16, 32, 64, 128]),
            "metrics": ["accuracy"],
            "params": {"dropout": rng.random() / 2, "width": rng.choice([32, 64, 128])},
        },
        "seed": rng.randint(0, 1000),
        "architecture": {
            "parameter_count": rng.randint(1000, 10**6),
            "layers": [{"name": f"l{i}", "type": "Dense"} for i in range(rng.randint(2, 8))],
            "inputs": [{"name": "x", "shape": [None, 8, 8, 1], "dtype": "float32"}],
        },
        "dataset": {
            "kind": "image",
            "name": "digits",
            "samples": {"train": 1437, "val": 360},
            "dtype": "float32",
        },
        "metrics": {
            "history": history,
            "final": {
                "loss": 1 - accuracy,
                "accuracy": accuracy,
                "val_loss": 1.1 - accuracy,
                "val_accuracy": accuracy * 0.98,
            },
        },
        "context": {
            "host": "bench",
            "python": "3.11.7",
            "os": "Linux 6.1",
            "git": {"commit": "0" * 40, "branch": "main", "dirty": False},
        },
        "warnings": [],
        "artifacts": [],
    }


def timed(func, repeat: int = 1) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dir", default=".bench/index")
    parser.add_argument(
        "--keep", action="store_true", help="Reuse bundles written by an earlier run."
    )
    args = parser.parse_args()
    root = Path(args.dir)
    if not args.keep and root.exists():
        shutil.rmtree(root)
    store = Store(root)
    if not args.keep or not root.exists():
        rng = random.Random(0)
        start = time.perf_counter()
        for i in range(args.n):
            meta = synthetic_metadata(rng, i)
            atomic_write_json(store.bundle_dir(meta["project"], meta["id"]) / "metadata.json", meta)
        print(f"wrote {args.n} bundles in {time.perf_counter() - start:.1f} s")
    (t_reindex,) = timed(lambda: store.reindex())
    print(
        f"reindex {store.index.count()} bundles: {t_reindex:.1f} s ({t_reindex / args.n * 1e6:.0f} us/bundle)"
    )
    (t_refresh,) = timed(lambda: store.refresh())
    print(f"refresh with nothing changed: {t_refresh * 1000:.0f} ms")
    for text in QUERIES:
        query = Query(text)
        hits = len(store.index.search(query))
        times = timed(lambda query=query: store.index.search(query), repeat=9)
        print(
            f"query {text!r}: {hits} hits, median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms (incl. parse, SQL, loading the hit rows)"
        )


if __name__ == "__main__":
    main()
