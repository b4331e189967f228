"""Write a store of synthetic, schema-shaped experiment bundles quickly (no training, no model).

Shared by the catalog tests and the catalog benchmark (``bench/site/bench_build.py``). Usage:
``python tests/support/synthetic_store.py STORE --count 10000 --projects 20 [--seed 0]``.
Each bundle gets ``metadata.json`` (about 5 KB: layers, history, context like a real Keras run),
``metrics.jsonl`` and a short ``README.md``; no ``model.onnx``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

OPTIMIZERS = ("Adam", "SGD", "RMSprop", "AdamW", "Adagrad")
FRAMEWORKS = (("keras", "3.15.1", "tensorflow"), ("torch", "2.13.0", None))
USERS = ("ada", "grace", "alan", "barbara", "edsger")
TAGS = ("cnn", "baseline", "mlp", "augment", "sweep", "small", "ablation")
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def fake_id(rng: random.Random, ms: int) -> str:
    head = ""
    for _ in range(10):
        head = ALPHABET[ms % 32] + head
        ms //= 32
    return head + "".join(rng.choice(ALPHABET) for _ in range(16))


def metadata(rng: random.Random, index: int, project: str, created_ms: int) -> dict[str, Any]:
    framework, version, backend = rng.choice(FRAMEWORKS)
    epochs = rng.randint(1, 40)
    lr = rng.choice((0.1, 0.01, 0.001, 0.0003, 1e-05))
    acc0, accf = rng.uniform(0.1, 0.5), rng.uniform(0.6, 0.995)
    history = []
    for epoch in range(min(epochs, 12)):
        t = (epoch + 1) / min(epochs, 12)
        acc = acc0 + (accf - acc0) * t
        history.append(
            {
                "epoch": epoch,
                "train": {"loss": round(2.3 * (1 - acc) + 0.05, 4), "accuracy": round(acc, 4)},
                "val": {"loss": round(2.3 * (1 - acc) + 0.1, 4), "accuracy": round(acc - 0.02, 4)},
                "lr": lr,
                "time_s": round(rng.uniform(0.2, 3), 2),
            }
        )
    filters = rng.choice((4, 8, 16, 32))
    created = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created_ms / 1000))
        + f".{created_ms % 1000:03d}Z"
    )
    experiment_id = fake_id(rng, created_ms)
    return {
        "schema_version": 1,
        "id": experiment_id,
        "project": project,
        "name": f"{project.lower().replace(' ', '-')}-{index:05d}",
        "user": rng.choice(USERS),
        "notes": rng.choice(
            ("", "Baseline run.", "Try a wider first layer.", "Sweep over learning rates.")
        ),
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "status": rng.choice(("completed",) * 9 + ("failed",)),
        "created": created,
        "finished": created,
        "duration_s": round(rng.uniform(5, 500), 3),
        "framework": {
            "name": framework,
            "version": version,
            **({"backend": backend} if backend else {}),
            "versions": {framework: version, "numpy": "2.4.6"},
        },
        "hyperparameters": {
            "optimizer": {"name": rng.choice(OPTIMIZERS), "config": {"learning_rate": lr}},
            "learning_rate": lr,
            "loss": "categorical_crossentropy",
            "metrics": ["accuracy"],
            "epochs": epochs,
            "batch_size": rng.choice((16, 32, 64, 128)),
            "steps_per_epoch": 45,
            "params": {"filters": filters, "dropout": rng.choice((0.0, 0.1, 0.25, 0.5))},
        },
        "seed": rng.choice((42, 0, 1234, None)),
        "determinism": {"seeded": ["numpy", "python"], "deterministic_ops": rng.random() < 0.5},
        "architecture": {
            "layers": [
                {
                    "name": "conv2d",
                    "type": "Conv2D",
                    "config": {"filters": filters},
                    "params": filters * 10,
                    "output_shape": [None, 6, 6, filters],
                },
                {
                    "name": "max_pooling2d",
                    "type": "MaxPooling2D",
                    "config": {},
                    "params": 0,
                    "output_shape": [None, 3, 3, filters],
                },
                {
                    "name": "flatten",
                    "type": "Flatten",
                    "config": {},
                    "params": 0,
                    "output_shape": [None, 9 * filters],
                },
                {
                    "name": "dense",
                    "type": "Dense",
                    "config": {"units": 10},
                    "params": 90 * filters + 10,
                    "output_shape": [None, 10],
                },
            ],
            "parameter_count": 100 * filters + 10,
            "trainable_parameter_count": 100 * filters + 10,
            "inputs": [{"name": "input", "shape": [None, 8, 8, 1], "dtype": "float32"}],
            "outputs": [{"name": "dense", "shape": [None, 10], "dtype": "float32"}],
        },
        "dataset": {
            "kind": "image",
            "name": "digits",
            "shapes": {"x": [None, 8, 8, 1], "y": [None, 10]},
            "samples": {"train": 1437, "val": 180, "test": 180},
            "dtype": "float32",
            "classes": [str(d) for d in range(10)],
            "preprocessing": [{"op": "scale", "factor": 0.0625}],
        },
        "metrics": {
            "history": history,
            "final": {
                "loss": history[-1]["train"]["loss"],
                "accuracy": history[-1]["train"]["accuracy"],
                "val_loss": history[-1]["val"]["loss"],
                "val_accuracy": history[-1]["val"]["accuracy"],
            },
        },
        "context": {
            "host": "bench",
            "os": "Linux 6.8.0",
            "python": "3.11.7",
            "cpu_count": 8,
            "memory_gb": 31.2,
            "command": ["python", "train.py", "--epochs", str(epochs)],
            "cwd": "/home/bench",
            "git": {
                "commit": f"{rng.getrandbits(160):040x}",
                "branch": "main",
                "dirty": rng.random() < 0.2,
            },
        },
        "warnings": [],
        "artifacts": [
            {"path": "metrics.jsonl", "size": 400, "sha256": "0" * 64, "kind": "metrics"}
        ],
    }


def write_bundle(store: Path, meta: dict[str, Any]) -> Path:
    slug = "".join(ch if ch.isalnum() else "-" for ch in meta["project"].lower()).strip("-")
    folder = store / slug / meta["id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text(
        "".join(json.dumps(h) + "\n" for h in meta["metrics"]["history"])
    )
    (folder / "README.md").write_text(
        f"---\nlicense: apache-2.0\n---\n# {meta['name']}\n\nSynthetic run.\n"
    )
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder


def make_store(
    store: Path, *, count: int, projects: int, seed: int = 0, start_ms: int = 1_790_000_000_000
) -> list[Path]:
    rng = random.Random(seed)
    titles = [f"Project {chr(65 + i % 26)}{i // 26 or ''}" for i in range(projects)]
    return [
        write_bundle(store, metadata(rng, i, titles[i % projects], start_ms + i * 60_000))
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("store", type=Path)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    make_store(args.store, count=args.count, projects=args.projects, seed=args.seed)
    print(f"wrote {args.count} bundles to {args.store} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
