"""``Model``: a Keras-like ``fit``/``fit_generator``/``evaluate``/``predict`` around an unchanged ``nn.Module``.

The loop itself: batching arrays, moving batches to the device, running loss and accuracy on the
device (one sync an epoch), learning-rate schedulers, the progress bar, and the callback hooks
(``on_train_begin``, ``on_first_batch``, ``on_epoch_end``, ``on_train_end``, ``on_train_error``)
that :class:`~modelkb.collector.torch.callbacks.PytorchCallbacks` implements.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelkb.collector.torch.describe import current_lr
from modelkb.collector.torch.progress import EpochProgress
from modelkb.collector.torch.tensors import (
    as_tensor,
    call_module,
    is_array,
    is_tensor,
    module_device,
    plain,
    preserved_modes,
    to_device,
    torch,
)
from modelkb.extras import require

if TYPE_CHECKING:
    from torch import nn

__all__ = ["History", "Model"]

logger = logging.getLogger(__name__)

_CLASSIFICATION_LOSSES = ("CrossEntropyLoss", "NLLLoss")


def _require_torch() -> None:
    require("torch", "torch")


@dataclass
class History:
    """What :meth:`Model.fit` returns, shaped like Keras' ``History``.

    Attributes:
        history: ``{"loss": [...], "accuracy": [...], "val_loss": [...], ...}``, one value per epoch.
        epoch: The epoch numbers (0-based).
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)

    def add(self, epoch: int, train: Mapping[str, float], val: Mapping[str, float]) -> None:
        self.epoch.append(epoch)
        for name, value in train.items():
            self.history.setdefault(name, []).append(value)
        for name, value in val.items():
            self.history.setdefault(f"val_{name}", []).append(value)


