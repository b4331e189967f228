"""Train a small Keras CNN on scikit-learn's 8x8 handwritten digits, recorded by ModelKB.

Usage: python train_keras_digits.py [--store DIR] [--epochs N] [--optimizer adam|sgd] [--seed N]
"""

from __future__ import annotations

import argparse

import keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from modelkb import Experiment
from modelkb.keras import KerasCallback

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--store", default=None)
parser.add_argument("--epochs", type=int, default=8)
parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
parser.add_argument("--seed", type=int, default=42)
args = parser.parse_args()

digits = load_digits()
x = digits.images.astype("float32") / 16.0
x = x.reshape(-1, 8, 8, 1)
y = digits.target
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)

exp = Experiment(
    "Digits",
    "demo",
    seed=args.seed,
    store=args.store,
    notes="Keras CNN on scikit-learn's 8x8 handwritten digits",
    tags=["demo", "cnn", "keras"],
)
model = keras.Sequential(
    [
        keras.Input(shape=(8, 8, 1)),
        keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
optimizer = (
    keras.optimizers.Adam(1e-3)
    if args.optimizer == "adam"
    else keras.optimizers.SGD(0.05, momentum=0.9)
)
model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(
    x_train,
    y_train,
    epochs=args.epochs,
    batch_size=32,
    validation_data=(x_test, y_test),
    callbacks=[KerasCallback(exp)],
    verbose=2,
)
print(f"recorded {exp.id} in {exp.path}")
