"""Which split a logged metric name belongs to: one rule for every collector.

Keras logs ``val_loss``; Lightning programs log ``val_loss``, ``valid_loss``, ``validation/acc``,
``train_loss_epoch`` or plain ``loss``. Every collector files a name under the split its prefix
says (``train``, ``val`` or ``test``) with the prefix removed; a name without one is training.
"""

from __future__ import annotations

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
