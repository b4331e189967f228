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
json.dump({"id": exp.id}, open(sys.argv[2], "w"))
