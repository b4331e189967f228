"""Check an exported ONNX model against the framework's own outputs, without any framework import.

The collectors export ``model.onnx`` and then call :func:`verify_onnx` with a small batch of real
inputs and the outputs the framework computed for it. The model is run in an onnxruntime CPU
session; the result describes the graph (opset, IR version, inputs and outputs with their dynamic
axes) and how far its outputs are from the framework's. ``onnx`` and ``onnxruntime`` are imported
only when a check runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkb.errors import ModelKBError

if TYPE_CHECKING:
    from modelkb.experiment import Experiment

logger = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 1e-4
"""Largest accepted absolute difference between ONNX and framework outputs."""

CHECK_PROVIDER = "CPUExecutionProvider"
"""The onnxruntime execution provider :func:`verify_onnx` runs the model with."""

CHECKED_ON = f"onnxruntime {CHECK_PROVIDER}"
"""What ran the check, as the bundle's ``onnx.checked_on`` names it for every framework."""

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "str",
}


class OnnxExportError(ModelKBError, RuntimeError):
    """An exported ONNX model cannot be run, or does not compute what the framework computes.

    Attributes:
        path: The ONNX file.
        max_abs_diff: The largest absolute output difference, when outputs could be compared.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        max_abs_diff: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            message,
            hint=hint
            or "Pass sample_inputs= of the model's input shape, or export_onnx=False to skip the export.",
        )
        self.path = path
        self.max_abs_diff = max_abs_diff


def verify_onnx(
    path: str | os.PathLike[str],
    sample: Any,
    expected: Any,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Run ``path`` in onnxruntime (CPU) on ``sample`` and compare with ``expected``.

    Args:
        path: The ``.onnx`` file (weights inside the file: it is loaded from bytes).
        sample: Inputs: one array for a single-input model, a dict input name -> array, or a list of
            arrays in the graph's input order. Arrays are cast to the dtype the graph declares.
        expected: The framework's outputs for ``sample``: one array or a list of arrays in the graph's
            output order.
        tolerance: Largest accepted absolute difference.

    Returns:
        ``{"max_abs_diff", "opset", "ir_version", "inputs", "outputs", "checked_on", "batch_dynamic",
        "feed"}``; ``feed`` is what the graph was fed (``{input name: array}``);
        ``inputs``/``outputs`` are ``[{"name", "shape", "dtype"}]`` with ``None`` or the axis name
        (a string) for dynamic axes; ``checked_on`` is the number of samples compared (the
        bundle's ``onnx`` section calls it ``checked_samples``: see :func:`check_fields`).

    Raises:
        OnnxExportError: The file cannot be loaded or run, the sample does not fit the graph's inputs,
            output shapes differ, or a difference exceeds ``tolerance``.
    """
    import numpy as np
    import onnx
    import onnxruntime as ort

    target = Path(path)
    try:
        data = target.read_bytes()
        model = onnx.load_model_from_string(data)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(data, sess_options=options, providers=[CHECK_PROVIDER])
    except Exception as err:
        raise OnnxExportError(
            f"cannot load the ONNX model {str(target)!r}: {type(err).__name__}: {err}",
            path=str(target),
        ) from err

    inputs = [_describe(arg) for arg in session.get_inputs()]
    outputs = [_describe(arg) for arg in session.get_outputs()]
    feed = _feed(sample, inputs, str(target))
    try:
        results = session.run(None, feed)
    except Exception as err:
        raise OnnxExportError(
            f"onnxruntime failed to run {str(target)!r}: {type(err).__name__}: {err}",
            path=str(target),
        ) from err

    wanted = [
        np.asarray(e) for e in (expected if isinstance(expected, (list, tuple)) else [expected])
    ]
    if len(wanted) != len(results):
        raise OnnxExportError(
            f"the ONNX model has {len(results)} outputs but {len(wanted)} expected arrays were given",
            path=str(target),
        )
    worst = 0.0
    for index, (got, want) in enumerate(zip(results, wanted, strict=True)):
        got = np.asarray(got)
        if got.shape != want.shape:
            raise OnnxExportError(
                f"ONNX output {outputs[index]['name']!r} has shape {list(got.shape)}, "
                f"expected {list(want.shape)}",
                path=str(target),
            )
        worst = max(worst, _max_abs_diff(got, want))
    if not worst <= tolerance:  # also catches NaN
        raise OnnxExportError(
            f"ONNX outputs differ from the model's by {worst:.3g} (tolerance {tolerance:g})",
            path=str(target),
            max_abs_diff=worst,
        )
    first = next(iter(feed.values()), None)
    return {
        "max_abs_diff": float(worst),
        "opset": _opset(model),
        "ir_version": int(model.ir_version),
        "inputs": inputs,
        "outputs": outputs,
        "checked_on": int(first.shape[0]) if first is not None and first.ndim else 1,
        "batch_dynamic": bool(inputs) and all(_dynamic_batch(entry["shape"]) for entry in inputs),
        "feed": feed,
    }


