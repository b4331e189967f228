"""The Keras collector on real tiny seeded models (scikit-learn's 8x8 digits), TensorFlow and torch."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from collector_checks import sealed

from modelkb.collector.keras import KerasCallback, KerasCallbacks
from modelkb.collector.onnx_check import CHECKED_ON, OnnxExportError, verify_onnx
from modelkb.experiment import Experiment
from modelkb.schema import validate_metadata
from modelkb.seeding import seed_frameworks

keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")
ort = pytest.importorskip("onnxruntime")
datasets = pytest.importorskip("sklearn.datasets")

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="in-process tests run on the TensorFlow backend"
)

N_TRAIN = 1500  # of the 1797 digits; the rest is validation


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELKB_HOME", raising=False)


def digits(flat: bool = False) -> tuple[Any, Any, Any, Any]:
    data = datasets.load_digits()
    x = (data.images / 16.0).astype("float32")
    x = x.reshape(len(x), 64) if flat else x[..., None]
    y = data.target.astype("int32")
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def conv_model() -> Any:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def dense_model(optimizer: Any = None) -> Any:
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer or keras.optimizers.SGD(0.1),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def experiment(tmp_path: Path, **kwargs: Any) -> Experiment:
    kwargs.setdefault("store", tmp_path / "store")
    return Experiment("Digits", "alice", seed=42, **kwargs)


def run_onnx(path: Path, x: Any) -> Any:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def run_script(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


# -- the main run: a small CNN with validation data ------------------------------------------------


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("cnn")
    x, y, xv, yv = digits()
    exp = experiment(tmp)
    model = conv_model()
    callback = KerasCallback(exp, dataset={"name": "digits"})
    history = model.fit(
        x, y, batch_size=32, epochs=2, validation_data=(xv, yv), callbacks=[callback], verbose=0
    )
    return {
        "exp": exp,
        "model": model,
        "history": history.history,
        "meta": sealed(exp),
        "callback": callback,
    }


@pytest.mark.slow
def test_hyperparameters_are_captured(cnn_run: dict[str, Any]) -> None:
    hyper = cnn_run["meta"]["hyperparameters"]
    assert hyper["optimizer"]["name"] == "Adam"
    assert hyper["optimizer"]["config"]["beta_1"] == pytest.approx(0.9)
    assert hyper["learning_rate"] == pytest.approx(0.01)
    assert hyper["loss"] == "sparse_categorical_crossentropy"
    assert hyper["metrics"] == ["accuracy"]
    assert hyper["epochs"] == 2
    assert hyper["batch_size"] == 32
    assert hyper["steps_per_epoch"] == math.ceil(N_TRAIN / 32)


@pytest.mark.slow
def test_architecture_is_captured(cnn_run: dict[str, Any]) -> None:
    arch, model = cnn_run["meta"]["architecture"], cnn_run["model"]
    assert [layer["type"] for layer in arch["layers"]] == ["Conv2D", "Flatten", "Dense"]
    assert arch["layers"][0]["config"]["filters"] == 4
    assert arch["layers"][0]["output_shape"] == [None, 6, 6, 4]
    assert sum(layer["params"] for layer in arch["layers"]) == model.count_params()
    assert arch["parameter_count"] == model.count_params()
    assert arch["trainable_parameter_count"] == model.count_params()
    assert arch["inputs"][0]["shape"] == [None, 8, 8, 1]
    assert arch["inputs"][0]["dtype"] == "float32"
    assert arch["outputs"][0]["shape"] == [None, 10]


@pytest.mark.slow
def test_epochs_match_keras_history(cnn_run: dict[str, Any]) -> None:
    meta, history = cnn_run["meta"], cnn_run["history"]
    entries = meta["metrics"]["history"]
    assert [e["epoch"] for e in entries] == [0, 1]
    for i, entry in enumerate(entries):
        assert entry["train"]["loss"] == pytest.approx(history["loss"][i], rel=1e-6)
        assert entry["train"]["accuracy"] == pytest.approx(history["accuracy"][i], rel=1e-6)
        assert entry["val"]["loss"] == pytest.approx(history["val_loss"][i], rel=1e-6)
        assert entry["val"]["accuracy"] == pytest.approx(history["val_accuracy"][i], rel=1e-6)
        assert entry["lr"] == pytest.approx(0.01)
        assert entry["time_s"] > 0
    lines = (cnn_run["exp"].path / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]
    assert meta["metrics"]["final"]["val_loss"] == pytest.approx(history["val_loss"][-1], rel=1e-6)


@pytest.mark.slow
def test_dataset_is_described(cnn_run: dict[str, Any]) -> None:
    dataset = cnn_run["meta"]["dataset"]
    assert dataset["name"] == "digits"  # the user's field survives
    assert dataset["kind"] == "image"
    assert dataset["shapes"]["x"] == [None, 8, 8, 1]
    assert dataset["dtype"] == "float32"
    assert dataset["samples"] == {"train": N_TRAIN, "val": 1797 - N_TRAIN}
    assert dataset["classes"] == list(range(10))


@pytest.mark.slow
def test_bundle_files(cnn_run: dict[str, Any]) -> None:
    exp, model, meta = cnn_run["exp"], cnn_run["model"], cnn_run["meta"]
    assert meta["status"] == "completed"
    assert meta["framework"]["name"] == "keras"
    assert meta["framework"]["backend"] == "tensorflow"
    assert meta["framework"]["versions"]["tensorflow"]
    assert meta["warnings"] == []
    paths = {a["path"] for a in meta["artifacts"]}
    assert {"model.keras", "model.onnx", "metrics.jsonl", "README.md"} <= paths
    assert not [p for p in exp.path.iterdir() if p.name.startswith(".")]  # no temporary files left

    x = digits()[2][:7]
    reloaded = keras.saving.load_model(exp.path / "model.keras")
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))

    onnx = meta["onnx"]
    assert onnx["path"] == "model.onnx"
    assert onnx["opset"] >= 13
    assert onnx["max_abs_diff"] < 1e-5
    assert onnx["checked_samples"] == 8
    assert onnx["checked_on"] == CHECKED_ON  # the same report as PyTorch writes
    assert onnx["batch_dynamic"] is True
    for batch in (1, 5):
        got = run_onnx(exp.path / "model.onnx", x[:batch])
        np.testing.assert_allclose(got, model.predict(x[:batch], verbose=0), atol=1e-5)


# -- other inputs ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_dense_without_validation_and_default_batch_size(tmp_path: Path) -> None:
    x, y, _, _ = digits(flat=True)
    exp = experiment(tmp_path)
    model = dense_model()
    history = model.fit(x, y, epochs=2, callbacks=[KerasCallback(exp)], verbose=0)
    meta = sealed(exp)
    assert meta["warnings"] == []
    assert all("val" not in entry for entry in meta["metrics"]["history"])
    assert [e["train"]["loss"] for e in meta["metrics"]["history"]] == pytest.approx(
        history.history["loss"]
    )
    assert meta["hyperparameters"]["batch_size"] == 32  # Keras' default
    assert meta["hyperparameters"]["optimizer"]["name"] == "SGD"
    assert meta["dataset"]["kind"] == "tabular"
    assert meta["architecture"]["inputs"][0]["shape"] == [None, 64]
    assert not any(key.startswith("val_") for key in meta["metrics"]["final"])


@pytest.mark.slow
def test_learning_rate_schedule_records_the_current_rate(tmp_path: Path) -> None:
    x, y, _, _ = digits(flat=True)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model = dense_model(keras.optimizers.SGD(schedule))
    exp = experiment(tmp_path)
    model.fit(
        x, y, batch_size=100, epochs=2, callbacks=[KerasCallback(exp, export_onnx=False)], verbose=0
    )
    meta = sealed(exp)
    assert meta["hyperparameters"]["learning_rate"] == pytest.approx(0.1)
    assert (
        meta["hyperparameters"]["optimizer"]["config"]["learning_rate"]["class_name"]
        == "ExponentialDecay"
    )
    rates = [entry["lr"] for entry in meta["metrics"]["history"]]
    assert rates[0] == pytest.approx(0.1 * 0.5 ** (15 / 10), rel=1e-5)  # 15 steps done
    assert rates[1] == pytest.approx(0.1 * 0.5 ** (30 / 10), rel=1e-5)


@pytest.mark.slow
def test_tf_data_input(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    x, y, xv, yv = digits()
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(256, seed=1).batch(64).prefetch(2)
    val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(64)
    exp = experiment(tmp_path)
    model = conv_model()
    history = model.fit(
        train,
        validation_data=val,
        epochs=2,
        shuffle=False,
        callbacks=[KerasCallback(exp)],
        verbose=0,
    )
    meta = sealed(exp)
    assert meta["warnings"] == []
    assert meta["hyperparameters"]["batch_size"] == 64
    assert meta["hyperparameters"]["steps_per_epoch"] == math.ceil(N_TRAIN / 64)
    assert meta["dataset"]["shapes"] == {"x": [None, 8, 8, 1], "y": [None]}
    assert meta["dataset"]["kind"] == "image"
    assert meta["metrics"]["history"][1]["val"]["loss"] == pytest.approx(
        history.history["val_loss"][1]
    )
    assert meta["onnx"]["max_abs_diff"] < 1e-5 and meta["onnx"]["sample"] == "data"


@pytest.mark.slow
def test_generator_input(tmp_path: Path) -> None:
    x, y, _, _ = digits()

    def batches():
        while True:
            for start in range(0, N_TRAIN, 50):
                yield x[start : start + 50], y[start : start + 50]

    exp = experiment(tmp_path)
    model = conv_model()
    model.fit(
        batches(),
        steps_per_epoch=30,
        epochs=2,
        shuffle=False,
        callbacks=[KerasCallback(exp)],
        verbose=0,
    )
    meta = sealed(exp)
    assert meta["warnings"] == []
    assert meta["hyperparameters"]["batch_size"] == 50
    assert meta["hyperparameters"]["steps_per_epoch"] == 30
    assert meta["dataset"]["shapes"]["x"] == [None, 8, 8, 1]
    assert "samples" not in meta["dataset"]  # one batch does not tell the size of the data set
    assert meta["onnx"]["checked_samples"] == 8


class Digits(keras.utils.PyDataset):
    """A PyDataset without a ``batch_size`` attribute: the size comes from a batch."""

    def __init__(self, x: Any, y: Any, size: int) -> None:
        super().__init__()
        self.x, self.y, self.size = x, y, size

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.size)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        part = slice(index * self.size, (index + 1) * self.size)
        return self.x[part], self.y[part]


@pytest.mark.slow
def test_py_dataset_input(tmp_path: Path) -> None:
    x, y, xv, yv = digits()
    exp = experiment(tmp_path)
    model = conv_model()
    history = model.fit(
        Digits(x, y, 40),
        validation_data=Digits(xv, yv, 40),
        epochs=2,
        callbacks=[KerasCallback(exp)],
        verbose=0,
    )
    meta = sealed(exp)
    assert meta["warnings"] == []
    assert meta["hyperparameters"]["batch_size"] == 40
    assert meta["hyperparameters"]["steps_per_epoch"] == math.ceil(N_TRAIN / 40)
    assert meta["dataset"]["shapes"]["x"] == [None, 8, 8, 1]
    assert meta["metrics"]["history"][0]["val"]["accuracy"] == pytest.approx(
        history.history["val_accuracy"][0]
    )
    assert meta["onnx"]["max_abs_diff"] < 1e-5


@pytest.mark.slow
def test_preprocessing_layers_become_steps(tmp_path: Path) -> None:
    x, y, _, _ = digits()
    norm = keras.layers.Normalization(axis=None)
    norm.adapt(x[:200])
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(16.0, offset=0.5),
            norm,
            keras.layers.RandomFlip("horizontal", seed=1),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    exp = experiment(tmp_path)
    model.fit(x, y, batch_size=64, epochs=1, callbacks=[KerasCallback(exp)], verbose=0)
    meta = sealed(exp)
    # tf2onnx cannot convert the RandomFlip graph (StatelessRandomUniformV2): a model the exporter
    # cannot handle is a recorded warning, and the run is complete without model.onnx
    assert meta["status"] == "completed"
    assert [w["source"] for w in meta["warnings"]] == ["onnx"]
    assert not (exp.path / "model.onnx").exists() and (exp.path / "model.keras").is_file()
    steps = {step["op"]: step for step in meta["dataset"]["preprocessing"] if step.get("in_model")}
    assert steps["rescale"]["scale"] == 16.0 and steps["rescale"]["offset"] == 0.5
    assert steps["normalize"]["mean"] == pytest.approx(float(x[:200].mean()), rel=1e-4)
    assert steps["normalize"]["std"] == pytest.approx(float(x[:200].std()), rel=1e-3)
    assert steps["augment"]["layer"] == "RandomFlip" and steps["augment"]["train_only"] is True


# -- behaviour -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_training_is_identical_with_and_without_the_callback(tmp_path: Path) -> None:
    x, y, xv, yv = digits()

    seed_frameworks(42)
    plain = conv_model()
    plain.fit(x, y, batch_size=32, epochs=2, validation_data=(xv, yv), verbose=0)

    exp = experiment(tmp_path)
    tracked = conv_model()
    tracked.fit(
        x,
        y,
        batch_size=32,
        epochs=2,
        validation_data=(xv, yv),
        callbacks=[KerasCallback(exp)],
        verbose=0,
    )

    for a, b in zip(plain.get_weights(), tracked.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_early_stopping_still_completes(tmp_path: Path) -> None:
    x, y, _, _ = digits(flat=True)
    exp = experiment(tmp_path)
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    model = dense_model()
    model.fit(x, y, epochs=5, callbacks=[KerasCallback(exp, export_onnx=False), stop], verbose=0)
    meta = sealed(exp)
    assert meta["status"] == "completed"
    assert len(meta["metrics"]["history"]) == 2
    assert meta["hyperparameters"]["epochs"] == 5


@pytest.mark.slow
def test_with_block_owns_the_bundle(tmp_path: Path) -> None:
    x, y, xv, yv = digits(flat=True)
    with experiment(tmp_path) as exp:
        model = dense_model()
        model.fit(x, y, epochs=1, callbacks=[KerasCallback(exp, export_onnx=False)], verbose=0)
        assert not exp.finished  # still open: what is logged after fit lands in the bundle
        _, accuracy = model.evaluate(xv, yv, verbose=0)
        exp.log_metrics({"test_accuracy": accuracy})
    meta = sealed(exp)
    assert meta["status"] == "completed"
    assert meta["metrics"]["final"]["test_accuracy"] == pytest.approx(accuracy)
    assert (exp.path / "model.keras").is_file()


@pytest.mark.slow
def test_failure_inside_with_block_is_recorded_and_reraised(tmp_path: Path) -> None:
    x, y, _, _ = digits(flat=True)
    error = ValueError("bad batch 7")

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                raise error

    with pytest.raises(ValueError) as caught, experiment(tmp_path) as exp:
        dense_model().fit(x, y, epochs=3, callbacks=[KerasCallback(exp), Boom()], verbose=0)
    assert caught.value is error
    meta = sealed(exp)
    assert meta["status"] == "failed"
    assert "bad batch 7" in meta["error"]
    assert [entry["epoch"] for entry in meta["metrics"]["history"]] == [0, 1]


@pytest.mark.slow
def test_subclassed_model_is_described_after_it_is_built(tmp_path: Path) -> None:
    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = keras.layers.Dense(8, activation="relu")
            self.out = keras.layers.Dense(10)

        def call(self, x: Any) -> Any:
            return self.out(self.hidden(x))

    x, y, _, _ = digits(flat=True)
    model = Net()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    exp = experiment(tmp_path)
    model.fit(x, y, batch_size=50, epochs=1, callbacks=[KerasCallback(exp)], verbose=0)
    meta = sealed(exp)
    assert meta["warnings"] == []
    arch = meta["architecture"]
    assert arch["parameter_count"] == model.count_params() == 64 * 8 + 8 + 8 * 10 + 10
    assert arch["inputs"] == [{"name": None, "shape": [None, 64], "dtype": "float32"}]
    assert meta["onnx"]["max_abs_diff"] < 1e-5


@pytest.mark.slow
def test_a_finished_experiment_is_not_recorded_again(tmp_path: Path) -> None:
    x, y, _, _ = digits(flat=True)
    exp = experiment(tmp_path)
    model = dense_model()
    model.fit(x, y, epochs=1, callbacks=[KerasCallback(exp, export_onnx=False)], verbose=0)
    with pytest.warns(UserWarning, match="already finished"):
        model.fit(x, y, epochs=1, callbacks=[KerasCallback(exp, export_onnx=False)], verbose=0)
    assert len(sealed(exp)["metrics"]["history"]) == 1


def test_alias_and_bad_dataset_argument(tmp_path: Path) -> None:
    assert KerasCallbacks is KerasCallback
    with pytest.raises(TypeError, match="dataset="):
        KerasCallback(experiment(tmp_path), dataset=["digits"])  # type: ignore[arg-type]


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_onnx_export_failure_is_a_warning(tmp_path: Path) -> None:
    x, y, _, _ = digits(flat=True)
    exp = experiment(tmp_path)

    class BlockOnnxPath(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            (exp.path / "model.onnx").mkdir()  # os.replace onto a folder fails

    model = dense_model()
    history = model.fit(x, y, epochs=2, callbacks=[KerasCallback(exp), BlockOnnxPath()], verbose=0)
    meta = sealed(exp)
    assert meta["status"] == "completed"
    assert len(history.history["loss"]) == 2
    assert "onnx" not in meta
    assert [w["source"] for w in meta["warnings"]] == ["onnx"]
    assert "exporting model.onnx failed" in meta["warnings"][0]["message"]
    assert (exp.path / "model.keras").is_file()
    assert not [p for p in exp.path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_onnx_check_failure_drops_the_file(tmp_path: Path) -> None:
    x, y, _, _ = digits(flat=True)
    exp = experiment(tmp_path)
    wrong_shape = np.zeros((3, 65), dtype="float32")  # does not fit the graph's [None, 64] input
    dense_model().fit(
        x, y, epochs=1, callbacks=[KerasCallback(exp, sample_inputs=wrong_shape)], verbose=0
    )
    meta = sealed(exp)
    assert meta["status"] == "completed"
    assert not (exp.path / "model.onnx").exists()  # an unchecked export is not published
    assert "onnx" not in meta
    assert [w["source"] for w in meta["warnings"]] == ["onnx"]
    assert not [p for p in exp.path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_unwritable_store_never_breaks_training(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    exp = experiment(tmp_path, store=tmp_path / "afile" / "store")
    x, y, _, _ = digits(flat=True)
    history = dense_model().fit(x, y, epochs=2, callbacks=[KerasCallback(exp)], verbose=0)
    assert len(history.history["loss"]) == 2
    assert exp.finished
    assert len(exp.metadata["metrics"]["history"]) == 2
    sources = {w["source"] for w in exp.metadata["warnings"]}
    assert {"store", "metrics", "keras", "onnx"} <= sources


@pytest.mark.slow
def test_full_disk_never_breaks_training(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
        import json, resource, signal
        import numpy as np, keras
        from sklearn.datasets import load_digits
        from modelkb.experiment import Experiment
        from modelkb.keras import KerasCallback

        d = load_digits()
        x, y = (d.images.reshape(-1, 64) / 16).astype("float32"), d.target
        exp = Experiment("Digits", "alice", seed=42, store="store")
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32), keras.layers.Dense(10)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, hard))  # every file write past 300 bytes fails
        history = model.fit(x, y, epochs=2, callbacks=[KerasCallback(exp)], verbose=0)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        print(json.dumps({"epochs": len(history.history["loss"]), "finished": exp.finished,
                          "sources": sorted({w["source"] for w in exp.metadata["warnings"]})}))
        """,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["epochs"] == 2 and report["finished"]
    assert "keras" in report["sources"]  # model.keras could not be written