def _pick_device(device: Any, module: nn.Module) -> Any:
    if device not in (None, "auto"):
        return torch.device(device)
    current = module_device(module)
    if current.type != "cpu":
        return current
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _split_batch(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return as_tensor(batch[0]), as_tensor(batch[1])
    raise TypeError(
        f"Expected batches of (inputs, targets). Received: a {type(batch).__name__}"
        + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
    )


class _Accuracy:
    """Running loss and (for classification) accuracy, accumulated on the device: one sync an epoch."""

    def __init__(self, criterion: Any) -> None:
        self.name = type(criterion).__name__
        self.ignore_index = getattr(criterion, "ignore_index", None)
        self.mean = getattr(criterion, "reduction", "mean") == "mean"
        self.loss_sum: Any = 0.0
        self.count = 0
        self.correct: Any = 0
        self.total: Any = 0
        self.classify: bool | None = None

    def update(self, loss: Any, outputs: Any, targets: Any) -> None:
        n = int(targets.shape[0]) if is_tensor(targets) and targets.dim() else 1
        self.loss_sum = self.loss_sum + loss.detach() * (n if self.mean else 1)
        self.count += n
        if self.classify is None:
            self.classify = self._is_classification(outputs, targets)
        if self.classify:
            with torch.no_grad():
                predicted = outputs.argmax(dim=1)
                if targets.is_floating_point() and targets.shape == outputs.shape:
                    targets = targets.argmax(dim=1)  # class probabilities
                mask = (
                    targets != self.ignore_index
                    if self.ignore_index is not None
                    else torch.ones_like(targets, dtype=torch.bool)
                )
                self.correct = self.correct + ((predicted == targets) & mask).sum()
                self.total = self.total + mask.sum()

    def _is_classification(self, outputs: Any, targets: Any) -> bool:
        if not (is_tensor(outputs) and is_tensor(targets)) or outputs.dim() < 2:
            return False
        if self.name in _CLASSIFICATION_LOSSES:
            return True
        integer = not targets.is_floating_point() and targets.dtype != torch.bool
        return integer and targets.dim() == outputs.dim() - 1 and outputs.shape[1] > 1

    def result(self) -> dict[str, float]:
        out = {"loss": float(self.loss_sum) / max(self.count, 1)}
        if self.classify and int(self.total):
            out["accuracy"] = int(self.correct) / int(self.total)
        return out


def _call_hooks(callbacks: Sequence[Any], hook: str, *args: Any, **kwargs: Any) -> None:
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if callable(method):
            method(*args, **kwargs)


_UNSET: Any = object()


class Model:
    """A Keras-like ``fit``/``evaluate``/``predict`` around an ``nn.Module``, which it leaves unchanged.

    ``Model`` is deliberately *not* an ``nn.Module``: it holds the user's module as ``.module`` and
    delegates to it, so ``Model(m)(x)`` is ``m(x)``, ``state_dict()`` keys carry no ``module.``
    prefix, and saving ``m`` (or ``Model(m).state_dict()``) gives the same file with or without
    ModelKB. Attribute reads (``parameters``, ``state_dict``, custom methods) go to the module;
    ``to``/``train``/``eval`` return the wrapper so ``model = model.to(device)`` keeps working.

    Args:
        module: The network to train.
        init_args: Its constructor arguments, recorded so the bundle can rebuild it from its code.
    """

    def __init__(self, module: nn.Module, *, init_args: Any = None) -> None:
        _require_torch()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"Expected a torch.nn.Module. Received: module={type(module).__name__}")
        self.__dict__["module"] = module
        self.__dict__["init_args"] = init_args
        self.__dict__["stop_training"] = False
        self.__dict__["criterion"] = None

    # -- delegation -------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        module = self.__dict__.get("module")
        if module is None:
            raise AttributeError(name)
        return getattr(module, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:
            self.__dict__[name] = value
        else:
            setattr(self.module, name, value)

    def __repr__(self) -> str:
        return f"Model({self.module!r})"

    def to(self, *args: Any, **kwargs: Any) -> Model:
        self.module.to(*args, **kwargs)
        return self

    def train(self, mode: bool = True) -> Model:
        self.module.train(mode)
        return self

    def eval(self) -> Model:
        self.module.eval()
        return self

    # -- training ---------------------------------------------------------------------------------
    def fit(
        self,
        x: Any,
        *args: Any,
        y: Any = _UNSET,
        epochs: Any = _UNSET,
        optimizer: Any = _UNSET,
        criterion: Any = _UNSET,
        batch_size: int = 32,
        validation_data: Any = None,
        callbacks: Sequence[Any] | None = None,
        verbose: int = 1,
        device: Any = "auto",
        shuffle: bool = True,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        scheduler: Any = None,
    ) -> History:
        """Train the module.

        Two call forms: ``fit(loader, epochs, optimizer, criterion, ...)`` with a ``DataLoader`` (or
        any iterable of ``(inputs, targets)`` batches, or a ``Dataset``), and ``fit(x, y, epochs,
        optimizer, criterion, ...)`` with numpy arrays or tensors, batched by ``batch_size``. A
        positional argument after the data is ``y`` exactly when it is an array.

        Args:
            validation_data: ``(x_val, y_val)`` arrays or a ``DataLoader``; evaluated after each epoch.
            callbacks: :class:`PytorchCallbacks` and/or objects with the same hook methods.
            verbose: ``0`` silences the progress bar.
            device: ``"auto"`` keeps an accelerator the module is on, else picks cuda, mps, cpu.
            steps_per_epoch: Stop each epoch after this many batches.
            scheduler: A learning-rate scheduler, stepped once per epoch (``ReduceLROnPlateau`` gets
                the validation loss, or the training loss without validation).

        Returns:
            A :class:`History` with one value per epoch for every train and ``val_`` metric.
        """
        names = (
            ["y", "epochs", "optimizer", "criterion"]
            if args and is_array(args[0])
            else ["epochs", "optimizer", "criterion"]
        )
        if len(args) > len(names):
            raise TypeError(
                f"fit() takes at most {len(names) + 1} positional arguments here. Received: {len(args) + 1}"
            )
        given = {"y": y, "epochs": epochs, "optimizer": optimizer, "criterion": criterion}
        for name, value in zip(names, args, strict=False):
            if given[name] is not _UNSET:
                raise TypeError(f"fit() got {name!r} both positionally and as a keyword")
            given[name] = value
        y, epochs, optimizer, criterion = (None if v is _UNSET else v for v in given.values())
        if optimizer is None or criterion is None:
            raise TypeError(
                "fit() needs an optimizer and a criterion, e.g. fit(loader, 5, optimizer, nn.CrossEntropyLoss())"
            )
        epochs = 1 if epochs is None else int(epochs)
        loader, info = self._train_loader(x, y, batch_size, shuffle)
        val_loader, val_info = self._val_loader(validation_data, batch_size)
        info.update(val_info, epochs=epochs, steps_per_epoch=steps_per_epoch or _length(loader))
        if scheduler is not None:
            info["hyperparameters"] = {
                "lr_scheduler": {
                    "name": type(scheduler).__name__,
                    "config": _scheduler_config(scheduler),
                }
            }
        return self._run(
            loader,
            epochs,
            optimizer,
            criterion,
            callbacks=list(callbacks or []),
            info=info,
            val_loader=val_loader,
            verbose=verbose,
            device=device,
            steps=steps_per_epoch,
            val_steps=validation_steps,
            scheduler=scheduler,
            restart=True,
        )

    def fit_generator(
        self,
        generator: Any,
        steps_per_epoch: int,
        epochs: int = 1,
        optimizer: Any = None,
        criterion: Any = None,
        *,
        validation_data: Any = None,
        validation_steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
        verbose: int = 1,
        device: Any = "auto",
        batch_size: int | None = None,
        scheduler: Any = None,
    ) -> History:
        """Train on a generator of ``(inputs, targets)`` batches, ``steps_per_epoch`` batches an epoch.

        The generator is consumed across epochs (Keras' convention); if it runs dry, training stops
        after the epoch with a logged warning. ``batch_size`` is only recorded.
        """
        if optimizer is None or criterion is None:
            raise TypeError("fit_generator() needs an optimizer and a criterion")
        val_loader, val_info = self._val_loader(validation_data, batch_size or 32)
        info = {
            **val_info,
            "epochs": int(epochs),
            "steps_per_epoch": int(steps_per_epoch),
            "batch_size": batch_size,
        }
        return self._run(
            generator,
            int(epochs),
            optimizer,
            criterion,
            callbacks=list(callbacks or []),
            info=info,
            val_loader=val_loader,
            verbose=verbose,
            device=device,
            steps=int(steps_per_epoch),
            val_steps=validation_steps,
            scheduler=scheduler,
            restart=False,
        )

    def _train_loader(
        self, x: Any, y: Any, batch_size: int, shuffle: bool
    ) -> tuple[Any, dict[str, Any]]:
        from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

        if is_array(x):
            if y is None:
                raise TypeError(
                    "fit(x, ...) with an array needs targets: fit(x, y, epochs, optimizer, criterion)"
                )
            loader = DataLoader(
                TensorDataset(as_tensor(x), as_tensor(y)), batch_size=batch_size, shuffle=shuffle
            )
            return loader, {"x": x, "y": y, "batch_size": batch_size}
        if isinstance(x, Dataset):  # a Dataset, not yet batched
            loader = DataLoader(
                x, batch_size=batch_size, shuffle=shuffle and not isinstance(x, IterableDataset)
            )
            return loader, {"loader": loader, "batch_size": batch_size}
        return x, {"loader": x, "batch_size": getattr(x, "batch_size", None)}

    def _val_loader(self, data: Any, batch_size: int) -> tuple[Any, dict[str, Any]]:
        from torch.utils.data import DataLoader, TensorDataset

        if data is None:
            return None, {}
        if isinstance(data, (tuple, list)) and len(data) >= 2 and is_array(data[0]):
            loader = DataLoader(
                TensorDataset(as_tensor(data[0]), as_tensor(data[1])), batch_size=batch_size
            )
            return loader, {"val_x": data[0], "val_y": data[1]}
        return data, {"val_loader": data}

    def _run(
        self,
        data: Any,
        epochs: int,
        optimizer: Any,
        criterion: Any,
        *,
        callbacks: list[Any],
        info: dict[str, Any],
        val_loader: Any,
        verbose: int,
        device: Any,
        steps: int | None,
        val_steps: int | None,
        scheduler: Any,
        restart: bool,
    ) -> History:
        module = self.module
        self.criterion = criterion
        self.stop_training = False
        history = History()
        progress = EpochProgress(verbose, epochs)
        try:
            with preserved_modes(module):
                target = _pick_device(device, module)
                module.to(target)
                _call_hooks(callbacks, "on_train_begin", self, optimizer, criterion, info)
                batches: Iterator[Any] | None = None
                first = True
                for epoch in range(epochs):
                    if restart or batches is None:
                        batches = iter(data)
                    started = time.perf_counter()
                    lr = current_lr(optimizer)
                    module.train()
                    meter = _Accuracy(criterion)
                    progress.start_epoch(epoch, steps or _length(data))
                    done = 0
                    while steps is None or done < steps:
                        batch = next(batches, _UNSET)
                        if batch is _UNSET and not restart:
                            batches, batch = _start_over(data, batches)
                            if batch is _UNSET:
                                logger.warning(
                                    "the generator ran dry after %d steps of epoch %d; stopping",
                                    done,
                                    epoch + 1,
                                )
                                self.stop_training = True
                        if batch is _UNSET:
                            break
                        inputs, targets = _split_batch(batch)
                        inputs, targets = to_device(inputs, target), to_device(targets, target)
                        optimizer.zero_grad()
                        outputs = call_module(module, inputs)
                        loss = criterion(outputs, targets)
                        loss.backward()
                        optimizer.step()
                        if first:
                            first = False
                            _call_hooks(callbacks, "on_first_batch", inputs, targets)
                        meter.update(loss, outputs, targets)
                        done += 1
                        progress.step(done, float(loss.detach()) if verbose else None)
                    train = meter.result() if done else {}
                    val = (
                        self._evaluate_loader(val_loader, criterion, target, val_steps)
                        if val_loader is not None
                        else {}
                    )
                    if scheduler is not None:
                        _step_scheduler(scheduler, val.get("loss", train.get("loss")))
                    history.add(epoch, train, val)
                    progress.end_epoch({**train, **{f"val_{k}": v for k, v in val.items()}})
                    _call_hooks(
                        callbacks,
                        "on_epoch_end",
                        epoch,
                        train,
                        val,
                        lr=lr,
                        time_s=round(time.perf_counter() - started, 4),
                    )
                    if self.stop_training:
                        break
        except BaseException as exc:
            progress.close()
            _call_hooks(callbacks, "on_train_error", exc)
            raise
        progress.close()
        _call_hooks(callbacks, "on_train_end")
        return history

    def _evaluate_loader(
        self, loader: Any, criterion: Any, device: Any, steps: int | None = None
    ) -> dict[str, float]:
        module = self.module
        meter = _Accuracy(criterion)
        with preserved_modes(module), torch.no_grad():
            module.eval()
            for done, batch in enumerate(loader):
                if steps is not None and done >= steps:
                    break
                inputs, targets = _split_batch(batch)
                inputs, targets = to_device(inputs, device), to_device(targets, device)
                outputs = call_module(module, inputs)
                meter.update(criterion(outputs, targets), outputs, targets)
        return meter.result() if meter.count else {}

    def evaluate(
        self,
        x: Any,
        y: Any = None,
        *,
        criterion: Any = None,
        batch_size: int = 32,
        device: Any = None,
        steps: int | None = None,
    ) -> dict[str, float]:
        """Loss (and accuracy for classification) on arrays or a ``DataLoader``; no training mode change.

        ``criterion`` defaults to the one the last :meth:`fit` used.
        """
        criterion = criterion if criterion is not None else self.criterion
        if criterion is None:
            raise TypeError("evaluate() needs a criterion (or a previous fit())")
        loader = self._val_loader((x, y), batch_size)[0] if is_array(x) else x
        target = module_device(self.module) if device is None else torch.device(device)
        return self._evaluate_loader(loader, criterion, target, steps)

    def predict(self, x: Any, *, batch_size: int = 32, device: Any = None) -> Any:
        """Outputs for arrays (numpy in -> numpy out) or a loader of inputs / ``(inputs, targets)``."""
        module = self.module
        target = module_device(module) if device is None else torch.device(device)
        if is_array(x):
            tensor = as_tensor(x)
            batches: Iterable[Any] = (
                tensor[i : i + batch_size] for i in range(0, len(tensor), batch_size)
            )
        else:
            batches = (b[0] if isinstance(b, (tuple, list)) and len(b) >= 2 else b for b in x)
        outputs = []
        with preserved_modes(module), torch.no_grad():
            module.eval()
            for batch in batches:
                outputs.append(
                    call_module(module, to_device(as_tensor(batch), target)).detach().to("cpu")
                )
        result = torch.cat(outputs) if outputs else torch.empty(0)
        return result.numpy() if is_array(x) and not is_tensor(x) else result


def _start_over(data: Any, spent: Iterator[Any]) -> tuple[Iterator[Any], Any]:
    """fit_generator: a re-iterable source (a DataLoader) starts a new pass; a generator stays spent."""
    fresh = iter(data)
    return fresh, (_UNSET if fresh is spent else next(fresh, _UNSET))


def _length(data: Any) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None


def _scheduler_config(scheduler: Any) -> dict[str, Any]:
    state = getattr(scheduler, "state_dict", None)
    if not callable(state):
        return {}
    with contextlib.suppress(Exception):
        return {
            k: plain(v)
            for k, v in state().items()
            if not k.startswith("_") and isinstance(plain(v), (int, float, str, bool, list))
        }
    return {}


def _step_scheduler(scheduler: Any, metric: float | None) -> None:
    if type(scheduler).__name__ == "ReduceLROnPlateau":
        if metric is not None:
            scheduler.step(metric)
    else:
        scheduler.step()