def record_examples(
    experiment: Experiment,
    result: Mapping[str, Any],
    labels: Any = None,
    *,
    rows: int | None = None,
) -> None:
    """Keep the first rows a passed check ran on (and their ``labels``) as the bundle's example
    inputs (:mod:`modelkb.example_inputs`); optional work: a failure is a warning of the run."""
    with experiment.guard("onnx", "writing the example inputs"):
        from modelkb.example_inputs import EXAMPLES_FILE, write_examples

        write_examples(experiment.artifact_path(EXAMPLES_FILE), result["feed"], labels, rows=rows)


def check_fields(result: Mapping[str, Any]) -> dict[str, Any]:
    """A :func:`verify_onnx` result as fields of the bundle's ``onnx`` section.

    Every collector records its check through this, so ``checked_on`` always names what ran it
    (:data:`CHECKED_ON`) and ``checked_samples`` counts the rows compared.
    """
    fields = {key: result[key] for key in _CHECK_KEYS}
    return {**fields, "checked_on": CHECKED_ON, "checked_samples": int(result["checked_on"])}


_CHECK_KEYS = ("opset", "ir_version", "max_abs_diff", "batch_dynamic", "inputs", "outputs")


def _describe(arg: Any) -> dict[str, Any]:
    shape = [
        d if isinstance(d, int) and d >= 0 else (d if isinstance(d, str) and d else None)
        for d in arg.shape
    ]
    return {"name": arg.name, "shape": shape, "dtype": _ORT_TYPES.get(arg.type, arg.type)}


def _dynamic_batch(shape: list[Any] | None) -> bool:
    return bool(shape) and not isinstance(shape[0], int)


def _opset(model: Any) -> int | None:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


def _feed(sample: Any, inputs: list[dict[str, Any]], path: str) -> dict[str, Any]:
    import numpy as np

    names = [entry["name"] for entry in inputs]
    if isinstance(sample, Mapping):
        unknown = sorted(set(map(str, sample)) - set(names))
        missing = sorted(set(names) - set(map(str, sample)))
        if unknown or missing:
            raise OnnxExportError(
                f"sample inputs {sorted(map(str, sample))} do not match the ONNX inputs {names} "
                f"(missing {missing}, unknown {unknown})",
                path=path,
            )
        arrays = {str(k): v for k, v in sample.items()}
    elif isinstance(sample, (list, tuple)) and len(names) > 1:
        if len(sample) != len(names):
            raise OnnxExportError(
                f"got {len(sample)} sample arrays for the {len(names)} ONNX inputs {names}",
                path=path,
            )
        arrays = dict(zip(names, sample, strict=True))
    else:
        if len(names) != 1:
            raise OnnxExportError(
                f"the ONNX model has {len(names)} inputs {names}: pass a dict name -> array",
                path=path,
            )
        arrays = {names[0]: sample}

    feed: dict[str, Any] = {}
    for entry in inputs:
        array = np.asarray(arrays[entry["name"]])
        dtype = entry["dtype"]
        if dtype == "str" and array.dtype.kind in "OS":  # tf.data yields UTF-8 bytes
            array = np.asarray(
                [v.decode("utf-8") if isinstance(v, bytes) else v for v in array.ravel()],
                dtype=object,
            ).reshape(array.shape)
        if (
            dtype not in ("str", "bfloat16")
            and dtype in _ORT_TYPES.values()
            and array.dtype != dtype
        ):
            array = array.astype(dtype)
        _check_shape(entry, array.shape, path)
        feed[entry["name"]] = array
    return feed


def _check_shape(entry: dict[str, Any], shape: Sequence[int], path: str) -> None:
    declared = entry["shape"]
    fits = len(declared) == len(shape) and all(
        not isinstance(want, int) or want == got for want, got in zip(declared, shape, strict=True)
    )
    if not fits:
        raise OnnxExportError(
            f"sample for ONNX input {entry['name']!r} has shape {list(shape)}, "
            f"the graph expects {declared}",
            path=path,
        )


def _max_abs_diff(got: Any, want: Any) -> float:
    import numpy as np

    if got.size == 0:
        return 0.0
    if got.dtype.kind not in "biufc" or want.dtype.kind not in "biufc":
        return 0.0 if np.array_equal(got, want) else float("inf")
    a = got.astype(np.float64)
    b = want.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    return float(np.max(diff))  # NaN against a number stays NaN and fails the tolerance check
