"""What each tracker adds to the benchmark scripts: the lines its documentation shows for a
training script, nothing more. ``torch_tracker`` returns callbacks for ModelKB's ``Model.fit``
(hooks ``on_epoch_end(epoch, train, val, **_)`` and ``on_train_end()``); ``keras_callbacks`` the
Keras callbacks. Peers are imported only when picked (they live in ``.bench-venv``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class _EpochLogger:
    """Adapts one tracker's per-epoch logging call to ``Model.fit``'s hooks."""

    def __init__(self, log: Any, end: Any) -> None:
        self._log, self._end = log, end

    def on_epoch_end(
        self, epoch: int, train: dict[str, float], val: dict[str, float], **_: Any
    ) -> None:
        self._log(epoch, {**train, **{f"val_{k}": v for k, v in val.items()}})

    def on_train_end(self) -> None:
        self._end()


def torch_tracker(
    name: str, store: Path, net: Any, params: dict[str, Any], example: Any
) -> list[Any]:
    """``example``: one input batch (MLflow's model format traces the network on it)."""
    store.mkdir(parents=True, exist_ok=True)
    if name == "none":
        return []
    if name == "modelkb":
        from modelkb import Experiment
        from modelkb.torch import PytorchCallbacks

        return [PytorchCallbacks(Experiment("MNIST", "bench", seed=1, store=store))]
    if name == "mlflow":  # autolog covers Lightning only: the documented manual calls
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the "file store"
        import mlflow
        import mlflow.pytorch

        mlflow.set_tracking_uri(store.as_uri())
        mlflow.set_experiment("mnist")
        mlflow.start_run()
        mlflow.log_params(params)

        def end() -> None:
            mlflow.pytorch.log_model(net, name="model", input_example=example.numpy())
            mlflow.end_run()

        return [_EpochLogger(lambda e, m: mlflow.log_metrics(m, step=e), end)]
    if name == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(store))

        def log(epoch: int, metrics: dict[str, float]) -> None:
            for key, value in metrics.items():
                writer.add_scalar(key, value, epoch)

        return [_EpochLogger(log, writer.close)]
    if name == "dvclive":
        import torch
        from dvclive import Live

        live = Live(str(store), save_dvc_exp=False)
        live.log_params(params)

        def log(epoch: int, metrics: dict[str, float]) -> None:
            for key, value in metrics.items():
                live.log_metric(key, value)
            live.next_step()

        def end() -> None:
            torch.save(net.state_dict(), store / "model.pt")
            live.log_artifact(str(store / "model.pt"), type="model")
            live.end()

        return [_EpochLogger(log, end)]
    if name == "wandb":
        import wandb

        run = wandb.init(project="mnist", mode="offline", dir=str(store), config=params)
        return [_EpochLogger(lambda e, m: run.log(m, step=e), run.finish)]
    if name == "aim":
        from aim import Run

        run = Run(repo=str(store))
        run["hparams"] = params

        def log(epoch: int, metrics: dict[str, float]) -> None:
            for key, value in metrics.items():
                run.track(value, name=key, epoch=epoch)

        return [_EpochLogger(log, run.close)]
    raise SystemExit(f"unknown tracker {name!r}")


def keras_callbacks(name: str, store: Path) -> list[Any]:
    store.mkdir(parents=True, exist_ok=True)
    if name == "none":
        return []
    if name == "modelkb":
        from modelkb import Experiment
        from modelkb.keras import KerasCallback

        return [KerasCallback(Experiment("MNIST", "bench", seed=1, store=store))]
    if name == "mlflow":
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        import mlflow

        mlflow.set_tracking_uri(store.as_uri())
        mlflow.set_experiment("mnist")
        mlflow.keras.autolog()  # logs params, metrics and the model when fit ends
        return []
    if name == "tensorboard":
        import keras

        return [keras.callbacks.TensorBoard(log_dir=str(store))]
    if name == "dvclive":
        from dvclive import Live
        from dvclive.keras import DVCLiveCallback

        return [DVCLiveCallback(live=Live(str(store), save_dvc_exp=False), save_model=True)]
    if name == "wandb":
        import wandb
        from wandb.integration.keras import WandbMetricsLogger

        os.environ.setdefault("WANDB_SILENT", "true")
        wandb.init(project="mnist", mode="offline", dir=str(store))
        return [WandbMetricsLogger()]
    if name == "aim":
        from aim.keras import AimCallback

        return [AimCallback(repo=str(store), experiment="mnist")]
    raise SystemExit(f"unknown tracker {name!r}")
