"""``TorchCapture``: what a PyTorch training run exposes, turned into calls on an ``Experiment``.

Shared by :class:`~modelkb.collector.torch.callbacks.PytorchCallbacks`,
:class:`~modelkb.collector.torch.callbacks.TorchRecorder` and the Lightning callback. It records
the framework, hyperparameters, architecture and dataset at the start, completes the architecture
after the first batch, logs epochs, and at the end saves and exports the model
(:mod:`~modelkb.collector.torch.export`) and seals the bundle.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from modelkb.collector.capture_options import SAMPLE_ROWS, CaptureOptions
from modelkb.collector.dataset_info import describe_arrays, infer_kind, merge_dataset
from modelkb.collector.replay_check import replay_findings
from modelkb.collector.torch.describe import (
    ShapeProbe,
    current_lr,
    describe_architecture,
    describe_loader,
    describe_tensors,
    loss_summary,
    module_reference,
    optimizer_summary,
)
from modelkb.collector.torch.export import save_trained_model
from modelkb.collector.torch.source_findings import merge_source_findings
from modelkb.collector.torch.tensors import (
    batchless_shape,
    dtype_name,
    first_tensor,
    head_rows,
    is_tensor,
    preserved_modes,
    torch,
)
from modelkb.sealing import seal_in_background

if TYPE_CHECKING:
    from torch import nn

    from modelkb.experiment import Experiment

__all__ = ["TorchCapture", "log_torch_model"]


class TorchCapture:
    """Turns what a PyTorch training run exposes into calls on an :class:`Experiment`.

    Used by :class:`PytorchCallbacks`, :class:`TorchRecorder` and the Lightning callback. Every
    public method is safe: ModelKB problems are recorded as warnings and never raised.
    """

    def __init__(
        self,
        experiment: Experiment,
        options: CaptureOptions | None = None,
        *,
        source: str = "torch",
    ) -> None:
        self.experiment = experiment
        self.options = options or CaptureOptions()
        self.source = source
        self.sample: Any = None
        self.sample_labels: Any = None
        self.offer_sample(self.options.sample_inputs)
        self.module: nn.Module | None = None
        self.optimizer: Any = None
        self.probe: ShapeProbe | None = None
        self._inferred: dict[str, Any] = {}
        self._given: dict[str, Any] = {}
        self._arch_final = False
        self._began = False
        self._dataset_written: dict[str, Any] | None = None
        self._train_dataset: Any = None

    def guard(self, what: str) -> AbstractContextManager[None]:
        """The experiment's guard, naming this collector as the warnings' source."""
        return self.experiment.guard(self.source, what)

    def begin(
        self,
        module: nn.Module,
        optimizer: Any = None,
        criterion: Any = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        steps_per_epoch: int | None = None,
        data: Mapping[str, Any] | None = None,
        versions: Mapping[str, str] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
    ) -> None:
        """Record framework, hyperparameters, architecture (shapes follow on the first batch) and data."""
        exp = self.experiment
        self.module, self.optimizer, self._began = module, optimizer, True
        with self.guard("recording the framework"):
            exp.seed_frameworks()  # catches a torch import that came after Experiment(...)
            self._given = dict(exp.metadata.get("dataset") or {})
            numpy = sys.modules.get("numpy")
            exp.set_framework(
                "pytorch",
                torch.__version__,
                torch=torch.__version__,
                **({"numpy": numpy.__version__} if numpy else {}),
                **dict(versions or {}),
            )
        with self.guard("recording hyperparameters"):
            hyper: dict[str, Any] = {
                "epochs": epochs,
                "batch_size": batch_size,
                "steps_per_epoch": steps_per_epoch,
            }
            if optimizer is not None:
                hyper["optimizer"] = optimizer_summary(optimizer)
                hyper["learning_rate"] = current_lr(optimizer)
            name, config = loss_summary(criterion)
            if name:
                hyper["loss"] = name
                hyper["loss_config"] = config
            hyper.update(hyperparameters or {})
            exp.set_hyperparameters(**{k: v for k, v in hyper.items() if v is not None})
        with self.guard("describing the architecture"):
            self.probe = ShapeProbe(module)
            self._record_architecture()
        with self.guard("describing the dataset"):
            self._infer_dataset(data or {})
        with self.guard("describing the dataset"):
            self._write_dataset()
        with self.guard("starting the run"):
            exp.start()  # last: run.json is written once, with everything above

    def _record_architecture(self) -> None:
        assert self.module is not None
        arch = describe_architecture(self.module, probe=self.probe)
        if "inputs" not in arch and self.sample is not None:
            arch["inputs"] = describe_tensors(self.sample, "input")
        arch["module"] = module_reference(
            self.module, self.experiment.metadata.get("code"), self.options.init_args
        )
        self.experiment.set_architecture(arch)

    def _infer_dataset(self, data: Mapping[str, Any]) -> None:
        found: dict[str, Any] = {}
        if data.get("x") is not None:
            found = describe_arrays(data["x"], data.get("y"), split="train")
        elif data.get("loader") is not None:
            found = describe_loader(data["loader"], "train")
            self._train_dataset = getattr(data["loader"], "dataset", None)
        if data.get("val_x") is not None:
            found = merge_dataset(
                found,
                {
                    "samples": describe_arrays(data["val_x"], data.get("val_y"), split="val")[
                        "samples"
                    ]
                },
            )
        elif data.get("val_loader") is not None:
            found = merge_dataset(found, describe_loader(data["val_loader"], "val"))
        self._inferred = merge_dataset(self._inferred, found)

    def record_preprocessing(self) -> None:
        """Read the preprocessing steps from the training source and check them against the
        dataset (end-of-run work: the source is the one captured when the run was created)."""
        from modelkb.collector.source_analysis import analyze_experiment_code

        with self.guard("reading preprocessing from the training source"):
            found = analyze_experiment_code(self.experiment)
            if found:
                # problems become warnings; a loader or Compose described live is not listed again
                runtime, found = merge_source_findings(self.experiment, self._inferred, found)
                self._inferred = merge_dataset(runtime, found)
        with self.guard("describing the dataset"):
            self._write_dataset()
        with self.guard("checking the recorded preprocessing"):
            self._check_preprocessing()

    def _write_dataset(self) -> None:
        merged = merge_dataset(merge_dataset(self._inferred, self._given), self.options.dataset)
        if merged and merged != self._dataset_written:  # unchanged: no run.json rewrite
            self.experiment.set_dataset(**merged)
            self._dataset_written = copy.deepcopy(merged)

    def offer_sample(self, inputs: Any, labels: Any = None) -> None:
        """Keep the first :data:`SAMPLE_ROWS` rows of ``inputs`` (and of their ``labels``) for the
        export and the bundle's example inputs, unless rows are kept."""
        if self.sample is None and inputs is not None:
            self.sample = head_rows(inputs, SAMPLE_ROWS)
            self.sample_labels = head_rows(labels, SAMPLE_ROWS) if is_tensor(labels) else None

    def first_batch(self, inputs: Any, targets: Any = None) -> None:
        """Keep sample rows for the export and describe the batch (needed for ``DataLoader`` data)."""
        with self.guard("describing the first batch"):
            self.offer_sample(inputs, targets)
            tensor = first_tensor(inputs)
            if tensor is None:
                return
            shape = batchless_shape(tensor) or []
            found: dict[str, Any] = {
                "shapes": {
                    "x": shape,
                    **({"y": batchless_shape(targets)} if is_tensor(targets) else {}),
                },
                "dtype": dtype_name(tensor.dtype),
                "kind": infer_kind(tuple(shape[1:]), dtype_name(tensor.dtype)),
            }
            # no class labels from one batch: it would under-count them
            self._inferred = merge_dataset(
                found, self._inferred
            )  # whole-data facts win over one batch
            self._write_dataset()

    def epoch_end(
        self,
        epoch: int,
        train: Mapping[str, Any] | None,
        val: Mapping[str, Any] | None,
        **extra: Any,
    ) -> None:
        """Append one epoch to ``metrics.jsonl`` (the observed shapes are added at the end of the run)."""
        with self.guard("recording epoch metrics"):
            if "lr" not in extra and self.optimizer is not None:
                extra["lr"] = current_lr(self.optimizer)
            self.experiment.log_epoch(
                epoch, train, val, **{k: v for k, v in extra.items() if v is not None}
            )

    def _complete_architecture(self) -> None:
        """Re-describe the module with the shapes its first forward showed (once, at the end)."""
        if (
            self._arch_final
            or self.probe is None
            or (not self.probe.fired and not self.probe.layer_shapes)
        ):
            return
        self.probe.remove()
        self._arch_final = True
        self._record_architecture()

    def end(self) -> dict[str, Any] | None:
        """Save weights, seal the bundle as ``completed``; the ONNX export and its check run in a
        background sealer (:mod:`modelkb.sealing`) so the training process goes on at once."""
        metadata = None
        with self.guard("saving the trained model"):
            if self.module is not None:
                save_trained_model(
                    self.experiment,
                    self.module,
                    self.sample,
                    export_onnx=False,
                    save_weights=self.options.save_weights,
                    source=self.source,
                )
        with self.guard("finishing the architecture"):
            self._complete_architecture()
            if self.probe is not None:
                self.probe.remove()
        if self.module is not None and self.options.export_onnx:
            with self.guard("handing the ONNX export to a background sealer"):
                single_thread = lambda: torch.set_num_threads(1)  # noqa: E731
                if (
                    seal_in_background(self.experiment, self._export, after_fork=single_thread)
                    is not None
                ):
                    return self.experiment.metadata
            self._export()
        else:
            self.record_preprocessing()
        with self.guard("sealing the bundle"):
            metadata = self.experiment.finish("completed")
        return metadata

    def _export(self) -> None:
        """The end-of-run work off the training path: preprocessing from the source, then
        ``model.onnx`` exported and verified (problems become warnings)."""
        assert self.module is not None
        self.record_preprocessing()
        with self.guard("saving the trained model"):
            save_trained_model(
                self.experiment,
                self.module,
                self.sample,
                labels=self.sample_labels,
                save_weights=False,
                source=self.source,
            )

    def _check_preprocessing(self) -> None:
        """Record (and warn about) a step the dataset applies that the recorded ones do not explain."""
        if self._train_dataset is None:
            return
        recorded = self.experiment.metadata.get("dataset") or {}
        steps = recorded.get("preprocessing") or []
        findings = replay_findings(self._train_dataset, steps)
        if "raw_range" in findings and not recorded.get("raw_range"):
            self.experiment.set_dataset(raw_range=findings["raw_range"])
        found = findings.get("unrecognised")
        if found is None:
            return
        self.experiment.set_dataset(preprocessing=[*steps, found])
        self.experiment.warn(
            f"{found['note']}; serving would feed raw inputs to a model trained on something else. "
            "Record the step with exp.set_dataset(preprocessing=[...]) (docs/serving.md, "
            "'What is replayed'), or do it inside the model",
            source=self.source,
        )

    def fail(self, error: BaseException) -> None:
        """Seal the bundle as ``failed`` (``interrupted`` for Ctrl-C) with the error."""
        self.record_preprocessing()
        with self.guard("finishing the architecture"):
            self._complete_architecture()
        with self.guard("sealing the failed run"):
            if self.probe is not None:
                self.probe.remove()
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            self.experiment.finish(status, error=error)


