"""Run the ONNX model and label its outputs (ships verbatim as ``inference.py``).

Copied unchanged into every generated package; framework-free (onnxruntime + numpy) and it never
imports ``modelkb``. ``handler.py`` builds one :class:`Predictor` at cold start; ``predict.py`` uses
the same class, so the command line and the Lambda answer with the same numbers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

if __package__:  # imported as modelkb.serverless.inference_runtime (tests, benchmarks)
    from .preprocess_runtime import InputError, prepare_batch
else:  # the generated package: preprocess.py sits next to this file
    from preprocess import InputError, prepare_batch

_state = ort.capi.onnxruntime_pybind11_state
_RUN_ERRORS = tuple(getattr(_state, name) for name in ("InvalidArgument", "Fail", "RuntimeException", "InvalidGraph") if hasattr(_state, name))


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
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    if mode == "sigmoid":
        return 1.0 / (1.0 + np.exp(-scores))
    return scores


class Predictor:
    """An ONNX session created once, plus the spec that turns requests into inputs and answers.

    Args:
        model_path: The ``model.onnx`` file.
        spec: The package spec (``spec.json``).
        threads: onnxruntime intra-op threads (``MODELKB_INTRA_OP_THREADS``, default 1: the
            tightest latency tail for small models on Lambda).
    """

    def __init__(self, model_path: str | os.PathLike[str], spec: Mapping[str, Any], *, threads: int | None = None) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads if threads is not None else os.environ.get("MODELKB_INTRA_OP_THREADS", "1"))
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
        self.spec = dict(spec)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.classes = [str(label) for label in spec.get("classes") or []] or None
        self.mode = spec.get("postprocess", "none")

    def probabilities(self, samples: Sequence[Any]) -> np.ndarray:
        """Per-class probabilities (or raw outputs for regression) of a list of raw samples."""
        batch = prepare_batch(samples, self.spec)
        return self.run(batch)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a prepared batch and post-process its first output."""
        try:
            (outputs,) = self.session.run([self.output_name], {self.input_name: batch})
        except _RUN_ERRORS as err:
            raise InputError("the model could not run on these inputs") from err
        return postprocess(outputs, self.mode)

    def answer(self, scores: np.ndarray, *, top_k: int | None = None) -> dict[str, Any]:
        """The JSON answer for one sample's scores."""
        if self.mode == "regression":
            return {"outputs": [float(v) for v in scores]}
        probabilities = [float(p) for p in scores]
        if self.mode in ("sigmoid", "binary") and len(probabilities) == 1:
            probabilities = [1.0 - probabilities[0], probabilities[0]]
        labels = self.classes if self.classes and len(self.classes) == len(probabilities) else [str(i) for i in range(len(probabilities))]
        ranked = sorted(zip(labels, probabilities), key=lambda pair: -pair[1])
        if top_k is not None:
            ranked = ranked[:top_k]
        return {"predictions": [{"label": label, "probability": p} for label, p in ranked], "top": ranked[0][0]}

    def predict(self, samples: Sequence[Any], *, top_k: int | None = None) -> list[dict[str, Any]]:
        """Answers for a list of raw samples."""
        return [self.answer(row, top_k=top_k) for row in self.probabilities(samples)]
