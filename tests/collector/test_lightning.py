"""The Lightning collector on a BoringModel-like LightningModule trained on the 8x8 digits."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from collector_checks import assert_onnx_matches, digits_split, sealed

from modelkb.experiment import Experiment
from modelkb.lightning import LightningCallback

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")
pytest.importorskip("sklearn")

nn = torch.nn
DataLoader, TensorDataset = torch.utils.data.DataLoader, torch.utils.data.TensorDataset

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

N_TRAIN, N_VAL, BATCH = 320, 128, 32


@pytest.fixture(scope="module", name="digits")
def digits_fixture() -> dict[str, np.ndarray]:
    return digits_split(flat=True, n_train=N_TRAIN, n_val=N_VAL)  # rows of 64 values


class DigitsModule(pl.LightningModule):
    """BoringModel-sized MLP that logs train/val loss and accuracy per epoch."""

    def __init__(
        self, hidden: int = 32, lr: float = 0.05, fail_at_epoch: int | None = None
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x: Any) -> Any:
        return self.net(x)

    def _step(self, batch: Any, prefix: str) -> Any:
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)
        self.log(f"{prefix}_loss", loss, on_step=False, on_epoch=True)
        self.log(
            f"{prefix}_acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True
        )
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if (
            self.hparams.fail_at_epoch is not None
            and self.current_epoch == self.hparams.fail_at_epoch
        ):
            raise RuntimeError(f"training_step failed at epoch {self.current_epoch}")
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def loaders(digits: dict[str, np.ndarray]) -> tuple[DataLoader, DataLoader]:
    train = TensorDataset(torch.from_numpy(digits["x"]), torch.from_numpy(digits["y"]))
    val = TensorDataset(torch.from_numpy(digits["xv"]), torch.from_numpy(digits["yv"]))
    return DataLoader(train, batch_size=BATCH, shuffle=True), DataLoader(val, batch_size=BATCH)


def trainer(tmp_path: Path, callbacks: list[Any], epochs: int = 2) -> Any:
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        default_root_dir=tmp_path,
        num_sanity_val_steps=2,
    )


def test_lightning_run_is_recorded(tmp_path: Path, digits: dict[str, np.ndarray]) -> None:
    exp = Experiment("Digits", "alice", seed=42, store=tmp_path / "store")
    torch.manual_seed(0)
    module = DigitsModule()
    train_loader, val_loader = loaders(digits)
    run = trainer(tmp_path, [LightningCallback(exp)])
    run.fit(module, train_loader, val_loader)

    meta = sealed(exp)
    assert meta["status"] == "completed"
    assert meta["framework"]["name"] == "pytorch"
    assert meta["framework"]["versions"]["lightning"] == pl.__version__
    hyper = meta["hyperparameters"]
    assert hyper["optimizer"]["name"] == "SGD"
    assert hyper["optimizer"]["config"]["momentum"] == 0.9
    assert hyper["learning_rate"] == 0.05
    assert hyper["loss"] == "CrossEntropyLoss"
    assert hyper["epochs"] == 2
    assert hyper["batch_size"] == BATCH
    assert hyper["steps_per_epoch"] == N_TRAIN // BATCH
    assert hyper["params"]["hidden"] == 32

    arch = meta["architecture"]
    assert [(layer["name"], layer["type"]) for layer in arch["layers"]] == [
        ("net.0", "Linear"),
        ("net.1", "ReLU"),
        ("net.2", "Linear"),
    ]  # the loss module kept as an attribute is not a layer
    assert arch["layers"][2]["output_shape"] == [None, 10]
    assert arch["parameter_count"] == sum(p.numel() for p in module.parameters())
    assert arch["inputs"][0]["shape"] == [None, 64]
    assert arch["module"]["class"] == "DigitsModule"
    assert arch["module"]["init_args"]["hidden"] == 32

    history = meta["metrics"]["history"]
    assert [entry["epoch"] for entry in history] == [0, 1]  # no entry for the sanity check
    assert set(history[-1]["train"]) == {"loss", "acc"}
    assert set(history[-1]["val"]) == {"loss", "acc"}
    final = run.callback_metrics
    assert history[-1]["train"]["loss"] == pytest.approx(float(final["train_loss"]))
    assert history[-1]["val"]["loss"] == pytest.approx(float(final["val_loss"]))
    assert history[0]["train"]["loss"] != history[1]["train"]["loss"]
    assert meta["dataset"]["samples"] == {"train": N_TRAIN, "val": N_VAL}

    from safetensors.torch import load_file

    fresh = DigitsModule()
    fresh.load_state_dict(load_file(str(exp.path / "model.safetensors")))
    x = torch.from_numpy(digits["xv"][:7])
    module.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), module(x))

    assert_onnx_matches(exp.path / "model.onnx", module, digits["xv"])
    assert meta["onnx"]["max_abs_diff"] < 1e-4
    assert not [w for w in meta["warnings"] if w["source"] in ("onnx", "lightning", "torch")], meta[
        "warnings"
    ]


def test_lightning_without_validation_records_train_only(
    tmp_path: Path, digits: dict[str, np.ndarray]
) -> None:
    exp = Experiment("Digits", "alice", seed=42, store=tmp_path / "store")
    train_loader, _ = loaders(digits)
    trainer(tmp_path, [LightningCallback(exp, export_onnx=False)]).fit(DigitsModule(), train_loader)
    meta = sealed(exp)
    assert len(meta["metrics"]["history"]) == 2
    assert all("val" not in entry for entry in meta["metrics"]["history"])
    assert (exp.path / "model.safetensors").is_file() and not (exp.path / "model.onnx").exists()


def test_lightning_exception_marks_failed(tmp_path: Path, digits: dict[str, np.ndarray]) -> None:
    exp = Experiment("Digits", "alice", seed=42, store=tmp_path / "store")
    train_loader, val_loader = loaders(digits)
    with pytest.raises(RuntimeError, match="failed at epoch 1"):
        trainer(tmp_path, [LightningCallback(exp)]).fit(
            DigitsModule(fail_at_epoch=1), train_loader, val_loader
        )
    meta = sealed(exp)
    assert meta["status"] == "failed"
    assert "failed at epoch 1" in meta["error"]
    assert len(meta["metrics"]["history"]) == 1


def test_lightning_same_weights_with_and_without_callback(
    tmp_path: Path, digits: dict[str, np.ndarray]
) -> None:
    exp = Experiment("Digits", "alice", seed=42, store=tmp_path / "store")

    def train(callbacks: list[Any]) -> dict[str, Any]:
        torch.manual_seed(0)
        module = DigitsModule()
        train_loader, val_loader = loaders(digits)
        trainer(tmp_path, callbacks).fit(module, train_loader, val_loader)
        return module.state_dict()

    with_callback, without = train([LightningCallback(exp)]), train([])
    for key in without:
        assert torch.equal(with_callback[key], without[key]), key


def test_only_rank_zero_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as in a `strategy="ddp"` child process, which re-runs the script with its rank set
    monkeypatch.setenv("LOCAL_RANK", "1")
    exp = Experiment("Digits", "alice", seed=42, store=tmp_path / "store")
    callback = LightningCallback(exp)
    other_rank = SimpleNamespace(
        is_global_zero=False, sanity_checking=False, current_epoch=0, callback_metrics={}
    )
    module = DigitsModule()
    callback.on_train_start(other_rank, module)
    callback.on_validation_epoch_end(other_rank, module)
    callback.on_train_epoch_end(other_rank, module)
    callback.on_fit_end(other_rank, module)
    assert not (tmp_path / "store").exists()
    assert exp.metadata["status"] == "running"


def test_lightning_metric_names_are_filed_by_their_split() -> None:
    from modelkb.collector.lightning import split_metrics

    logged = {
        "train_loss_epoch": torch.tensor(0.9),
        "train_loss_step": 1.2,
        "valid_loss": torch.tensor(0.7),
        "validation/acc": 0.8,
        "val_f1": 0.6,
        "test_loss": 0.5,
        "lr": 0.01,
    }
    train, val = split_metrics(logged)
    assert train == {"loss": pytest.approx(0.9), "lr": 0.01}
    assert val == {"loss": pytest.approx(0.7), "acc": 0.8, "f1": 0.6}


class TrainerWithoutMetrics(SimpleNamespace):
    """A rank-zero trainer whose ``callback_metrics`` cannot be read (a broken logger, say)."""

    @property
    def callback_metrics(self) -> Any:
        raise RuntimeError("callback_metrics are unavailable")


def test_lightning_failures_are_bundle_warnings(tmp_path: Path) -> None:
    exp = Experiment("Digits", "alice", seed=42, store=tmp_path / "store")
    callback = LightningCallback(exp, export_onnx=False)
    broken = TrainerWithoutMetrics(is_global_zero=True, sanity_checking=False, current_epoch=0)
    module = DigitsModule()
    callback.on_train_start(broken, module)
    callback.on_validation_epoch_end(broken, module)
    callback.on_train_epoch_end(broken, module)
    callback.on_fit_end(broken, module)

    meta = sealed(exp)
    assert meta["status"] == "completed"  # the run is kept
    messages = [w["message"] for w in meta["warnings"] if w["source"] == "lightning"]
    assert messages == [
        "reading validation metrics failed: RuntimeError: callback_metrics are unavailable",
        "reading epoch metrics failed: RuntimeError: callback_metrics are unavailable",
    ]
