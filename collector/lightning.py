"""Lightning collector: ``Trainer(callbacks=[LightningCallback(exp)])`` records the run into a bundle.

A thin translation of Lightning hooks into :class:`~modelkb.collector.torch.capture.TorchCapture` calls, so
architecture capture, safetensors, ONNX export and parity check are the PyTorch collector's own.
Only rank zero writes (``trainer.is_global_zero``); other ranks do nothing.

Epoch metrics come from ``trainer.callback_metrics``: validation values are taken at
``on_validation_epoch_end`` (never during the sanity check) and the epoch is logged at
``on_train_epoch_end`` with names split into ``train`` and ``val`` (``val_loss``/``val/loss`` ->
``val.loss``; ``train_loss`` -> ``train.loss``; ``*_step`` values are skipped in favour of
``*_epoch``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelkb.collector.capture_options import CaptureOptions
from modelkb.collector.torch.capture import TorchCapture
from modelkb.collector.torch.describe import current_lr, optimizer_summary
from modelkb.collector.torch.tensors import first_tensor, plain
from modelkb.extras import require
from modelkb.metric_names import split_metric

try:
    import lightning.pytorch as pl
except ImportError:  # the standalone package, or the extra is missing (fails at construction)
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError:
        pl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from modelkb.experiment import Experiment

__all__ = ["LightningCallback", "split_metrics"]

_Base: Any = pl.Callback if pl is not None else object


def split_metrics(metrics: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """``trainer.callback_metrics`` as ``(train, val)`` dicts of floats (test metrics left out)."""
    train: dict[str, float] = {}
    val: dict[str, float] = {}
    for key, value in metrics.items():
        number = plain(value)
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            continue
        name = str(key)
        if name.endswith("_step") or split_metric(name)[0] == "test":
            continue
        split, base = split_metric(name.removesuffix("_epoch"))
        if split == "val":
            val[base] = float(number)
        elif split == "train" and base != name.removesuffix("_epoch"):
            train[base] = float(number)  # an explicit train_ name wins over a plain one
        elif split == "train":
            train.setdefault(base, float(number))
    return train, val


class LightningCallback(_Base):  # type: ignore[misc]
    """Record a Lightning ``Trainer.fit`` run into ``experiment``'s bundle.

    Args:
        experiment: The :class:`~modelkb.experiment.Experiment` to fill.
        export_onnx, save_weights, sample_inputs, dataset, init_args: What to capture at the end
            of ``fit``, as :class:`~modelkb.collector.capture_options.CaptureOptions` describes.
            The default sample is ``example_input_array``, else the first batch; the default
            ``init_args`` are ``pl_module.hparams``.
    """

    def __init__(
        self,
        experiment: Experiment,
        *,
        export_onnx: bool = True,
        save_weights: bool = True,
        sample_inputs: Any = None,
        dataset: Mapping[str, Any] | None = None,
        init_args: Any = None,
    ) -> None:
        require("torch", "torch")
        if pl is None:
            require("lightning.pytorch", "lightning")
        super().__init__()
        self.experiment = experiment
        options = CaptureOptions(
            export_onnx=export_onnx,
            save_weights=save_weights,
            sample_inputs=sample_inputs,
            dataset=dataset or {},
            init_args=init_args,
        )
        self._capture = TorchCapture(experiment, options, source="lightning")
        self._active = False
        self._first = True
        self._val: dict[str, float] = {}
        self._val_epoch: int | None = None

    # -- start ------------------------------------------------------------------------------------
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero or self._active:
            return
        self._active = True
        optimizers: list[Any] = []
        hyper: dict[str, Any] = {}
        data: dict[str, Any] = {}
        batch_size = steps = None
        with self._capture.guard("reading the trainer"):
            optimizers = list(getattr(trainer, "optimizers", None) or [])
            if len(optimizers) > 1:
                hyper["optimizers"] = [optimizer_summary(o) for o in optimizers]
            schedulers = [
                getattr(c, "scheduler", None)
                for c in getattr(trainer, "lr_scheduler_configs", None) or []
            ]
            if schedulers:
                hyper["lr_scheduler"] = {"name": type(schedulers[0]).__name__}
            loader = getattr(trainer, "train_dataloader", None)
            if loader is not None:
                data["loader"] = loader
            val_loader = _single(getattr(trainer, "val_dataloaders", None))
            if val_loader is not None and getattr(trainer, "limit_val_batches", 1) != 0:
                data["val_loader"] = val_loader
            self._capture.offer_sample(
                first_tensor(getattr(pl_module, "example_input_array", None))
            )
            batch_size = _batch_size(trainer, pl_module, loader)
            steps = getattr(trainer, "num_training_batches", None)
            steps = (
                int(steps) if isinstance(steps, (int, float)) and steps != float("inf") else None
            )
        with self._capture.guard("starting the run"):
            self._capture.begin(
                pl_module,
                optimizers[0] if optimizers else None,
                _find_criterion(pl_module),
                epochs=_max_epochs(trainer),
                batch_size=batch_size,
                steps_per_epoch=steps,
                data=data,
                versions={"lightning": getattr(pl, "__version__", None) or "unknown"},
                hyperparameters=hyper,
            )
        with self._capture.guard("recording hparams"):
            hparams = getattr(pl_module, "hparams", None)
            if isinstance(hparams, Mapping) and hparams:
                self.experiment.log_params(dict(hparams))

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._active or not self._first:
            return
        self._first = False
        with self._capture.guard("describing the first batch"):
            inputs, targets = (
                (batch[0], batch[1])
                if isinstance(batch, (tuple, list)) and len(batch) >= 2
                else (batch, None)
            )
            self._capture.first_batch(inputs if first_tensor(inputs) is not None else None, targets)

    # -- epochs -----------------------------------------------------------------------------------
    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._active or getattr(trainer, "sanity_checking", False):
            return
        with self._capture.guard("reading validation metrics"):
            self._val = split_metrics(trainer.callback_metrics)[1]
            self._val_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._active:
            return
        with self._capture.guard("reading epoch metrics"):
            train, val = split_metrics(trainer.callback_metrics)
            # no validation this epoch: older values in callback_metrics are stale
            val = {**val, **self._val} if self._val_epoch == trainer.current_epoch else {}
            optimizers = list(getattr(trainer, "optimizers", None) or [])
            lr = current_lr(optimizers[0]) if optimizers else None
            self._capture.epoch_end(trainer.current_epoch, train, val, lr=lr)

    # -- end --------------------------------------------------------------------------------------
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._active:
            return
        self._active = False
        self._capture.end()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if not self._active:
            return
        self._active = False
        self._capture.fail(exception)


def _single(loaders: Any) -> Any:
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if len(loaders) == 1 else None
    return loaders


def _max_epochs(trainer: Any) -> int | None:
    epochs = getattr(trainer, "max_epochs", None)
    return int(epochs) if isinstance(epochs, int) and epochs >= 0 else None


def _batch_size(trainer: Any, pl_module: Any, loader: Any) -> int | None:
    for source in (
        loader,
        getattr(trainer, "datamodule", None),
        getattr(pl_module, "hparams", None),
    ):
        value = (
            source.get("batch_size")
            if isinstance(source, Mapping)
            else getattr(source, "batch_size", None)
        )
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _find_criterion(pl_module: Any) -> Any:
    """The first child module that is a loss (``self.loss_fn = nn.CrossEntropyLoss()``), if any."""
    import torch

    for child in pl_module.children():
        if isinstance(child, torch.nn.modules.loss._Loss):
            return child
    return None
