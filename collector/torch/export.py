"""Saving a trained module: ``model.safetensors`` (never a pickle) and a verified ``model.onnx``.

The ONNX export has a dynamic batch axis: the dynamo exporter first, the legacy TorchScript one
as a fallback. The exported model is then run with onnxruntime and compared with the module's own
output (:func:`modelkb.collector.onnx_check.verify_onnx`); a model that disagrees is deleted.
Every file is written atomically. All of it is optional work: :func:`save_trained_model` turns
problems into warnings in the bundle.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkb.collector.torch.tensors import (
    call_module,
    is_tensor,
    module_device,
    preserved_modes,
    to_device,
    torch,
)
from modelkb.fsutil import atomic_target

if TYPE_CHECKING:
    from torch import nn

    from modelkb.experiment import Experiment

__all__ = [
    "ONNX_FILE",
    "WEIGHTS_FILE",
    "export_onnx_file",
    "save_trained_model",
    "save_weights_file",
]

WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"


def save_weights_file(module: nn.Module, path: Path) -> list[str]:
    """Write the state dict with safetensors (contiguous CPU tensors); returns skipped keys."""
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {}
    skipped: list[str] = []
    storages: set[int] = set()
    for key, value in module.state_dict().items():
        if not is_tensor(value):
            skipped.append(key)
            continue
        tensor = value.detach().to("cpu").contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer and pointer in storages:  # tied weights: safetensors refuses shared storage
            tensor = tensor.clone()
            pointer = tensor.untyped_storage().data_ptr()
        storages.add(pointer)
        tensors[key] = tensor
    with atomic_target(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    return skipped


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporters' progress lines and deprecation chatter are noise in a training log."""
    torch_onnx_logger = logging.getLogger("torch.onnx")
    level = torch_onnx_logger.level
    torch_onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        torch_onnx_logger.setLevel(level)


def export_onnx_file(
    module: nn.Module, sample: Any, path: Path, *, warn: Callable[[str], None]
) -> str:
    """Export ``module`` (already in eval mode) with a dynamic batch axis; returns the exporter used.

    The dynamo exporter is tried first (``external_data=False`` keeps the weights inside the file);
    if it fails, the legacy TorchScript exporter with ``dynamic_axes`` is used and ``warn`` is told why.
    """
    args = tuple(sample) if isinstance(sample, (tuple, list)) else (sample,)
    names = ["input"] if len(args) == 1 else [f"input_{i}" for i in range(len(args))]
    with torch.no_grad():
        expected = call_module(module, args)
    output_names = ["output"] if is_tensor(expected) else None
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter():
        try:
            with atomic_target(path) as tmp:
                torch.onnx.export(
                    module,
                    args,
                    str(tmp),
                    dynamo=True,
                    external_data=False,
                    verbose=False,
                    input_names=names,
                    output_names=output_names,
                    dynamic_shapes=tuple({0: batch} for _ in args),
                )
            return "dynamo"
        except Exception as err:
            warn(
                f"the dynamo ONNX exporter failed ({type(err).__name__}: {err}); used the legacy exporter"
            )
        axes = {name: {0: "batch"} for name in [*names, *(output_names or [])]}
        with atomic_target(path) as tmp:
            torch.onnx.export(
                module,
                args,
                str(tmp),
                dynamo=False,
                verbose=False,
                input_names=names,
                output_names=output_names,
                dynamic_axes=axes,
            )
        return "legacy"


def _numpy_outputs(value: Any) -> Any:
    if is_tensor(value):
        return value.detach().to("cpu").numpy()
    if isinstance(value, Mapping):
        return [_numpy_outputs(v) for v in value.values()]
    if isinstance(value, (tuple, list)):
        return [_numpy_outputs(v) for v in value]
    return value


def save_trained_model(
    experiment: Experiment,
    module: nn.Module,
    sample: Any,
    *,
    labels: Any = None,
    export_onnx: bool = True,
    save_weights: bool = True,
    source: str = "torch",
) -> None:
    """Save ``model.safetensors`` and export + verify ``model.onnx``; problems become warnings.

    Every submodule's train/eval flag is restored afterwards. ``sample`` (a batch of up to
    :data:`~modelkb.collector.capture_options.SAMPLE_ROWS` rows) is needed for ONNX; without it
    the export is skipped with a warning. Its first rows and ``labels`` (the rows' targets, when
    known) become the bundle's example inputs.
    """
    with preserved_modes(module):
        if save_weights:
            with experiment.guard(source, f"saving {WEIGHTS_FILE}"):
                skipped = save_weights_file(module, experiment.artifact_path(WEIGHTS_FILE))
                if skipped:
                    experiment.warn(
                        f"state dict entries that are not tensors were not saved: {skipped}",
                        source=source,
                    )
        if not export_onnx:
            return
        if sample is None:
            experiment.warn(
                "no sample input seen: pass sample_inputs= to export model.onnx", source="onnx"
            )
            return
        with experiment.guard("onnx", f"exporting {ONNX_FILE}"):
            _export_and_verify(experiment, module, sample, labels)


def _export_and_verify(
    experiment: Experiment, module: nn.Module, sample: Any, labels: Any = None
) -> None:
    from modelkb.collector.onnx_check import check_fields, record_examples, verify_onnx

    started = time.perf_counter()
    module.eval()
    sample = to_device(sample, module_device(module))
    path = experiment.artifact_path(ONNX_FILE)
    exporter = export_onnx_file(
        module, sample, path, warn=lambda msg: experiment.warn(msg, source="onnx")
    )
    with torch.no_grad():
        expected = _numpy_outputs(call_module(module, sample))
    inputs = _numpy_outputs(sample)
    try:
        report = verify_onnx(
            path, inputs[0] if isinstance(inputs, list) and len(inputs) == 1 else inputs, expected
        )
    except Exception:
        path.unlink(missing_ok=True)  # a model that disagrees with PyTorch must not be served
        raise
    experiment.record_onnx(
        {
            **check_fields(report),
            "path": ONNX_FILE,
            "exporter": exporter,
            "export_s": round(time.perf_counter() - started, 3),
        }
    )
    record_examples(experiment, report, _numpy_outputs(labels))
