"""The pytorch/examples MNIST network, trained through ModelKB's ``Model.fit`` for a few seconds on
scikit-learn's digits scaled to 28x28 (offline). ``--tracker`` picks what records it (``none``,
``modelkb``: the two added lines, or a peer: see ``trackers.py``).

Usage: python torch_mnist.py --tracker NAME --store DIR [--epochs N]
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--tracker", default="none")
parser.add_argument("--store", default="bench-store")
parser.add_argument("--epochs", type=int, default=2)
args = parser.parse_args()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


digits = load_digits()
images = np.kron(digits.images, np.ones((1, 4, 4)))[:, 2:30, 2:30] / 16.0
x = torch.from_numpy(images.astype("float32")).unsqueeze(1)
y = torch.from_numpy(digits.target)
loader = DataLoader(TensorDataset(x[:1500], y[:1500]), batch_size=64, shuffle=True)
torch.manual_seed(1)
net = Net()
optimizer = torch.optim.Adadelta(net.parameters(), lr=1.0)
from trackers import torch_tracker  # noqa: E402

callbacks = torch_tracker(
    args.tracker, Path(args.store), net, {"lr": 1.0, "epochs": args.epochs}, x[:2]
)
from modelkb.torch import Model  # noqa: E402  the trainer both variants use

Model(net).fit(loader, args.epochs, optimizer, nn.NLLLoss(), callbacks=callbacks, verbose=0)
