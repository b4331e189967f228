"""A realistic sealed run's ``metadata.json``, shared by tests.

``sample_metadata()`` builds the metadata of a small Keras CNN trained for 3 epochs on the 8x8
scikit-learn digits; every call returns a fresh dict. Tests take it as the ``sample_metadata``
fixture, or import it where a fixture cannot go (parametrize, hypothesis).
"""

from __future__ import annotations

from typing import Any

SAMPLE_ID = "01jdx3k9y2q8m4t6v0w1a2b3c4"

_HISTORY = [
    {
        "epoch": 0,
        "train": {"loss": 1.8421, "accuracy": 0.4523},
        "val": {"loss": 1.2307, "accuracy": 0.7167},
        "lr": 0.001,
        "time_s": 1.31,
    },
    {
        "epoch": 1,
        "train": {"loss": 0.8154, "accuracy": 0.8232},
        "val": {"loss": 0.5862, "accuracy": 0.8833},
        "lr": 0.001,
        "time_s": 0.42,
    },
    {
        "epoch": 2,
        "train": {"loss": 0.4377, "accuracy": 0.9026},
        "val": {"loss": 0.3561, "accuracy": 0.9222},
        "lr": 0.001,
        "time_s": 0.40,
    },
]


def sample_metadata() -> dict[str, Any]:
    """A fresh, schema-valid ``metadata.json`` of a finished Keras digits run."""
    return {
        "schema_version": 1,
        "id": SAMPLE_ID,
        "project": "Digits CNN",
        "name": "digits-cnn-20261129-024512-b3c4",
        "user": "ada",
        "notes": "Baseline: one conv block, no augmentation.",
        "tags": ["cnn", "baseline"],
        "status": "completed",
        "created": "2026-11-29T02:45:12.123Z",
        "finished": "2026-11-29T02:45:19.870Z",
        "duration_s": 7.747,
        "framework": {
            "name": "keras",
            "version": "3.6.0",
            "backend": "tensorflow",
            "versions": {"keras": "3.6.0", "tensorflow": "2.18.0", "numpy": "2.0.2"},
        },
        "hyperparameters": {
            "optimizer": {
                "name": "Adam",
                "config": {
                    "learning_rate": 0.001,
                    "beta_1": 0.9,
                    "beta_2": 0.999,
                    "amsgrad": False,
                },
            },
            "learning_rate": 0.001,
            "loss": "categorical_crossentropy",
            "metrics": ["accuracy"],
            "epochs": 3,
            "batch_size": 32,
            "steps_per_epoch": 45,
            "params": {"filters": 8, "kernel_size": 3},
        },
        "seed": 42,
        "determinism": {"seeded": ["numpy", "python", "tensorflow"], "deterministic_ops": True},
        "architecture": {
            "layers": [
                {
                    "name": "conv2d",
                    "type": "Conv2D",
                    "config": {"filters": 8, "kernel_size": [3, 3], "activation": "relu"},
                    "params": 80,
                    "output_shape": [None, 6, 6, 8],
                },
                {
                    "name": "max_pooling2d",
                    "type": "MaxPooling2D",
                    "config": {"pool_size": [2, 2]},
                    "params": 0,
                    "output_shape": [None, 3, 3, 8],
                },
                {
                    "name": "flatten",
                    "type": "Flatten",
                    "config": {},
                    "params": 0,
                    "output_shape": [None, 72],
                },
                {
                    "name": "dense",
                    "type": "Dense",
                    "config": {"units": 10, "activation": "softmax"},
                    "params": 730,
                    "output_shape": [None, 10],
                },
            ],
            "parameter_count": 810,
            "trainable_parameter_count": 810,
            "inputs": [{"name": "input_layer", "shape": [None, 8, 8, 1], "dtype": "float32"}],
            "outputs": [{"name": "dense", "shape": [None, 10], "dtype": "float32"}],
        },
        "dataset": {
            "kind": "image",
            "name": "digits",
            "shapes": {"x": [None, 8, 8, 1], "y": [None, 10]},
            "samples": {"train": 1437, "val": 180, "test": 180},
            "dtype": "float32",
            "classes": [str(digit) for digit in range(10)],
            "preprocessing": [{"op": "scale", "factor": 1 / 16}],
            "loading": ["sklearn.datasets.load_digits()"],
            "location": "sklearn.datasets",
        },
        "metrics": {
            "history": [
                {**entry, "train": dict(entry["train"]), "val": dict(entry["val"])}
                for entry in _HISTORY
            ],
            "final": {
                "accuracy": 0.9026,
                "loss": 0.4377,
                "val_accuracy": 0.9222,
                "val_loss": 0.3561,
            },
        },
        "context": {
            "host": "ws-17",
            "os": "Linux 6.8.0",
            "platform": "Linux-6.8.0-x86_64-with-glibc2.36",
            "python": "3.11.7",
            "cpu": "x86_64",
            "cpu_count": 8,
            "memory_gb": 31.2,
            "gpu": None,
            "command": ["python", "train_digits.py", "--epochs", "3"],
            "cwd": "/home/ada/digits",
            "git": {
                "commit": "3f9c2b7e8a1d4c6b9e0f2a3b4c5d6e7f8a9b0c1d",
                "branch": "main",
                "dirty": False,
                "remote": "https://github.com/ada/digits.git",
            },
            "env": {"CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "42"},
        },
        "warnings": [],
        "artifacts": [
            {
                "path": "README.md",
                "size": 2911,
                "sha256": "9b2f4c1d0e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c",
                "kind": "card",
            },
            {
                "path": "metrics.jsonl",
                "size": 402,
                "sha256": "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e",
                "kind": "metrics",
            },
            {
                "path": "model.keras",
                "size": 30544,
                "sha256": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f",
                "kind": "weights",
            },
            {
                "path": "model.onnx",
                "size": 4620,
                "sha256": "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
                "kind": "onnx",
            },
            {
                "path": "requirements.lock",
                "size": 1288,
                "sha256": "c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2",
                "kind": "lockfile",
            },
        ],
        "onnx": {"path": "model.onnx", "opset": 17, "max_abs_diff": 2.4e-07, "checked_on": "cpu"},
    }
