"""Helpers of the collector tests: the digits data, a sealed bundle's metadata, an ONNX check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkb.schema import validate_metadata

if TYPE_CHECKING:  # numpy, torch and onnxruntime are imported by the helpers that need them
    import numpy as np

    from modelkb.experiment import Experiment


def digits_split(*, flat: bool, n_train: int, n_val: int) -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 digits scaled to [0, 1]: ``x``/``y`` to train on, ``xv``/``yv`` to validate.

    ``flat`` gives rows of 64 values, else images of shape (1, 8, 8); labels are int64.
    """
    import numpy as np
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)
    x = x.reshape(len(x), 64) if flat else x[:, None]
    y = data.target.astype(np.int64)
    end = n_train + n_val
    return {"x": x[:n_train], "y": y[:n_train], "xv": x[n_train:end], "yv": y[n_train:end]}


def sealed(exp: Experiment) -> dict[str, Any]:
    """The bundle's ``metadata.json``, checked against the schema."""
    meta = json.loads((exp.path / "metadata.json").read_text(encoding="utf-8"))
    validate_metadata(meta)
    return meta


def assert_onnx_matches(path: Path, module: Any, x: np.ndarray) -> None:
    """``model.onnx`` computes what the PyTorch ``module`` computes, at batch sizes 1 and 5."""
    import numpy as np
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    module.eval()
    for batch in (1, 5):
        got = session.run(None, {name: x[:batch]})[0]
        with torch.no_grad():
            want = module(torch.from_numpy(x[:batch])).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
