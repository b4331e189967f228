"""The PyTorch collector on real tiny models trained on scikit-learn's 8x8 digits (seconds each)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from collector_checks import assert_onnx_matches, digits_split, sealed

from modelkb.collector.onnx_check import CHECKED_ON
from modelkb.example_inputs import MAX_EXAMPLES, read_examples
from modelkb.experiment import Experiment
from modelkb.torch import Model, PytorchCallbacks, TorchRecorder

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("sklearn")

nn = torch.nn
DataLoader, TensorDataset = torch.utils.data.DataLoader, torch.utils.data.TensorDataset

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

N_TRAIN, N_VAL, BATCH = 480, 160, 32


@pytest.fixture(scope="module", name="digits")
def digits_fixture() -> dict[str, np.ndarray]:
    return digits_split(flat=False, n_train=N_TRAIN, n_val=N_VAL)  # images (N, 1, 8, 8)


class SmallCNN(nn.Module):
    """Conv + BatchNorm (so eval/train mode matters) + linear head; keeps its init args."""

    def __init__(self, channels: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.init_args = {"channels": channels, "classes": classes}
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * 16, classes))

    def forward(self, x: Any) -> Any:
        return self.head(self.features(x))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def experiment(tmp_path: Path, store: Path | None = None) -> Experiment:
    return Experiment("Digits", "alice", seed=42, store=store or tmp_path / "store")


def loader(x: np.ndarray, y: np.ndarray, *, shuffle: bool = True) -> DataLoader:
    return DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=BATCH, shuffle=shuffle
    )


def assert_history_matches(exp: Experiment, meta: dict[str, Any], history: Any) -> None:
    entries = meta["metrics"]["history"]
    assert [e["epoch"] for e in entries] == history.epoch
    for i, entry in enumerate(entries):
        for name, value in entry["train"].items():
            assert history.history[name][i] == value
        for name, value in entry.get("val", {}).items():
            assert history.history[f"val_{name}"][i] == value
    lines = (exp.path / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == entries


def assert_weights_reload(path: Path, module: nn.Module, fresh: nn.Module, x: np.ndarray) -> None:
    from safetensors.torch import load_file

    fresh.load_state_dict(load_file(str(path)))
    module.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(torch.from_numpy(x)), module(torch.from_numpy(x)))


# -- Listing 3 --------------------------------------------------------------------------------------


def test_listing3_verbatim_records_the_run(tmp_path: Path, digits: dict[str, np.ndarray]) -> None:
    exp = experiment(tmp_path)
    torch.manual_seed(0)
    my_nn_module = SmallCNN()
    train_loader = loader(digits["x"], digits["y"])
    epochs = 2
    optimizer = torch.optim.Adam(my_nn_module.parameters(), lr=1e-3, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()

    model = Model(my_nn_module)
    history = model.fit(
        train_loader, epochs, optimizer, criterion, callbacks=[PytorchCallbacks(exp)]
    )

    meta = sealed(exp)
    assert meta["status"] == "completed"
    assert meta["framework"]["name"] == "pytorch"
    assert meta["framework"]["version"] == torch.__version__
    hyper = meta["hyperparameters"]
    assert hyper["optimizer"]["name"] == "Adam"
    assert hyper["optimizer"]["config"]["lr"] == 1e-3
    assert hyper["optimizer"]["config"]["betas"] == [0.9, 0.999]
    assert hyper["optimizer"]["config"]["weight_decay"] == 1e-4
    assert "params" not in hyper["optimizer"]["config"]
    assert hyper["learning_rate"] == 1e-3
    assert hyper["loss"] == "CrossEntropyLoss"
    assert hyper["loss_config"]["reduction"] == "mean"
    assert hyper["epochs"] == 2
    assert hyper["batch_size"] == BATCH
    assert hyper["steps_per_epoch"] == math.ceil(N_TRAIN / BATCH)

    arch = meta["architecture"]
    layers = {layer["name"]: layer for layer in arch["layers"]}
    assert list(layers) == [
        "features.0",
        "features.1",
        "features.2",
        "features.3",
        "head.0",
        "head.1",
    ]
    assert [layer["type"] for layer in arch["layers"]] == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Flatten",
        "Linear",
    ]
    assert layers["features.0"]["config"]["in_channels"] == 1
    assert layers["features.0"]["config"]["out_channels"] == 8
    assert layers["features.0"]["config"]["kernel_size"] == [3, 3]
    assert layers["head.1"]["config"] == {"in_features": 128, "out_features": 10, "bias": True}
    assert layers["features.0"]["output_shape"] == [None, 8, 8, 8]
    assert layers["features.3"]["output_shape"] == [None, 8, 4, 4]
    assert layers["head.1"]["output_shape"] == [None, 10]
    assert layers["head.1"]["params"] == 128 * 10 + 10
    assert arch["parameter_count"] == sum(p.numel() for p in my_nn_module.parameters())
    assert arch["trainable_parameter_count"] == arch["parameter_count"]
    assert arch["inputs"] == [{"name": "input", "shape": [None, 1, 8, 8], "dtype": "float32"}]
    assert arch["outputs"] == [{"name": "output", "shape": [None, 10], "dtype": "float32"}]
    assert arch["module"]["class"] == "SmallCNN"
    assert arch["module"]["module"] == SmallCNN.__module__
    assert arch["module"]["init_args"] == {"channels": 8, "classes": 10}

    assert len(meta["metrics"]["history"]) == 2
    assert set(history.history) == {"loss", "accuracy"}
    assert all("val" not in entry for entry in meta["metrics"]["history"])
    assert_history_matches(exp, meta, history)
    assert meta["metrics"]["final"]["accuracy"] == history.history["accuracy"][-1]
    assert meta["metrics"]["history"][0]["lr"] == 1e-3

    dataset = meta["dataset"]
    assert dataset["samples"]["train"] == N_TRAIN
    assert dataset["kind"] == "image"
    assert dataset["shapes"]["x"] == [None, 1, 8, 8]
    assert dataset["classes"] == list(range(10))

    assert my_nn_module.training  # the wrapper restores train/eval modes after fit and export
    assert_weights_reload(exp.path / "model.safetensors", my_nn_module, SmallCNN(), digits["xv"])
    assert_onnx_matches(exp.path / "model.onnx", my_nn_module, digits["xv"])
    assert meta["onnx"]["path"] == "model.onnx"
    assert meta["onnx"]["max_abs_diff"] < 1e-4
    assert meta["onnx"]["batch_dynamic"] is True
    assert meta["onnx"]["checked_on"] == CHECKED_ON  # the same report as Keras writes
    assert meta["onnx"]["checked_samples"] == 8
    kinds = {a["path"]: a["kind"] for a in meta["artifacts"]}
    assert kinds["model.onnx"] == "onnx"
    assert kinds["model.safetensors"] == "weights"
    assert not [w for w in meta["warnings"] if w["source"] in ("onnx", "torch")]


# -- other call forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("validation", ["arrays", "loader"])
def test_fit_arrays_with_validation(
    tmp_path: Path, digits: dict[str, np.ndarray], validation: str
) -> None:
    exp = experiment(tmp_path)
    torch.manual_seed(0)
    module = mlp()
    x, xv = digits["x"].reshape(-1, 64), digits["xv"].reshape(-1, 64)
    val = (xv, digits["yv"]) if validation == "arrays" else loader(xv, digits["yv"], shuffle=False)
    model = Model(module)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    history = model.fit(
        x,
        digits["y"],
        validation_data=val,
        batch_size=16,
        epochs=2,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        callbacks=[PytorchCallbacks(exp)],
        verbose=0,
    )

    meta = sealed(exp)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert_history_matches(exp, meta, history)
    assert meta["metrics"]["final"]["val_accuracy"] == history.history["val_accuracy"][-1]
    hyper = meta["hyperparameters"]
    assert hyper["optimizer"]["name"] == "SGD"
    assert hyper["optimizer"]["config"]["momentum"] == 0.9
    assert hyper["batch_size"] == 16
    assert hyper["steps_per_epoch"] == N_TRAIN // 16
    assert meta["dataset"]["samples"] == {"train": N_TRAIN, "val": N_VAL}
    assert meta["dataset"]["kind"] == "tabular"
    assert meta["architecture"]["inputs"][0]["shape"] == [None, 64]
    assert [layer["name"] for layer in meta["architecture"]["layers"]] == ["0", "1", "2", "3"]
    assert meta["architecture"]["layers"][3]["output_shape"] == [None, 10]
    assert_onnx_matches(exp.path / "model.onnx", module, xv)

    scores = model.evaluate(xv, digits["yv"])
    assert scores["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert scores["accuracy"] == pytest.approx(history.history["val_accuracy"][-1])
    predicted = model.predict(xv)
    assert isinstance(predicted, np.ndarray) and predicted.shape == (N_VAL, 10)


def test_fit_generator(tmp_path: Path, digits: dict[str, np.ndarray]) -> None:
    exp = experiment(tmp_path)

    def batches() -> Any:
        while True:
            for start in range(0, N_TRAIN, BATCH):
                yield digits["x"][start : start + BATCH], digits["y"][start : start + BATCH]

    torch.manual_seed(0)
    module = SmallCNN()
    model = Model(module)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    history = model.fit_generator(
        batches(),
        5,
        2,
        optimizer,
        nn.CrossEntropyLoss(),
        validation_data=(digits["xv"], digits["yv"]),
        callbacks=[PytorchCallbacks(exp)],
        verbose=0,
    )

    meta = sealed(exp)
    assert meta["status"] == "completed"
    assert meta["hyperparameters"]["steps_per_epoch"] == 5
    assert meta["hyperparameters"]["epochs"] == 2
    assert len(history.epoch) == 2
    assert_history_matches(exp, meta, history)
    assert meta["architecture"]["inputs"][0]["shape"] == [None, 1, 8, 8]
    assert (exp.path / "model.onnx").is_file()
    # the first rows of the first batch, as the check fed them, are the run's example inputs
    examples = read_examples(exp.path)
    assert [e["label"] for e in examples] == digits["y"][:MAX_EXAMPLES].tolist()
    rows = np.asarray([e["inputs"]["input"] for e in examples], dtype=np.float32)
    assert np.array_equal(rows, digits["x"][:MAX_EXAMPLES])
    assert {a["path"]: a["kind"] for a in meta["artifacts"]}["examples.json"] == "examples"


def test_torch_recorder_manual_loop(tmp_path: Path, digits: dict[str, np.ndarray]) -> None:
    exp = experiment(tmp_path)
    torch.manual_seed(0)
    module = SmallCNN()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.05)
    criterion = nn.CrossEntropyLoss()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    x = torch.from_numpy(digits["x"])
    logged = []
    with TorchRecorder(
        exp, module, optimizer, criterion, sample_inputs=x[:8], epochs=2, batch_size=BATCH
    ) as rec:
        for epoch in range(2):
            module.train()
            total = 0.0
            for xb, yb in loader(digits["x"], digits["y"]):
                optimizer.zero_grad()
                loss = criterion(module(xb), yb)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(xb)
            scheduler.step()
            logged.append(total / N_TRAIN)
            rec.log_epoch(epoch, train={"loss": logged[-1]})

    meta = sealed(exp)
    assert meta["status"] == "completed"
    hyper = meta["hyperparameters"]
    assert hyper["optimizer"]["name"] == "SGD"
    assert hyper["learning_rate"] == 0.05
    assert (hyper["epochs"], hyper["batch_size"], hyper["loss"]) == (2, BATCH, "CrossEntropyLoss")
    assert [e["train"]["loss"] for e in meta["metrics"]["history"]] == logged
    assert [e["lr"] for e in meta["metrics"]["history"]] == [
        0.025,
        0.0125,
    ]  # read after each scheduler step
    layers = {layer["name"]: layer for layer in meta["architecture"]["layers"]}
    assert layers["head.1"]["output_shape"] == [
        None,
        10,
    ]  # seen by the hooks on the user's own forward
    assert meta["architecture"]["inputs"][0]["shape"] == [None, 1, 8, 8]
    assert (
        not module._forward_hooks and not module.head[1]._forward_hooks
    )  # the probe removed itself
    assert_weights_reload(exp.path / "model.safetensors", module, SmallCNN(), digits["xv"])
    assert_onnx_matches(exp.path / "model.onnx", module, digits["xv"])


def test_torch_recorder_finish_without_context(
    tmp_path: Path, digits: dict[str, np.ndarray]
) -> None:
    exp = experiment(tmp_path)
    module = mlp()
    rec = TorchRecorder(
        exp,
        module,
        torch.optim.Adam(module.parameters()),
        nn.CrossEntropyLoss(),
        data=(digits["x"], digits["y"]),
        export_onnx=False,
    )
    module(torch.from_numpy(digits["x"][:4]))
    rec.log_epoch(0, train={"loss": 1.0}, val={"loss": 2.0})
    meta = rec.finish()
    assert meta is not None and meta["status"] == "completed"
    assert sealed(exp)["dataset"]["samples"]["train"] == N_TRAIN
    assert (exp.path / "model.safetensors").is_file() and not (exp.path / "model.onnx").exists()


# -- the wrapper leaves the module alone --------------------------------------------------------------


def test_model_wrapper_is_transparent(digits: dict[str, np.ndarray]) -> None:
    torch.manual_seed(0)
    module = SmallCNN().eval()
    model = Model(module)
    x = torch.from_numpy(digits["x"][:5])
    assert torch.equal(model(x), module(x))
    assert list(model.state_dict()) == list(module.state_dict())
    assert not isinstance(model, nn.Module)
    assert model.module is module
    assert model.to("cpu") is model and model.eval() is model
    assert list(model.parameters()) == list(module.parameters())


def train_weights(digits: dict[str, np.ndarray], callbacks: list[Any]) -> dict[str, Any]:
    torch.manual_seed(0)
    module = SmallCNN()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    Model(module).fit(
        loader(digits["x"], digits["y"]),
        2,
        optimizer,
        nn.CrossEntropyLoss(),
        validation_data=(digits["xv"], digits["yv"]),
        callbacks=callbacks,
        verbose=0,
    )
    return module.state_dict()


def test_callback_does_not_change_training(tmp_path: Path, digits: dict[str, np.ndarray]) -> None:
    exp = experiment(tmp_path)
    with_callback = train_weights(digits, [PytorchCallbacks(exp)])
    without = train_weights(digits, [])
    assert sealed(exp)["status"] == "completed"
    assert list(with_callback) == list(without)
    for key in without:
        assert torch.equal(with_callback[key], without[key]), key


def test_progress_bar_and_plain_fallback(
    tmp_path: Path, digits: dict[str, np.ndarray], capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = mlp()
    model = Model(module)
    x = digits["x"][:64].reshape(-1, 64)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    model.fit(x, digits["y"][:64], epochs=1, optimizer=optimizer, criterion=nn.CrossEntropyLoss())
    assert "Epoch 1/1" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "rich.progress", None)  # as if rich were absent
    model.fit(x, digits["y"][:64], epochs=1, optimizer=optimizer, criterion=nn.CrossEntropyLoss())
    assert "Epoch 1/1" in capsys.readouterr().err
    model.fit(
        x,
        digits["y"][:64],
        epochs=1,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        verbose=0,
    )
    assert capsys.readouterr().err == ""


# -- fault injection ---------------------------------------------------------------------------------


def test_onnx_export_failure_is_a_warning(tmp_path: Path, digits: dict[str, np.ndarray]) -> None:
    exp = experiment(tmp_path)
    exp.artifact_path("model.onnx").mkdir()  # a real fault: the export cannot land at its path
    module = mlp()
    history = Model(module).fit(
        digits["x"],
        digits["y"],
        epochs=1,
        optimizer=torch.optim.Adam(module.parameters()),
        criterion=nn.CrossEntropyLoss(),
        callbacks=[PytorchCallbacks(exp)],
        verbose=0,
    )
    meta = sealed(exp)
    assert meta["status"] == "completed"
    assert len(history.epoch) == 1
    assert any(w["source"] == "onnx" for w in meta["warnings"]), meta["warnings"]
    assert not (exp.path / "model.onnx").is_file() and "onnx" not in meta
    assert (exp.path / "model.safetensors").is_file()


def test_dynamo_failure_falls_back_to_the_legacy_exporter(
    tmp_path: Path, digits: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_export = torch.onnx.export

    def dynamo_fails(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("dynamo", True):
            raise RuntimeError("dynamo says no")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", dynamo_fails)
    exp = experiment(tmp_path)
    module = SmallCNN()
    Model(module).fit(
        loader(digits["x"], digits["y"]),
        1,
        torch.optim.Adam(module.parameters()),
        nn.CrossEntropyLoss(),
        callbacks=[PytorchCallbacks(exp)],
        verbose=0,
    )
    meta = sealed(exp)
    assert meta["onnx"]["exporter"] == "legacy"
    assert any("dynamo says no" in w["message"] for w in meta["warnings"])
    assert_onnx_matches(exp.path / "model.onnx", module, digits["xv"])


def test_unwritable_store_never_stops_training(
    tmp_path: Path, digits: dict[str, np.ndarray]
) -> None:
    (tmp_path / "afile").write_text("a regular file where the store's parent folder should be")
    exp = experiment(tmp_path, store=tmp_path / "afile" / "store")
    module = SmallCNN()
    history = Model(module).fit(
        loader(digits["x"], digits["y"]),
        2,
        torch.optim.Adam(module.parameters()),
        nn.CrossEntropyLoss(),
        callbacks=[PytorchCallbacks(exp)],
        verbose=0,
    )
    assert len(history.epoch) == 2
    assert exp.metadata["status"] == "completed"
    assert exp.metadata["warnings"]  # the problems were recorded in memory
    assert module.training


class FailingLoss(nn.CrossEntropyLoss):
    """Raises on the first batch of the second epoch."""

    def __init__(self, steps_per_epoch: int) -> None:
        super().__init__()
        self.calls, self.limit = 0, steps_per_epoch
        self.raised: BaseException | None = None

    def forward(self, input: Any, target: Any) -> Any:
        self.calls += 1
        if self.calls > self.limit:
            self.raised = ValueError("loss went sideways at epoch 2")
            raise self.raised
        return super().forward(input, target)


def test_training_error_marks_the_bundle_failed_and_reraises(
    tmp_path: Path, digits: dict[str, np.ndarray]
) -> None:
    exp = experiment(tmp_path)
    module = SmallCNN()
    train_loader = loader(digits["x"], digits["y"])
    criterion = FailingLoss(len(train_loader))
    with pytest.raises(ValueError, match="sideways") as caught:
        Model(module).fit(
            train_loader,
            3,
            torch.optim.Adam(module.parameters()),
            criterion,
            callbacks=[PytorchCallbacks(exp)],
            verbose=0,
        )
    assert caught.value is criterion.raised
    meta = sealed(exp)
    assert meta["status"] == "failed"
    assert "loss went sideways at epoch 2" in meta["error"]
    assert len(meta["metrics"]["history"]) == 1  # the finished epoch is kept
    assert module.training


def test_recorder_context_marks_failed(tmp_path: Path) -> None:
    exp = experiment(tmp_path)
    module = mlp()
    error = RuntimeError("user loop broke")
    with pytest.raises(RuntimeError) as caught, TorchRecorder(exp, module, export_onnx=False):
        raise error
    assert caught.value is error
    assert sealed(exp)["status"] == "failed"


# -- data descriptions and the extra ---------------------------------------------------------------


class Normalize:
    """A torchvision-style transform (same repr shape)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean, self.std = mean, std

    def __call__(self, x: Any) -> Any:
        return (x - self.mean[0]) / self.std[0]

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Compose:
    def __init__(self, transforms: list[Any]) -> None:
        self.transforms = transforms

    def __call__(self, x: Any) -> Any:
        for transform in self.transforms:
            x = transform(x)
        return x

    def __repr__(self) -> str:
        return "Compose(\n" + "".join(f"    {t!r}\n" for t in self.transforms) + ")"


