"""TensorBoard logs as users write them: Keras' TensorBoard callback and torch's SummaryWriter."""

import sys
from pathlib import Path

import keras
import numpy as np
import torch
from sklearn.datasets import load_iris
from torch.utils.tensorboard import SummaryWriter

logdir = Path(sys.argv[1])
points = int(sys.argv[2]) if len(sys.argv) > 2 else 0

iris = load_iris()
x, y = iris.data.astype("float32"), iris.target
keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input(shape=(4,)),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(
    x[:120],
    y[:120],
    validation_data=(x[120:], y[120:]),
    epochs=3,
    verbose=0,
    callbacks=[keras.callbacks.TensorBoard(log_dir=str(logdir / "keras_iris"))],
)

torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
xt, yt = torch.tensor(x), torch.tensor(y)
writer = SummaryWriter(log_dir=str(logdir / "torch_iris"))
for step in range(20):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(xt[:120]), yt[:120])
    loss.backward()
    optimizer.step()
    writer.add_scalar("Loss/train", loss.item(), step)
    if step % 5 == 4:
        with torch.no_grad():
            test_loss = torch.nn.functional.cross_entropy(net(xt[120:]), yt[120:])
        writer.add_scalar("Loss/test", test_loss.item(), step)
writer.add_hparams(
    {"lr": 0.1, "batch_size": 120, "optimizer": "SGD"}, {"hparam/final_loss": loss.item()}
)
writer.close()

if points:
    many = SummaryWriter(log_dir=str(logdir / "long_run"))
    for step in range(points):
        many.add_scalar("loss", float(np.cos(step / 1000.0)), step)
    many.close()
