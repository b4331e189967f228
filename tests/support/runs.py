"""Quick real runs and bundles without a framework, and ways to look at a store's files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from modelkb.experiment import Experiment
from modelkb.extras import available
from modelkb.store import Store


def write_run(
    store: Path,
    project: str = "Digits",
    *,
    user: str = "alice",
    epochs: int = 3,
    params: dict | None = None,
    accuracy: float = 0.9,
    seed: int | None = 1,
    **kwargs,
) -> Experiment:
    """A finished framework-free run with ``epochs`` logged epochs."""
    with Experiment(project, user, seed=seed, store=store, capture_code=False, **kwargs) as exp:
        exp.log_params({"epochs": epochs, "batch_size": 32, "optimizer": "Adam", **(params or {})})
        for epoch in range(epochs):
            step = (epoch + 1) / epochs
            exp.log_metrics(
                {
                    "loss": 1.0 - 0.5 * step,
                    "accuracy": accuracy * step,
                    "val_loss": 1.1 - 0.5 * step,
                    "val_accuracy": accuracy * step - 0.01,
                },
                epoch=epoch,
            )
    return exp


def make_bundle(
    store_root: Path,
    project: str = "Digits CNN",
    *,
    model: bytes | None = None,
    weights_size: int = 6000,
    seed: int = 1,
) -> str:
    """A finished framework-free run with a model, weights, code and a card; returns its id."""
    with Experiment(
        project, "ada", seed=seed, store=store_root, capture_code=False, tags=["test"]
    ) as exp:
        exp.log_params({"epochs": 2, "batch_size": 16, "optimizer": "Adam"})
        exp.set_dataset(kind="tabular", name="iris", classes=["setosa", "versicolor", "virginica"])
        for epoch in range(2):
            exp.log_metrics(
                {
                    "loss": 1.0 / (epoch + 1),
                    "accuracy": 0.6 + 0.2 * epoch,
                    "val_loss": 1.1 / (epoch + 1),
                    "val_accuracy": 0.55 + 0.2 * epoch,
                },
                epoch=epoch,
            )
        exp.artifact_path("model.onnx").write_bytes(
            model if model is not None else os.urandom(5000)
        )
        exp.artifact_path("model.safetensors").write_bytes(os.urandom(weights_size))
        exp.artifact_path("code/train.py").write_text(
            "import numpy\nprint('train')\n", encoding="utf-8"
        )
        exp.artifact_path("code/sub/util.py").write_text("VALUE = 1\n", encoding="utf-8")
    return exp.id


def tiny_onnx_model() -> bytes | None:
    """A real 4-feature, 3-class softmax classifier as ONNX bytes, or None without ``onnx``."""
    if not available("onnx"):
        return None
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "W")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, 3])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model.SerializeToString()


def store_snapshot(store: Store) -> dict[str, bytes]:
    """Every file of the store but the index (to prove a failure left it untouched)."""
    out = {}
    if not store.root.exists():
        return out
    for path in sorted(store.root.rglob("*")):
        rel = path.relative_to(store.root).as_posix()
        if rel.startswith(".modelkb/index") or path.is_dir():
            continue
        out[rel] = path.read_bytes()
    return out


def artifact_bytes(folder: Path) -> dict[str, bytes]:
    """Each artifact's bytes, by the path metadata.json lists it under."""
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    return {a["path"]: (folder / a["path"]).read_bytes() for a in meta["artifacts"]}