def log_torch_model(
    experiment: Experiment,
    module: nn.Module,
    example_input: Any,
    *,
    optimizer: Any = None,
    criterion: Any = None,
    init_args: Any = None,
) -> None:
    """Register a module trained by a hand-written loop, as the callbacks do at the end of ``fit``.

    Records the framework, the optimizer and loss when given, the architecture with the shapes one
    forward pass on ``example_input`` shows (in eval mode, without gradients: training state is
    untouched), ``model.safetensors`` and ``model.onnx`` checked against the module on
    ``example_input``. Problems become warnings of the run.
    """
    capture = TorchCapture(
        experiment, CaptureOptions(sample_inputs=example_input, init_args=init_args)
    )
    capture.begin(module, optimizer, criterion)
    with (
        capture.guard("describing the model on the example input"),
        preserved_modes(module),
        torch.no_grad(),
    ):
        module.eval()
        if capture.sample is not None:
            module(capture.sample)  # fires the shape probe once
        capture.first_batch(capture.sample)
    with capture.guard("finishing the architecture"):
        capture._complete_architecture()
        if capture.probe is not None:
            capture.probe.remove()
    capture.record_preprocessing()
    with capture.guard("saving the trained model"):
        save_trained_model(experiment, module, capture.sample, source="torch")
