"""Sealing a Keras run in a detached process: the ONNX export and its check off the training path.

TensorFlow cannot be used in a forked child, so a Keras run is not sealed the way a PyTorch run
is (:mod:`modelkb.sealing`). When ``fit`` returns, :func:`seal_elsewhere` writes the rows the
export is checked on next to ``model.keras`` (JSON: no pickle), records the run as ended
(``sealing: "in progress"``) and starts ``python -m modelkb.collector.keras_sealer BUNDLE``
detached (its own session, niced, output to ``/dev/null``); ``run.json`` names that process. It
loads ``model.keras`` (the saved model: no user code runs), exports and checks ``model.onnx``
exactly as the callback does inline, and seals. Models it could not load the same way (custom
layers or models, ``Lambda`` layers) are exported inline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkb.bundle import SEALING_IN_PROGRESS
from modelkb.fsutil import atomic_write_bytes
from modelkb.sealing import background_sealing_enabled

if TYPE_CHECKING:
    from modelkb.experiment import Experiment

SAMPLE_FILE = ".seal-sample.json"
"""The export's check rows, left for the sealer (hidden: not an artifact; removed when sealed)."""


def seal_elsewhere(
    experiment: Experiment, model: Any, sample: Any, origin: str, labels: Any = None
) -> bool:
    """Hand the ONNX export and the sealing of ``experiment`` to a detached process; ``False``
    (nothing done) when it cannot be: background sealing off, a model ``model.keras`` does not
    rebuild by itself, or a sample that is not plain arrays. ``labels`` (of the sample's rows)
    go along when they are plain arrays too."""
    if not background_sealing_enabled() or not _rebuilds_from_file(model):
        return False
    encoded = _encode_sample(sample)
    if encoded is None:
        return False
    given = {"origin": origin, "sample": encoded}
    encoded_labels = None if labels is None else _encode_sample(labels)
    if encoded_labels is not None:
        given["labels"] = encoded_labels
    atomic_write_bytes(
        experiment.path / SAMPLE_FILE, json.dumps(given).encode("utf-8"), durable=False
    )
    experiment.mark_ended("completed", sealing=SEALING_IN_PROGRESS)
    import keras

    package_root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "KERAS_BACKEND": keras.backend.backend(),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
    }
    try:
        sealer = subprocess.Popen(
            [sys.executable, "-m", "modelkb.collector.keras_sealer", str(experiment.path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=str(experiment.path),
        )
    except OSError:
        (experiment.path / SAMPLE_FILE).unlink(missing_ok=True)
        return False
    experiment.handed_over(sealer.pid, write_state=True)
    return True


def _rebuilds_from_file(model: Any) -> bool:
    """A Sequential or functional model of Keras' own layers, without ``Lambda``."""
    classes = [type(model), *(type(layer) for layer in getattr(model, "layers", []))]
    return type(model).__name__ in ("Sequential", "Functional") and all(
        cls.__module__.startswith("keras.") and cls.__name__ != "Lambda" for cls in classes
    )


def _encode_sample(sample: Any) -> Any:
    """Arrays (one, a list, or a dict by input name) as JSON-able ``{dtype, shape, values}``."""
    import numpy as np

    def one(value: Any) -> dict[str, Any] | None:
        array = np.asarray(value)
        if array.dtype.kind in "SU" or array.dtype == object:
            texts = [v.decode() if isinstance(v, bytes) else v for v in array.ravel().tolist()]
            if not all(isinstance(t, str) for t in texts):
                return None
            return {"dtype": "str", "shape": list(array.shape), "values": texts}
        if array.dtype.kind not in "biuf":
            return None
        return {"dtype": str(array.dtype), "shape": list(array.shape), "values": array.tolist()}

    if isinstance(sample, dict):
        encoded = {str(k): one(v) for k, v in sample.items()}
        return {"dict": encoded} if all(encoded.values()) else None
    if isinstance(sample, (list, tuple)):
        items = [one(v) for v in sample]
        return {"list": items} if all(items) else None
    single = one(sample) if sample is not None else None
    return {"array": single} if single else None


def _decode_sample(encoded: dict[str, Any]) -> Any:
    import numpy as np

    def one(entry: dict[str, Any]) -> Any:
        dtype = object if entry["dtype"] == "str" else entry["dtype"]
        return np.array(entry["values"], dtype=dtype).reshape(entry["shape"])

    if "dict" in encoded:
        return {k: one(v) for k, v in encoded["dict"].items()}
    if "list" in encoded:
        return [one(v) for v in encoded["list"]]
    return one(encoded["array"])


def main(argv: list[str]) -> int:
    """``python -m modelkb.collector.keras_sealer BUNDLE``: export, check and seal one run."""
    os.nice(10)  # the user's next work comes first
    folder = Path(argv[1])
    from modelkb.experiment import Experiment

    experiment = Experiment.reopen(folder)
    try:
        with experiment.guard("onnx", "exporting model.onnx"):
            given = json.loads((folder / SAMPLE_FILE).read_text(encoding="utf-8"))
            import keras

            from modelkb.collector.keras import KerasCallback

            sample = _decode_sample(given["sample"])
            labels = _decode_sample(given["labels"]) if given.get("labels") else None
            model = keras.saving.load_model(folder / "model.keras", compile=False)
            model(sample, training=False)  # a loaded model is exported once it has been called
            callback = KerasCallback(experiment, finish=False)
            callback.set_model(model)
            callback.export_onnx(
                experiment.artifact_path("model.onnx"), sample, given["origin"], labels
            )
    finally:
        (folder / SAMPLE_FILE).unlink(missing_ok=True)
        experiment.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