class DigitsDataset(torch.utils.data.Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray, transform: Any) -> None:
        self.x, self.y, self.transform = torch.from_numpy(x), torch.from_numpy(y), transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.transform(self.x[index]), self.y[index]


def test_dataloader_dataset_and_transforms_are_described(
    tmp_path: Path, digits: dict[str, np.ndarray]
) -> None:
    exp = experiment(tmp_path)
    data = DigitsDataset(digits["x"], digits["y"], Compose([Normalize((0.5,), (0.25,))]))
    module = SmallCNN()
    Model(module).fit(
        DataLoader(data, batch_size=BATCH, shuffle=True),
        1,
        torch.optim.Adam(module.parameters()),
        nn.CrossEntropyLoss(),
        callbacks=[PytorchCallbacks(exp, dataset={"name": "sklearn digits"})],
        verbose=0,
    )
    dataset = sealed(exp)["dataset"]
    assert dataset["name"] == "sklearn digits"
    assert dataset["samples"]["train"] == N_TRAIN
    assert dataset["shapes"]["x"] == [None, 1, 8, 8]
    assert dataset["kind"] == "image"
    assert {"op": "Normalize", "source": "transforms", "mean": [0.5], "std": [0.25]} in dataset[
        "preprocessing"
    ]
    assert "Normalize" in dataset["transforms"]
    assert dataset["loading"][0]["dataset"] == "DigitsDataset"


def test_missing_torch_fails_at_construction_with_the_pip_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from modelkb.torch import PytorchCallbacks\n"  # importing the module itself works
        "from modelkb.errors import MissingExtraError\n"
        "try:\n    PytorchCallbacks(object())\nexcept MissingExtraError as err:\n    print(err.hint)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "pip install 'modelkb[torch]'"
