"""What a run's model does (classification or regression) and which way its metrics improve.

One owner for a question several readers ask: the serverless handler (probabilities or values),
the catalog's try-the-model panel (labels or numbers), the project cards and the compare page
(which run is best, by which metric, higher or lower). The task comes from the recorded loss, then
the classes; a metric's direction from its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

Task = Literal["classification", "regression"]
Direction = Literal["lower", "higher"]

# Normalised loss names: lower case, letters and digits only, a trailing "loss" dropped.
_REGRESSION_LOSSES = frozenset(
    {
        "mse",
        "meansquarederror",
        "mae",
        "meanabsoluteerror",
        "mape",
        "meanabsolutepercentageerror",
        "msle",
        "meansquaredlogarithmicerror",
        "huber",
        "logcosh",
        "l1",
        "smoothl1",
        "mseloss",
        "gaussiannll",
        "poissonnll",
        "poisson",
        "rmse",
        "rootmeansquarederror",
    }
)
_CLASSIFICATION_PARTS = ("crossentropy", "nll", "hinge", "focal", "bce", "kldiv", "kullbackleibler")
_CLASSIFICATION_NAMES = frozenset({"ce", "kld"})
_LOWER_IS_BETTER = re.compile(r"(loss|error|mse|mae|mape|msle|rmse|perplexity|wer|cer)$")
# Keras numbers a repeated metric (auc_1): the suffix does not change what it measures.
_HIGHER_IS_BETTER = re.compile(r"(accuracy|acc|auc|f1|f1_score|precision|recall|iou)(_\d+)?$")


def loss_task(loss: Any) -> Task | None:
    """The task a loss name implies (``"mean_squared_error"``, ``MSELoss``, ``"sparse_categorical_crossentropy"``)."""
    if isinstance(loss, Mapping):
        loss = loss.get("name") or loss.get("class_name")
    if isinstance(loss, list) and loss:
        loss = loss[0]
    if not isinstance(loss, str) or not loss:
        return None
    word = re.sub(r"[^a-z0-9]", "", loss.lower())
    word = word.removesuffix("loss") or word
    if word in _REGRESSION_LOSSES:
        return "regression"
    if word in _CLASSIFICATION_NAMES or any(part in word for part in _CLASSIFICATION_PARTS):
        return "classification"
    return None


def run_task(metadata: Mapping[str, Any]) -> Task | None:
    """A run's task: its recorded loss, else ``classification`` when it records classes, else None."""
    hyperparameters = metadata.get("hyperparameters")
    found = loss_task(hyperparameters.get("loss")) if isinstance(hyperparameters, Mapping) else None
    if found:
        return found
    dataset = metadata.get("dataset")
    if isinstance(dataset, Mapping) and (dataset.get("classes") or dataset.get("num_classes")):
        return "classification"
    return None


def _metric_name(metric: str) -> str:
    """``metrics.final.val_loss`` -> ``loss``: the last part, lower case, without its split."""
    return metric.rsplit(".", 1)[-1].lower().removeprefix("val_").removeprefix("test_")


def lower_is_better(metric: str) -> bool:
    """True for metrics that improve downwards (``val_loss``, ``mae``, ``mean_squared_error``)."""
    name = _metric_name(metric)
    return bool(_LOWER_IS_BETTER.search(name)) or name in _REGRESSION_LOSSES


def metric_direction(metric: str) -> Direction | None:
    """Which way a metric improves: ``"lower"`` (loss, error, mse, perplexity, ...), ``"higher"``
    (accuracy, auc, f1, precision, recall, iou), or ``None`` when its name does not say."""
    if lower_is_better(metric):
        return "lower"
    return "higher" if _HIGHER_IS_BETTER.search(_metric_name(metric)) else None
