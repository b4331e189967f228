"""A hand-written PyTorch training loop (pytorch/examples shape) on the wine data, with the manual API."""

import json
import sys

import numpy as np
import torch
from sklearn.datasets import load_wine
from torch import nn

from modelkb import Experiment

data = load_wine()
mean, std = data.data[:140].mean(axis=0), data.data[:140].std(axis=0)
x = ((data.data - mean) / std).astype("float32")
y = data.target
order = np.random.default_rng(0).permutation(len(x))
x, y, raw = x[order], y[order], data.data[order]
torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, 16)
        self.fc2 = nn.Linear(16, classes)

    def forward(self, inputs):
        return self.fc2(torch.relu(self.fc1(inputs)))


with Experiment("Wine loop", "u", seed=0, store=sys.argv[1]) as exp:
    exp.set_dataset(
        kind="tabular",
        features=list(data.feature_names),
        classes=[str(c) for c in data.target_names],
        preprocessing=[{"op": "normalize", "mean": mean.tolist(), "std": std.tolist()}],
    )
    model = Net(13, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x[:140]), torch.from_numpy(y[:140])
    for epoch in range(5):
        model.train()
        for start in range(0, 140, 32):
            optimizer.zero_grad()
            loss = criterion(model(xt[start : start + 32]), yt[start : start + 32])
            loss.backward()
            optimizer.step()
        exp.log_metrics({"loss": float(loss)}, epoch=epoch)
    exp.log_model(model, xt[:8], optimizer=optimizer, criterion=criterion)
    model.eval()
    with torch.no_grad():
        reference = torch.softmax(model(torch.from_numpy(x[140:156])), dim=1).numpy()
json.dump(
    {"id": exp.id, "raw": raw[140:156].tolist(), "reference": reference.tolist()},
    open(sys.argv[2], "w"),
)
