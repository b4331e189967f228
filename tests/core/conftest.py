"""Fixtures for the core tests: isolated stores and quick framework-free runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelkb.experiment import Experiment
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


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def make_run():
    """The :func:`write_run` helper."""
    return write_run
