"""The user-facing PyTorch recorders: :class:`PytorchCallbacks` for :meth:`Model.fit
<modelkb.collector.torch.trainer.Model.fit>` and :class:`TorchRecorder` for hand-written loops.

Both are thin: they translate hooks into :class:`~modelkb.collector.torch.capture.TorchCapture`
calls and never raise into the user's training. A missing ``[torch]`` extra fails when one of them
is created, naming the pip line.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from modelkb.collector.capture_options import CaptureOptions
from modelkb.collector.torch.capture import TorchCapture
from modelkb.collector.torch.tensors import is_array
from modelkb.extras import require

if TYPE_CHECKING:
    from typing_extensions import Self

    from modelkb.experiment import Experiment

__all__ = ["PytorchCallbacks", "TorchRecorder"]


def _require_torch() -> None:
    require("torch", "torch")


class PytorchCallbacks:
    """Record a :meth:`Model.fit` run into ``experiment``'s bundle.

    Args:
        experiment: The :class:`~modelkb.experiment.Experiment` to fill.
        export_onnx, save_weights, sample_inputs, dataset, init_args: What to capture, as
            :class:`~modelkb.collector.capture_options.CaptureOptions` describes (weights go to
            ``model.safetensors``; the default sample is the first rows of the first batch).

    Hooks (called by :meth:`Model.fit`; none of them ever raises): ``on_train_begin(model, optimizer,
    criterion, data_info)``, ``on_first_batch(inputs, targets)``, ``on_epoch_end(epoch, train_metrics,
    val_metrics, **extra)``, ``on_train_end()``, ``on_train_error(exc)``. ``data_info`` may hold
    ``epochs``, ``batch_size``, ``steps_per_epoch``, ``x``, ``y``, ``val_x``, ``val_y``, ``loader`` and
    ``val_loader``.
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
        _require_torch()
        self.experiment = experiment
        options = CaptureOptions(
            export_onnx=export_onnx,
            save_weights=save_weights,
            sample_inputs=sample_inputs,
            dataset=dataset or {},
            init_args=init_args,
        )
        self._capture = TorchCapture(experiment, options)

    def on_train_begin(
        self, model: Any, optimizer: Any, criterion: Any, data_info: Mapping[str, Any] | None = None
    ) -> None:
        with self._capture.guard("reading the training data"):
            info = dict(data_info or {})
            self._capture.begin(
                getattr(model, "module", model),
                optimizer,
                criterion,
                epochs=info.get("epochs"),
                batch_size=info.get("batch_size"),
                steps_per_epoch=info.get("steps_per_epoch"),
                data=info,
                hyperparameters=info.get("hyperparameters"),
            )

    def on_first_batch(self, inputs: Any, targets: Any = None) -> None:
        self._capture.first_batch(inputs, targets)

    def on_epoch_end(
        self,
        epoch: int,
        train_metrics: Mapping[str, Any] | None,
        val_metrics: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        self._capture.epoch_end(epoch, train_metrics, val_metrics, **extra)

    def on_train_end(self) -> None:
        self._capture.end()

    def on_train_error(self, exc: BaseException) -> None:
        self._capture.fail(exc)


class TorchRecorder:
    """Record a hand-written training loop.

    Example:
        >>> rec = TorchRecorder(exp, model, optimizer, criterion,  # doctest: +SKIP
        ...                     sample_inputs=x[:8], epochs=3, batch_size=32)
        >>> for epoch in range(3):  # doctest: +SKIP
        ...     ...  # your loop
        ...     rec.log_epoch(epoch, train={"loss": loss}, val={"loss": val_loss})
        >>> rec.finish()  # doctest: +SKIP

    Used as a context manager, an exception in the block seals the bundle as ``failed`` and is re-raised.

    Args:
        experiment: The experiment to fill.
        model: The ``nn.Module`` being trained (or a :class:`Model`).
        optimizer: Its optimizer (class, ``param_groups`` and the current learning rate are recorded).
        criterion: The loss function.
        epochs, batch_size, steps_per_epoch: Recorded as hyperparameters.
        data: Training data to describe: ``(x, y)`` arrays or a ``DataLoader``.
        sample_inputs, dataset, init_args, export_onnx, save_weights: As for
            :class:`PytorchCallbacks` (the default sample is the first input the model sees).
    """

    def __init__(
        self,
        experiment: Experiment,
        model: Any,
        optimizer: Any = None,
        criterion: Any = None,
        *,
        sample_inputs: Any = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        steps_per_epoch: int | None = None,
        data: Any = None,
        dataset: Mapping[str, Any] | None = None,
        init_args: Any = None,
        export_onnx: bool = True,
        save_weights: bool = True,
    ) -> None:
        _require_torch()
        self.experiment = experiment
        self.module = getattr(model, "module", model)
        options = CaptureOptions(
            export_onnx=export_onnx,
            save_weights=save_weights,
            sample_inputs=sample_inputs,
            dataset=dataset or {},
            init_args=init_args,
        )
        self._capture = TorchCapture(experiment, options)
        info: dict[str, Any] = {}
        if isinstance(data, (tuple, list)) and data and is_array(data[0]):
            info = {"x": data[0], "y": data[1] if len(data) > 1 else None}
        elif data is not None:
            info = {"loader": data}
        self._capture.begin(
            self.module,
            optimizer,
            criterion,
            epochs=epochs,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            data=info,
        )

    def log_epoch(
        self,
        epoch: int,
        train: Mapping[str, Any] | None = None,
        val: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        """Record one finished epoch (``lr`` is read from the optimizer unless given)."""
        self._capture.epoch_end(epoch, train, val, **extra)

    def finish(
        self, status: str = "completed", *, error: BaseException | str | None = None
    ) -> dict[str, Any] | None:
        """Save and export the model (when ``completed``) and seal the bundle; returns the metadata."""
        if status == "completed" and error is None:
            return self._capture.end()
        metadata = None
        with self._capture.guard("sealing the bundle"):
            metadata = self.experiment.finish(status, error=error)
        return metadata

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            self.finish()
        else:
            self._capture.fail(exc)
        return False
