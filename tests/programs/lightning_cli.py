"""A LightningModule and LightningDataModule run by LightningCLI (the Lightning docs' shape), digits data."""

import json
import sys

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LightningCLI
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from modelkb import Experiment
from modelkb.lightning import LightningCallback

STORE, OUT = sys.argv[1], sys.argv[2]
digits = load_digits()
RAW = digits.data.astype("float32")  # pixel values 0..16, as a client would send them


class DigitsData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 32) -> None:
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage: str) -> None:
        x = torch.from_numpy(RAW / 16.0)
        y = torch.from_numpy(digits.target)
        self.train_set, self.valid_set = (
            TensorDataset(x[:1200], y[:1200]),
            TensorDataset(x[1200:1500], y[1200:1500]),
        )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.valid_set, batch_size=self.batch_size)


class DigitsClassifier(pl.LightningModule):
    def __init__(self, hidden: int = 32, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("valid_loss", nn.functional.cross_entropy(self(x), y), on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


exp = Experiment("Digits Lightning", "u", seed=0, store=STORE)
exp.set_dataset(kind="tabular", classes=[str(c) for c in range(10)])
sys.argv = [
    sys.argv[0],
    "fit",
    "--trainer.max_epochs=2",
    "--trainer.logger=false",
    "--trainer.enable_checkpointing=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.accelerator=cpu",
]
cli = LightningCLI(
    DigitsClassifier,
    DigitsData,
    seed_everything_default=0,
    trainer_defaults={"callbacks": [LightningCallback(exp)]},
    save_config_kwargs={"overwrite": True},
)
cli.model.eval()
with torch.no_grad():
    reference = torch.softmax(cli.model(torch.from_numpy(RAW[1500:1516] / 16.0)), dim=1).numpy()
json.dump(
    {"id": exp.id, "raw": RAW[1500:1516].tolist(), "reference": reference.tolist()}, open(OUT, "w")
)
