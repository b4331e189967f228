"""A small PyTorch run through ModelKB's ``fit``, as a script that exits right after it (the
default), or as a long-lived process such as a notebook (``--twice``: two fits, then waiting for
the sealed bundles). ``--kill-sealer`` kills the background sealer as soon as ``fit`` returns;
``--failing-export`` trains a model neither ONNX exporter can convert (``svdvals``).

Writes ``{"ids", "training_pid", "sealer_pids", "exporter_loaded", "sealed"}``.
"""

import json
import os
import signal
import sys

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from modelkb import Experiment
from modelkb.torch import Model, PytorchCallbacks


class Spectrum(nn.Module):
    """Classifies from the singular values of 2x2 blocks: no ONNX exporter converts svdvals."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 64)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return self.out(
            torch.linalg.svdvals(self.fc(x.flatten(1)).reshape(-1, 16, 2, 2)).flatten(1)
        )


digits = load_digits()
x = torch.from_numpy((digits.images / 16.0).astype("float32")).unsqueeze(1)
y = torch.from_numpy(digits.target)
loader = DataLoader(TensorDataset(x[:512], y[:512]), batch_size=64, shuffle=True)
written = {"ids": [], "training_pid": os.getpid(), "sealer_pids": [], "exporter_loaded": []}
experiments = []
for _ in range(2 if "--twice" in sys.argv else 1):
    torch.manual_seed(0)
    if "--failing-export" in sys.argv:
        net = Spectrum()
    else:
        net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 10)
        )
    exp = Experiment("Sealing", "u", seed=0, store=sys.argv[1])
    Model(net).fit(
        loader,
        2,
        torch.optim.Adam(net.parameters(), 1e-2),
        nn.CrossEntropyLoss(),
        callbacks=[PytorchCallbacks(exp)],
        verbose=0,
    )
    if "--kill-sealer" in sys.argv:
        os.kill(exp.sealer_pid, signal.SIGKILL)
    written["ids"].append(exp.id)
    written["sealer_pids"].append(exp.sealer_pid)
    written["exporter_loaded"].append("onnxscript" in sys.modules or "onnxruntime" in sys.modules)
    experiments.append(exp)
if "--twice" in sys.argv:
    written["sealed"] = [bool(exp.wait_sealed().get("onnx")) for exp in experiments]
json.dump(written, open(sys.argv[2], "w"))
