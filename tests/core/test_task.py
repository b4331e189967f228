"""Which way a metric improves, from its name (the compare page and project cards rely on it)."""

from __future__ import annotations

import pytest

from modelkb.task import lower_is_better, metric_direction


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("metrics.final.loss", "lower"),
        ("metrics.final.val_loss", "lower"),
        ("test_error", "lower"),
        ("mse", "lower"),
        ("val_mae", "lower"),
        ("rmse", "lower"),
        ("perplexity", "lower"),
        ("mean_squared_error", "lower"),
        ("metrics.final.accuracy", "higher"),
        ("val_accuracy", "higher"),
        ("val_acc", "higher"),
        ("auc", "higher"),
        ("auc_1", "higher"),
        ("f1", "higher"),
        ("F1_Score", "higher"),
        ("precision", "higher"),
        ("recall", "higher"),
        ("mean_iou", "higher"),
        ("metrics.final.lr", None),
        ("epochs_run", None),
        ("throughput", None),
    ],
)
def test_metric_direction_comes_from_the_name(metric: str, direction: str | None) -> None:
    assert metric_direction(metric) == direction
    assert lower_is_better(metric) is (direction == "lower")
