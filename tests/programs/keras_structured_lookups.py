"""keras.io "structured data" shape: named dict inputs through Normalization, StringLookup and IntegerLookup."""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

from modelkb import Experiment
from modelkb.keras import KerasCallback

rng = np.random.default_rng(0)
n = 200
age = rng.integers(20, 80, n).astype("float32")
thal = rng.choice(["fixed", "normal", "reversible"], n).astype(object)
cp = rng.integers(0, 4, n)
y = ((age > 50) & (thal != "normal")).astype("float32")
inputs = {
    "age": keras.Input(shape=(1,), name="age"),
    "thal": keras.Input(shape=(1,), name="thal", dtype="string"),
    "cp": keras.Input(shape=(1,), name="cp", dtype="int64"),
}
norm = keras.layers.Normalization()
norm.adapt(age.reshape(-1, 1))
sl = keras.layers.StringLookup(output_mode="one_hot")
sl.adapt(thal.astype(str))
il = keras.layers.IntegerLookup(output_mode="one_hot")
il.adapt(cp)
x = keras.layers.concatenate([norm(inputs["age"]), sl(inputs["thal"]), il(inputs["cp"])])
out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(8, activation="relu")(x))
model = keras.Model(inputs, out)
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
exp = Experiment("Heart", "u", seed=0, store=sys.argv[1])
ds = tf.data.Dataset.from_tensor_slices(
    (
        {
            "age": age.reshape(-1, 1),
            "thal": thal.astype(str).reshape(-1, 1),
            "cp": cp.reshape(-1, 1),
        },
        y,
    )
).batch(32)
model.fit(ds, epochs=2, verbose=0, callbacks=[KerasCallback(exp)])
# held-out patients as records, one with a thal value and a cp code never seen in training
raw = [
    {"age": 63.0, "thal": "fixed", "cp": 1},
    {"age": 41.0, "thal": "normal", "cp": 3},
    {"age": 70.0, "thal": "reversible", "cp": 0},
    {"age": 55.0, "thal": "not-recorded", "cp": 7},
]
columns = {
    "age": np.array([[r["age"]] for r in raw], dtype="float32"),
    "thal": np.array([[r["thal"]] for r in raw]),
    "cp": np.array([[r["cp"]] for r in raw], dtype="int64"),
}
reference = model.predict(tf.data.Dataset.from_tensor_slices(columns).batch(8), verbose=0)
json.dump({"id": exp.id, "raw": raw, "reference": reference.tolist()}, open(sys.argv[2], "w"))