@pytest.mark.slow
def test_torch_backend(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    result = run_script(
        tmp_path,
        """
        import json
        import keras
        from sklearn.datasets import load_digits
        from modelkb.experiment import Experiment
        from modelkb.keras import KerasCallback

        d = load_digits()
        x, y = (d.images[..., None] / 16).astype("float32"), d.target
        exp = Experiment("Digits", "alice", seed=42, store="store")
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                                  keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        callback = KerasCallback(exp)
        history = model.fit(x[:1500], y[:1500], batch_size=25, epochs=2, validation_split=0.1,
                            callbacks=[callback], verbose=0)
        print(json.dumps({"path": str(exp.path), "history": history.history,
                          "finalize": callback.finalize_seconds}))
        """,
        KERAS_BACKEND="torch",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    bundle = Path(report["path"])
    meta = json.loads((bundle / "metadata.json").read_text(encoding="utf-8"))
    validate_metadata(meta)
    assert meta["status"] == "completed", meta["warnings"]
    assert meta["framework"]["backend"] == "torch"
    assert "torch" in meta["framework"]["versions"]
    assert meta["hyperparameters"]["batch_size"] == 25
    assert meta["hyperparameters"]["optimizer"]["name"] == "Adam"
    assert meta["hyperparameters"]["learning_rate"] == pytest.approx(0.001)
    assert meta["architecture"]["inputs"][0]["shape"] == [None, 8, 8, 1]
    assert meta["hyperparameters"]["steps_per_epoch"] == 1350 // 25
    assert meta["dataset"]["samples"] == {"train": 1350, "val": 150}
    val_loss = [entry["val"]["loss"] for entry in meta["metrics"]["history"]]
    assert val_loss == pytest.approx(report["history"]["val_loss"])
    assert meta["onnx"]["max_abs_diff"] < 1e-5
    assert meta["onnx"]["batch_dynamic"] is True
    x = (datasets.load_digits().images[-5:, ..., None] / 16).astype("float32")
    reference = run_onnx(bundle / "model.onnx", x)
    assert run_onnx(bundle / "model.onnx", x[:1]) == pytest.approx(reference[:1], abs=1e-5)
    assert (bundle / "model.keras").is_file()


# -- onnx_check ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    pytest.importorskip("tf2onnx")
    model = dense_model()
    x = digits(flat=True)[0][:8]
    model(x)
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tf2onnx's numpy-2 shim
        model.export(str(path), format="onnx", verbose=False)
    return path, model


def test_verify_onnx_reports_the_graph(small_onnx: tuple[Path, Any]) -> None:
    path, model = small_onnx
    x = digits(flat=True)[0][:6]
    result = verify_onnx(
        path, x.astype("float64"), model.predict(x, verbose=0)
    )  # cast to the graph's dtype
    assert result["max_abs_diff"] < 1e-5
    assert result["checked_on"] == 6
    assert result["batch_dynamic"] is True
    assert isinstance(result["opset"], int) and isinstance(result["ir_version"], int)
    assert result["inputs"][0]["shape"][1:] == [64] and result["inputs"][0]["dtype"] == "float32"
    assert result["outputs"][0]["shape"][1:] == [10]
    name = result["inputs"][0]["name"]
    assert verify_onnx(path, {name: x}, [model.predict(x, verbose=0)])["max_abs_diff"] < 1e-5


def test_verify_onnx_rejects_wrong_results(small_onnx: tuple[Path, Any]) -> None:
    path, model = small_onnx
    x = digits(flat=True)[0][:4]
    expected = model.predict(x, verbose=0)
    with pytest.raises(OnnxExportError, match="differ") as caught:
        verify_onnx(path, x, expected + 1e-3)
    assert caught.value.max_abs_diff == pytest.approx(1e-3, rel=1e-2)
    with pytest.raises(OnnxExportError, match="shape"):
        verify_onnx(path, x, expected[:, :5])
    with pytest.raises(OnnxExportError, match="graph expects"):
        verify_onnx(path, x[:, :10], expected)
    with pytest.raises(OnnxExportError, match="missing"):
        verify_onnx(path, {"nope": x}, expected)
    assert isinstance(caught.value, RuntimeError)


def test_verify_onnx_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(OnnxExportError, match="cannot load"):
        verify_onnx(broken, np.zeros((1, 2), dtype="float32"), np.zeros((1, 2), dtype="float32"))


@pytest.mark.slow
def test_tf_keras_spelling(tmp_path: Path) -> None:
    """``tf.keras`` (Keras 3 inside TensorFlow 2.16+) works with the same callback."""
    tf = pytest.importorskip("tensorflow")
    x, y, _, _ = digits(flat=True)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((64,)),
            tf.keras.layers.Dense(16, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        tf.keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    exp = experiment(tmp_path)
    history = model.fit(x, y, epochs=2, batch_size=16, callbacks=[KerasCallback(exp)], verbose=0)
    meta = sealed(exp)
    assert meta["status"] == "completed" and meta["hyperparameters"]["batch_size"] == 16
    assert meta["framework"]["versions"]["tensorflow"] == tf.__version__
    assert [e["train"]["accuracy"] for e in meta["metrics"]["history"]] == pytest.approx(
        history.history["accuracy"]
    )
    assert meta["onnx"]["max_abs_diff"] < 1e-5


def test_a_custom_loop_registers_its_model_with_log_model(tmp_path: Path) -> None:
    import numpy as np

    from modelkb.bundle import read_bundle

    x = np.random.default_rng(0).random((64, 6)).astype("float32")
    y = (x.sum(axis=1) > 3).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(6,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with Experiment("Loop", "u", seed=0, store=tmp_path / "store", capture_code=False) as exp:
        for epoch in range(2):  # train_on_batch: no fit(), no callback
            loss = model.train_on_batch(x, y)
            exp.log_metrics({"loss": float(np.ravel(loss)[0])}, epoch=epoch)
        exp.log_model(model, x[:8])
    meta = read_bundle(exp.path).metadata
    assert (
        meta["framework"]["name"] == "keras"
        and meta["hyperparameters"]["loss"] == "binary_crossentropy"
    )
    assert meta["architecture"]["layers"] and (exp.path / "model.keras").is_file()
    assert meta["onnx"]["max_abs_diff"] < 1e-5 and not meta["warnings"]
    session = ort.InferenceSession(str(exp.path / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x[:5]})[0]
    np.testing.assert_allclose(got, model.predict(x[:5], verbose=0), atol=1e-5)


def test_log_model_refuses_what_is_not_a_model(tmp_path: Path) -> None:
    with (
        Experiment("Loop", "u", store=tmp_path / "store", capture_code=False) as exp,
        pytest.raises(TypeError, match=r"torch\.nn\.Module or a Keras model"),
    ):
        exp.log_model(object())


def test_early_stopping_records_the_epochs_run(tmp_path: Path) -> None:
    import numpy as np

    from modelkb.bundle import read_bundle
    from modelkb.keras import KerasCallback

    x = np.zeros((32, 3), dtype="float32")
    y = np.zeros((32, 1), dtype="float32")  # nothing to learn: val_loss stops improving at once
    model = keras.Sequential(
        [keras.Input(shape=(3,)), keras.layers.Dense(1, kernel_initializer="zeros")]
    )
    model.compile(optimizer="sgd", loss="mse")
    exp = Experiment("Early", "u", seed=0, store=tmp_path / "store", capture_code=False)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1)
    history = model.fit(
        x, y, epochs=50, validation_split=0.25, verbose=0, callbacks=[stop, KerasCallback(exp)]
    )
    meta = read_bundle(exp.path).metadata
    assert meta["hyperparameters"]["epochs"] == 50  # what was asked: reproduction needs it
    assert meta["hyperparameters"]["epochs_run"] == len(history.history["loss"]) < 50
