"""The keras-io "simple MNIST convnet", trained for a few seconds on scikit-learn's digits scaled to
28x28 (offline). ``--tracker`` picks what records it (``none``, ``modelkb``: the two added lines, or
a peer: see ``trackers.py``).

Usage: python keras_mnist.py --tracker NAME --store DIR [--epochs N]
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from sklearn.datasets import load_digits

parser = argparse.ArgumentParser()
parser.add_argument("--tracker", default="none")
parser.add_argument("--store", default="bench-store")
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()

digits = load_digits()
x = (np.kron(digits.images, np.ones((1, 4, 4)))[:, 2:30, 2:30] / 16.0).astype("float32")[..., None]
y = keras.utils.to_categorical(digits.target, 10)
model = keras.Sequential(
    [
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
from trackers import keras_callbacks  # noqa: E402

callbacks = keras_callbacks(args.tracker, Path(args.store))
model.fit(
    x, y, batch_size=128, epochs=args.epochs, validation_split=0.1, verbose=0, callbacks=callbacks
)
