"""A PyTorch Dataset that shrinks 28x28 scans to 8x8 in ``__getitem__`` by its own helper (a step no
library call names), trained through ModelKB's ``fit``. With ``--recorded`` the program records
what the helper does, as ``modelkb package`` asks, and shrinks the way the handler replays it."""

import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, Dataset

from modelkb import Experiment
from modelkb.torch import Model, PytorchCallbacks

RECORDED = "--recorded" in sys.argv
digits = load_digits()
scans = np.kron(digits.images, np.ones((1, 4, 4)))[:, 2:30, 2:30].astype("float32")  # 28x28


def shrink(image):
    small = F.interpolate(
        torch.from_numpy(image)[None, None], size=(8, 8), mode="bilinear", antialias=RECORDED
    )
    return small[0] / 16.0


class Scans(Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return shrink(self.images[index]), int(self.labels[index])


torch.manual_seed(0)
net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
exp = Experiment("Scans", "u", seed=0, store=sys.argv[1])
if RECORDED:
    exp.set_dataset(
        preprocessing=[
            {"op": "resize", "height": 8, "width": 8, "interpolation": "bilinear"},
            {"op": "scale", "factor": 1 / 16},
            {"op": "expand_dims", "axis": 1},
        ]
    )
loader = DataLoader(Scans(scans[:1000], digits.target[:1000]), batch_size=64, shuffle=True)
Model(net).fit(
    loader,
    3,
    torch.optim.Adam(net.parameters(), 1e-2),
    nn.CrossEntropyLoss(),
    callbacks=[PytorchCallbacks(exp)],
)
net.eval()
with torch.no_grad():
    held_out = torch.stack([shrink(image) for image in scans[1000:1010]])
    reference = torch.softmax(net(held_out), dim=1).numpy()
json.dump(
    {"id": exp.id, "raw": scans[1000:1010].tolist(), "reference": reference.tolist()},
    open(sys.argv[2], "w"),
)
