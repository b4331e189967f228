"""Tiny real bundles for the serverless tests: Keras and PyTorch models of each data kind.

Models are trained for a few seeded epochs on scikit-learn's digits (image, 8x8) and iris/wine
(tabular) and on a synthetic token-id text set, exported to ONNX, and written as sealed bundles.
``reference`` predictions come from the framework itself on the same raw inputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelkb.bundle import BundleWriter
from modelkb.ids import new_id, utc_now

WORDS = [
    "good",
    "great",
    "fine",
    "love",
    "nice",
    "bad",
    "awful",
    "poor",
    "hate",
    "ugly",
    "the",
    "a",
    "movie",
    "plot",
    "was",
    "and",
    "very",
    "it",
    "film",
    "acting",
]
VOCAB = {word: i + 2 for i, word in enumerate(WORDS)}  # 0 = padding, 1 = out of vocabulary
MAXLEN = 12


@dataclass
class Case:
    """One packaged-model test case."""

    name: str
    bundle: Path
    metadata: dict[str, Any]
    raw: list[Any]  # raw samples, as a client sends them
    reference: np.ndarray  # the framework's own probabilities for ``raw``


def write_bundle(
    store: Path,
    *,
    project: str,
    framework: str,
    dataset: dict[str, Any],
    inputs: list[dict[str, Any]],
    layers: list[dict[str, Any]] | None = None,
    write_onnx: Callable[[Path], None],
) -> tuple[Path, dict[str, Any]]:
    """A sealed bundle written without the collector (its format is the only contract)."""
    run_id = new_id()
    writer = BundleWriter(store / project.lower().replace(" ", "-") / run_id)
    writer.folder.mkdir(parents=True)
    write_onnx(writer.folder / "model.onnx")
    metadata = {
        "schema_version": 1,
        "id": run_id,
        "project": project,
        "name": f"{project}-{run_id[-4:]}".lower().replace(" ", "-"),
        "status": "completed",
        "created": utc_now(),
        "finished": utc_now(),
        "seed": 0,
        "tags": [],
        "warnings": [],
        "framework": {"name": framework, "version": "test", "versions": {}},
        "architecture": {"inputs": inputs, "layers": layers or []},
        "dataset": dataset,
        "onnx": {"path": "model.onnx", "opset": 18, "max_abs_diff": 0.0, "checked_on": "cpu"},
    }
    return writer.folder, writer.seal(metadata, card=False)


def text_data(n: int = 240, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        pool = WORDS[:5] if label else WORDS[5:10]
        words = list(rng.choice(WORDS[10:], size=int(rng.integers(2, 8)))) + list(
            rng.choice(pool, size=int(rng.integers(1, 4)))
        )
        rng.shuffle(words)
        if rng.random() < 0.3:
            words.append("unseenword")
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.asarray(labels)


def encode_texts(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), MAXLEN), dtype=np.int64)
    for row, text in enumerate(texts):
        ids = [VOCAB.get(w, 1) for w in text.lower().split()][:MAXLEN]
        out[row, : len(ids)] = ids
    return out


TOKENIZE = {"op": "tokenize", "vocab": VOCAB, "oov_index": 1, "lower": True, "split": "whitespace"}
PAD = {"op": "pad", "maxlen": MAXLEN, "value": 0, "padding": "post", "truncating": "post"}


def _data(kind: str, flavour: str) -> dict[str, Any]:
    from sklearn.datasets import load_digits, load_iris, load_wine

    if kind == "image":
        digits = load_digits()
        return {
            "raw": digits.images[:300].astype(np.float64),
            "y": digits.target[:300],
            "classes": [str(i) for i in range(10)],
        }
    if kind == "tabular":
        data = load_iris() if flavour == "keras" else load_wine()
        x = data.data.astype(np.float64)
        return {
            "raw": x,
            "y": data.target,
            "classes": [str(c) for c in data.target_names],
            "features": [str(f) for f in data.feature_names],
            "mean": x.mean(axis=0),
            "std": x.std(axis=0),
        }
    texts, y = text_data()
    return {"raw": texts, "y": y, "classes": ["negative", "positive"]}


def keras_case(store: Path, kind: str) -> Case:
    import keras

    keras.utils.set_random_seed(0)
    data = _data(kind, "keras")
    if kind == "image":
        steps = [{"op": "scale", "factor": 0.0625}, {"op": "expand_dims", "axis": -1}]
        x = (data["raw"] * 0.0625)[..., None].astype("float32")
        model = keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                keras.layers.Conv2D(4, 3, activation="relu"),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        inputs = [{"name": "input_layer", "shape": [None, 8, 8, 1], "dtype": "float32"}]
        dataset = {
            "kind": "image",
            "classes": data["classes"],
            "preprocessing": steps,
            "x_range": {"min": 0.0, "max": 1.0},
        }
    elif kind == "tabular":
        steps = [
            {"op": "normalize", "mean": data["mean"].tolist(), "std": data["std"].tolist()},
            {"op": "cast", "dtype": "float32"},
        ]
        x = ((data["raw"] - data["mean"]) / data["std"]).astype("float32")
        model = keras.Sequential(
            [
                keras.Input((x.shape[1],)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dense(len(data["classes"]), activation="softmax"),
            ]
        )
        inputs = [{"name": "input_layer", "shape": [None, x.shape[1]], "dtype": "float32"}]
        dataset = {
            "kind": "tabular",
            "classes": data["classes"],
            "features": data["features"],
            "preprocessing": steps,
        }
    else:
        steps = [TOKENIZE, PAD]
        x = encode_texts(data["raw"]).astype("int64")
        model = keras.Sequential(
            [
                keras.Input((MAXLEN,), dtype="int64"),
                keras.layers.Embedding(len(VOCAB) + 2, 8),
                keras.layers.GlobalAveragePooling1D(),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )
        inputs = [{"name": "input_layer", "shape": [None, MAXLEN], "dtype": "int64"}]
        dataset = {"kind": "text", "classes": data["classes"], "preprocessing": steps}
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, data["y"], epochs=2, batch_size=32, verbose=0)
    reference = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    folder, metadata = write_bundle(
        store,
        project=f"keras {kind}",
        framework="keras",
        dataset=dataset,
        inputs=inputs,
        write_onnx=lambda path: model.export(str(path), format="onnx", verbose=False),
    )
    raw = data["raw"].tolist() if kind != "text" else list(data["raw"])
    return Case(f"keras-{kind}", folder, metadata, raw, reference)


def torch_case(store: Path, kind: str) -> Case:
    import torch
    from torch import nn

    torch.manual_seed(0)
    data = _data(kind, "torch")
    if kind == "image":
        steps = [
            {"op": "scale", "factor": 0.0625},
            {"op": "reshape", "shape": [-1, 1, 8, 8]},
            {"op": "cast", "dtype": "float32"},
        ]
        x = (data["raw"] * 0.0625).reshape(-1, 1, 8, 8).astype("float32")
        net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
        inputs = [{"name": "x", "shape": [None, 1, 8, 8], "dtype": "float32"}]
        dataset = {
            "kind": "image",
            "classes": data["classes"],
            "preprocessing": steps,
            "x_range": {"min": 0.0, "max": 1.0},
        }
    elif kind == "tabular":
        steps = [
            {"op": "normalize", "mean": data["mean"].tolist(), "std": data["std"].tolist()},
            {"op": "cast", "dtype": "float32"},
        ]
        x = ((data["raw"] - data["mean"]) / data["std"]).astype("float32")
        net = nn.Sequential(nn.Linear(x.shape[1], 8), nn.ReLU(), nn.Linear(8, len(data["classes"])))
        inputs = [{"name": "x", "shape": [None, x.shape[1]], "dtype": "float32"}]
        dataset = {
            "kind": "tabular",
            "classes": data["classes"],
            "features": data["features"],
            "preprocessing": steps,
        }
    else:
        steps = [TOKENIZE, PAD]
        x = encode_texts(data["raw"])

        class Bag(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = nn.Embedding(len(VOCAB) + 2, 8)
                self.head = nn.Linear(8, 2)

            def forward(self, ids: torch.Tensor) -> torch.Tensor:
                return self.head(self.embed(ids).mean(dim=1))

        net = Bag()
        inputs = [{"name": "ids", "shape": [None, MAXLEN], "dtype": "int64"}]
        dataset = {"kind": "text", "classes": data["classes"], "preprocessing": steps}
    xt, yt = torch.from_numpy(x), torch.from_numpy(np.asarray(data["y"], dtype=np.int64))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(20):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        reference = torch.softmax(net(xt), dim=1).double().numpy()

    def export(path: Path) -> None:
        batch = torch.export.Dim("batch", min=1)
        torch.onnx.export(
            net,
            (xt[:2],),
            str(path),
            dynamo=True,
            external_data=False,
            input_names=[inputs[0]["name"]],
            dynamic_shapes=({0: batch},),
            verbose=False,
        )

    folder, metadata = write_bundle(
        store,
        project=f"torch {kind}",
        framework="pytorch",
        dataset=dataset,
        inputs=inputs,
        write_onnx=export,
    )
    raw = data["raw"].tolist() if kind != "text" else list(data["raw"])
    return Case(f"torch-{kind}", folder, metadata, raw, reference)


def dump(case: Case) -> str:
    return json.dumps({"name": case.name, "bundle": str(case.bundle)})
