"""A small Keras run that exits right after ``fit``. ``--custom-layer`` adds a layer class of the
script's own, which ``model.keras`` cannot rebuild without the script: sealed in the process.

Writes ``{"id", "training_pid", "sealer_pid", "exporter_loaded"}``.
"""

import json
import os
import sys

import keras
from sklearn.datasets import load_digits

from modelkb import Experiment
from modelkb.keras import KerasCallback


class Doubled(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 2.0


digits = load_digits()
x, y = (digits.data / 16.0).astype("float32"), digits.target
keras.utils.set_random_seed(0)
layers = [keras.Input((64,)), keras.layers.Dense(16, activation="relu")]
if "--custom-layer" in sys.argv:
    layers.append(Doubled())
model = keras.Sequential([*layers, keras.layers.Dense(10, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
exp = Experiment("Keras sealing", "u", seed=0, store=sys.argv[1])
model.fit(x[:512], y[:512], epochs=2, batch_size=64, verbose=0, callbacks=[KerasCallback(exp)])
loaded = [m for m in ("tf2onnx", "onnxruntime") if m in sys.modules]
json.dump(
    {
        "id": exp.id,
        "training_pid": os.getpid(),
        "sealer_pid": exp.sealer_pid,
        "exporter_loaded": loaded,
    },
    open(sys.argv[2], "w"),
)
