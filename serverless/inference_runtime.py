"""Run the ONNX model and label its outputs (ships verbatim as ``inference.py``).

Copied unchanged into every generated package; framework-free (onnxruntime + numpy) and it never
imports ``modelkb``. ``handler.py`` builds one :class:`Predictor` at cold start; ``predict.py`` uses
the same class, so the command line and the Lambda answer with the same numbers.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

# Relative on purpose, the one exception to absolute imports: this file ships verbatim into every
# package, where naming modelkb would tie it to a library that is not installed there.
if __package__:  # imported as modelkb.serverless.inference_runtime (tests, benchmarks)
    from .preprocess_runtime import InputError, prepare_batch
else:  # the generated package: preprocess.py sits next to this file
    from preprocess import InputError, prepare_batch

_state = ort.capi.onnxruntime_pybind11_state
_RUN_ERRORS = tuple(
    getattr(_state, name)
    for name in ("InvalidArgument", "Fail", "RuntimeException", "InvalidGraph")
    if hasattr(_state, name)
)


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``spec.json``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def postprocess(outputs: np.ndarray, mode: str) -> np.ndarray:
    """Turn the model's first output into per-class probabilities.

    Modes: ``none`` (already probabilities), ``softmax`` (logits), ``sigmoid`` (one logit),
    ``binary`` (one probability), ``regression`` (raw values).
    """
    scores = np.asarray(outputs, dtype=np.float64).reshape(outputs.shape[0], -1)
    if mode == "softmax":
        # The textbook formula, computed in place (the same numbers, fewer temporary arrays per request).
        shifted = np.subtract(scores, scores.max(axis=1, keepdims=True))
        np.exp(shifted, out=shifted)
        shifted /= shifted.sum(axis=1, keepdims=True)
        return shifted
    if mode == "sigmoid":
        return 1.0 / (1.0 + np.exp(-scores))
    return scores


SMALL_OUTPUT = 4096
"""Outputs of at most this many values (a request's worth) are post-processed in Python floats."""


def score_rows(outputs: np.ndarray, mode: str) -> list[list[float]]:
    """:func:`postprocess` as lists of Python floats, one per sample, refusing NaN and infinities.

    Small outputs skip numpy: for a few dozen scores its per-call overhead is most of the work.
    Same formulas; results agree with :func:`postprocess` to the last bit or two.
    """
    if outputs.size > SMALL_OUTPUT or mode not in ("softmax", "none", "binary", "regression"):
        scores = postprocess(outputs, mode)
        if not np.isfinite(scores).all():
            raise InputError(_NOT_FINITE)
        return scores.tolist()
    rows = np.asarray(outputs, dtype=np.float64).reshape(outputs.shape[0], -1).tolist()
    if mode == "softmax":
        rows = [_softmax(row) for row in rows]
    for row in rows:
        if not all(map(math.isfinite, row)):
            raise InputError(_NOT_FINITE)
    return rows


_NOT_FINITE = (
    "the model's outputs are not finite numbers for these inputs"  # NaN/inf have no JSON form
)


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    shifted = [math.exp(value - top) for value in row]
    total = math.fsum(shifted)
    return [value / total for value in shifted]


def _descending(pair: tuple[str, float]) -> float:
    return -pair[1]


class Predictor:
    """An ONNX session created once, plus the spec that turns requests into inputs and answers.

    Args:
        model_path: The ``model.onnx`` file.
        spec: The package spec (``spec.json``).
        threads: onnxruntime intra-op threads (``MODELKB_INTRA_OP_THREADS``, default 1: the
            tightest latency tail for small models on Lambda).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        spec: Mapping[str, Any],
        *,
        threads: int | None = None,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(
            threads if threads is not None else os.environ.get("MODELKB_INTRA_OP_THREADS", "1")
        )
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.spec = dict(spec)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.classes = [str(label) for label in spec.get("classes") or []] or None
        self.mode = spec.get("postprocess", "none")
        self._labels: dict[int, list[str]] = {}  # output width -> labels, filled on first use

    def labels(self, width: int) -> list[str]:
        """The labels of ``width`` scores: the recorded classes when they match, else ``"0"``, ``"1"``, ..."""
        labels = self._labels.get(width)
        if labels is None:
            labels = (
                self.classes
                if self.classes and len(self.classes) == width
                else [str(i) for i in range(width)]
            )
            self._labels[width] = labels
        return labels

    def probabilities(self, samples: Sequence[Any]) -> np.ndarray:
        """Per-class probabilities (or raw outputs for regression) of a list of raw samples."""
        batch = prepare_batch(samples, self.spec)
        return self.run(batch)

    def outputs(self, batch: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
        """The model's first output on a prepared batch (one array per input for named inputs)."""
        feed = dict(batch) if isinstance(batch, Mapping) else {self.input_name: batch}
        try:
            (outputs,) = self.session.run([self.output_name], feed)
        except _RUN_ERRORS as err:
            raise InputError("the model could not run on these inputs") from err
        return outputs

    def run(self, batch: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
        """Run the model on a prepared batch and post-process its first output."""
        scores = postprocess(self.outputs(batch), self.mode)
        if not np.isfinite(scores).all():
            raise InputError(_NOT_FINITE)
        return scores

    def answer(
        self, scores: Sequence[float] | np.ndarray, *, top_k: int | None = None
    ) -> dict[str, Any]:
        """The JSON answer for one sample's scores."""
        if not isinstance(scores, list):
            scores = (
                np.asarray(scores, dtype=np.float64).ravel().tolist()
            )  # Python floats, in one C call
        if self.mode == "regression":
            return {"outputs": scores}
        probabilities = scores
        if self.mode in ("sigmoid", "binary") and len(probabilities) == 1:
            probabilities = [1.0 - probabilities[0], probabilities[0]]
        ranked = sorted(
            zip(self.labels(len(probabilities)), probabilities, strict=True), key=_descending
        )
        if top_k is not None:
            ranked = ranked[:top_k]
        return {
            "predictions": [{"label": label, "probability": p} for label, p in ranked],
            "top": ranked[0][0],
        }

    def predict(self, samples: Sequence[Any], *, top_k: int | None = None) -> list[dict[str, Any]]:
        """Answers for a list of raw samples."""
        rows = score_rows(self.outputs(prepare_batch(samples, self.spec)), self.mode)
        return [self.answer(row, top_k=top_k) for row in rows]
