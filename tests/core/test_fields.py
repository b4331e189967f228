"""Tests of the flat field view: flatten, resolve, suggest, to_number."""

from __future__ import annotations

import calendar
import math

import pytest

from modelkb.fields import ALIASES, DATE_KEYS, flatten, resolve, suggest, text_form, to_number


def metadata() -> dict:
    return {
        "schema_version": 1,
        "id": "01jdx3k9y2q8m4t6v0w1a2b3c4",
        "project": "Digits CNN",
        "name": "digits-cnn-20261129-024512-b3c4",
        "user": "ada",
        "tags": ["cnn", "baseline"],
        "status": "completed",
        "created": "2026-11-29T02:45:12.123Z",
        "finished": "2026-11-29T02:47:00Z",
        "duration_s": 107.9,
        "seed": None,
        "framework": {"name": "keras", "version": "3.6.0", "versions": {"tensorflow": "2.18.0"}},
        "hyperparameters": {
            "optimizer": {"name": "Adam", "config": {"learning_rate": 0.001, "amsgrad": False}},
            "learning_rate": 0.001,
            "loss": "categorical_crossentropy",
            "metrics": ["accuracy"],
            "epochs": 12,
            "batch_size": 32,
            "params": {"Dropout": 0.25, "lr": 0.5},
        },
        "determinism": {"seeded": [], "deterministic_ops": True},
        "architecture": {
            "layers": [{"name": "conv", "type": "Conv2D", "params": 80}, {"name": "dense"}],
            "parameter_count": 1234,
            "inputs": [{"name": "x", "shape": [None, 8, 8, 1], "dtype": "float32"}],
        },
        "dataset": {
            "kind": "image",
            "name": "digits",
            "shapes": {"x": [None, 8, 8, 1], "y": [None, 10]},
            "samples": {"train": 1437, "val": 180, "test": 180},
            "preprocessing": [{"op": "scale", "factor": 0.0625}],
        },
        "metrics": {
            "history": [{"epoch": 0, "train": {"loss": 1.2}}, {"epoch": 1, "train": {"loss": 0.4}}],
            "final": {"loss": 0.12, "accuracy": 0.97, "val_loss": 0.15, "val_accuracy": 0.95},
        },
        "context": {
            "host": "box",
            "cpu_count": 8,
            "command": ["train.py", "--epochs", "12"],
            "git": {"commit": "abc123", "branch": "main", "dirty": True, "diff": "+x"},
            "env": {"CUDA_VISIBLE_DEVICES": "0"},
        },
        "warnings": [{"message": "onnx export skipped", "source": "onnx", "time": "t"}],
        "artifacts": [{"path": "model.keras", "size": 10, "sha256": "00", "kind": "weights"}],
    }


def test_flatten_keeps_scalar_leaves_under_dotted_keys() -> None:
    flat = flatten(metadata())
    assert flat["hyperparameters.optimizer.name"] == "Adam"
    assert flat["hyperparameters.optimizer.config.learning_rate"] == 0.001
    assert flat["metrics.final.accuracy"] == 0.97
    assert flat["dataset.samples.train"] == 1437
    assert flat["context.git.branch"] == "main"
    assert flat["created"] == "2026-11-29T02:45:12.123Z"
    assert flat["schema_version"] == 1


def test_flatten_lowercases_keys_and_keeps_bools() -> None:
    flat = flatten(metadata())
    assert flat["hyperparameters.params.dropout"] == 0.25
    assert flat["context.git.dirty"] is True
    assert flat["hyperparameters.optimizer.config.amsgrad"] is False


def test_flatten_joins_lists_of_scalars() -> None:
    flat = flatten(metadata())
    assert flat["tags"] == "cnn, baseline"
    assert flat["hyperparameters.metrics"] == "accuracy"
    assert flat["context.command"] == "train.py, --epochs, 12"
    assert flat["dataset.shapes.x"] == "(None, 8, 8, 1)"
    assert flat["dataset.shapes.y"] == "(None, 10)"
    assert flatten({"flags": [True, None, 2.5]}) == {"flags": "(true, None, 2.5)"}


def test_flatten_leaves_out_nulls_empty_lists_and_lists_of_objects() -> None:
    flat = flatten(metadata())
    assert "seed" not in flat
    assert "determinism.seeded" not in flat
    assert not any(key.startswith("architecture.inputs") for key in flat)
    assert not any(key.startswith("dataset.preprocessing") for key in flat)


def test_flatten_skips_bulky_sections_and_adds_counts() -> None:
    flat = flatten(metadata())
    for prefix in ("metrics.history", "architecture.layers", "artifacts", "context.env"):
        assert not any(key.startswith(prefix) for key in flat), prefix
    assert "context.git.diff" not in flat
    assert flat["metrics.epochs_run"] == 2
    assert flat["architecture.layer_count"] == 2
    assert flat["warnings.count"] == 1
    assert not any(key.startswith("warnings.") and key != "warnings.count" for key in flat)


def test_flatten_counts_only_present_lists() -> None:
    flat = flatten({"metrics": {"final": {"loss": 1.0}}})
    assert flat == {"metrics.final.loss": 1.0}
    assert flatten({"warnings": []}) == {"warnings.count": 0}


