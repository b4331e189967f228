"""Train a small PyTorch CNN on scikit-learn's 8x8 handwritten digits, recorded by ModelKB.

Usage: python train_torch_digits.py [--store DIR] [--epochs N] [--lr X] [--seed N]
"""

from __future__ import annotations

import argparse

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from modelkb import Experiment
from modelkb.torch import Model, PytorchCallbacks

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--store", default=None)
parser.add_argument("--epochs", type=int, default=8)
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--seed", type=int, default=42)
args = parser.parse_args()


class DigitsCNN(nn.Module):
    """Two convolutions and a classifier for 1x8x8 images."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


digits = load_digits()
x = digits.images.astype("float32") / 16.0
x = x.reshape(-1, 1, 8, 8)
y = digits.target
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)

exp = Experiment(
    "Digits",
    "demo",
    seed=args.seed,
    store=args.store,
    notes="PyTorch CNN on scikit-learn's 8x8 handwritten digits",
    tags=["demo", "cnn", "pytorch"],
)
train_loader = DataLoader(
    TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train)), batch_size=32, shuffle=True
)
val_loader = DataLoader(
    TensorDataset(torch.from_numpy(x_test), torch.from_numpy(y_test)), batch_size=64
)

model = Model(DigitsCNN())
optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
criterion = nn.CrossEntropyLoss()
model.fit(
    train_loader,
    args.epochs,
    optimizer,
    criterion,
    validation_data=val_loader,
    callbacks=[PytorchCallbacks(exp)],
)
print(f"recorded {exp.id} in {exp.path}")
