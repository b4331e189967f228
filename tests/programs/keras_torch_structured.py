"""The structured-data recipe on Keras' torch backend: a functional model over a dict of named
inputs (the keys, not ``Input(name=...)``), Normalization adapted per feature, CategoryEncoding for
an integer feature. With ``--lookup`` the integer feature goes through IntegerLookup instead, which
the torch backend cannot trace into ONNX."""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "torch"

import keras
import numpy as np

from modelkb import Experiment
from modelkb.keras import KerasCallback

rng = np.random.default_rng(0)
rows = 240
columns = {
    "age": rng.normal(54, 9, rows).astype("float32"),
    "chol": rng.normal(246, 51, rows).astype("float32"),
    "cp": rng.integers(0, 4, rows).astype("int64"),
}
target = ((columns["age"] - 54) / 9 + (columns["cp"] == 3) > 0.3).astype("float32")
keras.utils.set_random_seed(0)
inputs = {
    "age": keras.Input((1,)),
    "chol": keras.Input((1,)),
    "cp": keras.Input((1,), dtype="int64"),
}
encoded = []
for name in ("age", "chol"):
    norm = keras.layers.Normalization()
    norm.adapt(columns[name][:200, None])
    encoded.append(norm(inputs[name]))
if "--lookup" in sys.argv:
    encoded.append(
        keras.layers.IntegerLookup(vocabulary=[0, 1, 2, 3], output_mode="one_hot")(inputs["cp"])
    )
else:
    encoded.append(keras.layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")(inputs["cp"]))
hidden = keras.layers.Dense(16, activation="relu")(keras.layers.concatenate(encoded))
model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
exp = Experiment("Heart on torch", "u", seed=0, store=sys.argv[1])
train = {name: values[:200, None] for name, values in columns.items()}
model.fit(train, target[:200], epochs=3, batch_size=32, verbose=0, callbacks=[KerasCallback(exp)])
held_out = {name: values[200:212, None] for name, values in columns.items()}
reference = keras.ops.convert_to_numpy(model.predict(held_out, verbose=0))
records = [{name: values[i].item() for name, values in columns.items()} for i in range(200, 212)]
json.dump({"id": exp.id, "raw": records, "reference": reference.tolist()}, open(sys.argv[2], "w"))