def test_text_form() -> None:
    assert text_form(True) == "true"
    assert text_form(False) == "false"
    assert text_form(10) == "10"
    assert text_form(0.001) == "0.001"
    assert text_form("Adam") == "Adam"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, 1.0),
        (False, 0.0),
        (3, 3.0),
        (0.5, 0.5),
        ("42", 42.0),
        ("-1.5e3", -1500.0),
        (".5", 0.5),
        ("2026-11-01", calendar.timegm((2026, 11, 1, 0, 0, 0))),
        ("2026-11-01T10:00", calendar.timegm((2026, 11, 1, 10, 0, 0))),
        ("2026-11-01T10:00:05Z", calendar.timegm((2026, 11, 1, 10, 0, 5))),
        ("2026-11-01T10:00:00+01:00", calendar.timegm((2026, 11, 1, 9, 0, 0))),
        ("2026-11-01T10:00:00-0130", calendar.timegm((2026, 11, 1, 11, 30, 0))),
        ("2026-11-29T02:45:12.123Z", calendar.timegm((2026, 11, 29, 2, 45, 12)) + 0.123),
        ("2026-13-01", None),
        ("2026-02-30T10:00", None),
        ("Adam", None),
        (" 1", None),
        ("nan", None),
        ("inf", None),
        (float("nan"), None),
        (None, None),
        ([1], None),
    ],
)
def test_to_number(value: object, expected: float | None) -> None:
    assert to_number(value) == expected


def test_to_number_keeps_infinity() -> None:
    assert to_number(float("inf")) == math.inf
    assert to_number(-(10**400)) == -math.inf
    assert to_number("1e999") == math.inf


def test_date_keys() -> None:
    assert {"created", "finished"} == DATE_KEYS
    flat = flatten(metadata())
    assert all(to_number(flat[key]) is not None for key in DATE_KEYS)


KEYS = list(flatten(metadata()))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("optimizer", "hyperparameters.optimizer.name"),
        ("OPTIMIZER", "hyperparameters.optimizer.name"),
        ("lr", "hyperparameters.learning_rate"),
        ("learning_rate", "hyperparameters.learning_rate"),
        ("loss", "metrics.final.loss"),
        ("loss_fn", "hyperparameters.loss"),
        ("acc", "metrics.final.accuracy"),
        ("Val_Acc", "metrics.final.val_accuracy"),
        ("val_loss", "metrics.final.val_loss"),
        ("epochs", "hyperparameters.epochs"),
        ("batch", "hyperparameters.batch_size"),
        ("framework", "framework.name"),
        ("layers", "architecture.layer_count"),
        ("params", "architecture.parameter_count"),
        ("kind", "dataset.kind"),
        ("owner", "user"),
        ("date", "created"),
        ("commit", "context.git.commit"),
        ("branch", "context.git.branch"),
        # exact full keys
        ("hyperparameters.params.lr", "hyperparameters.params.lr"),
        ("Metrics.Final.Loss", "metrics.final.loss"),
        # suffixes, ranked by section
        ("name", "name"),  # top level beats framework.name and optimizer.name
        ("optimizer.name", "hyperparameters.optimizer.name"),
        ("final.accuracy", "metrics.final.accuracy"),
        ("dropout", "hyperparameters.params.dropout"),
        ("train", "dataset.samples.train"),
        ("dirty", "context.git.dirty"),
        ("tensorflow", "framework.versions.tensorflow"),
        ("epochs_run", "metrics.epochs_run"),
        ("nope", None),
        ("ame", None),  # suffixes match whole segments only
    ],
)
def test_resolve(name: str, expected: str | None) -> None:
    assert resolve(name, KEYS) == expected


def test_resolve_section_order_then_shortest() -> None:
    keys = [
        "context.x",
        "framework.x",
        "architecture.x",
        "dataset.y.x",
        "dataset.x",
        "hyperparameters.params.x",
        "hyperparameters.deep.x",
        "metrics.final.x",
        "onnx.x",
    ]
    expected_order = keys[7], keys[6], keys[5], keys[4], keys[3], keys[2], keys[1], keys[0]
    remaining = list(keys)
    for expected in expected_order:
        assert resolve("x", remaining) == expected
        remaining.remove(expected)
    assert resolve("x", remaining) == "onnx.x"  # unknown sections rank last
    assert resolve("x", ["a.b.x", "z.x"]) == "z.x"  # shortest
    assert resolve("x", ["b.x", "a.x"]) == "a.x"  # then alphabetical


def test_alias_needs_its_target_unless_keys_are_empty() -> None:
    keys = ["hyperparameters.params.lr", "hyperparameters.params.optimizer"]
    assert resolve("lr", keys) == "hyperparameters.params.lr"
    assert resolve("optimizer", keys) == "hyperparameters.params.optimizer"
    assert resolve("accuracy", keys) is None
    assert resolve("lr", []) == "hyperparameters.learning_rate"
    assert resolve("Some.Key", []) == "some.key"


def test_every_alias_target_is_a_lowercase_dotted_key() -> None:
    for alias, target in ALIASES.items():
        assert alias == alias.lower() and target == target.lower()
        assert resolve(alias, [target]) == target


def test_suggest() -> None:
    assert "optimizer" in suggest("optimiser", KEYS)
    assert suggest("epoch", KEYS)[0] == "epochs"
    assert suggest("metrics.final.acuracy", KEYS)[0] == "metrics.final.accuracy"
    assert suggest("zzzzzz", KEYS) == []
