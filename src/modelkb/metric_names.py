"""Which split a logged metric name belongs to: one rule for every collector.

Keras logs ``val_loss``; Lightning programs log ``val_loss``, ``valid_loss``, ``validation/acc``,
``train_loss_epoch`` or plain ``loss``. Every collector files a name under the split its prefix
says (``train``, ``val`` or ``test``) with the prefix removed; a name without one is training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PREFIXES = (
    ("val", ("val_", "val/", "valid_", "valid/", "validation_", "validation/")),
    ("test", ("test_", "test/")),
    ("train", ("train_", "train/", "training_", "training/")),
)


def split_metric(name: str) -> tuple[str, str]:
    """``(split, base name)``: ``"valid_loss"`` -> ``("val", "loss")``, ``"acc"`` -> ``("train", "acc")``."""
    for split, prefixes in _PREFIXES:
        for prefix in prefixes:
            if name.startswith(prefix) and len(name) > len(prefix):
                return split, name[len(prefix) :]
    return "train", name


def split_train_val(metrics: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One epoch's metrics as ``(train, val)``: validation names lose their prefix, others stay.

    ``{"loss": 0.3, "val_loss": 0.4}`` -> ``({"loss": 0.3}, {"loss": 0.4})``; ``train_``/``test_``
    names are kept whole, as they were logged.
    """
    train: dict[str, Any] = {}
    val: dict[str, Any] = {}
    for name, value in metrics.items():
        split, base = split_metric(str(name))
        if split == "val":
            val[base] = value
        else:
            train[str(name)] = value
    return train, val
