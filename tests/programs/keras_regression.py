"""keras.io / TF tutorial style regression: a Normalization layer adapted on the features, then an MLP."""

import json
import sys

import keras
from sklearn.datasets import load_diabetes

from modelkb import Experiment
from modelkb.keras import KerasCallback

data = load_diabetes()
x = data.data.astype("float32")
y = data.target.astype("float32")
x_train, y_train, x_test = x[:380], y[:380], x[380:396]
keras.utils.set_random_seed(0)
normalizer = keras.layers.Normalization(axis=-1)
normalizer.adapt(x_train)
model = keras.Sequential(
    [
        keras.Input(shape=(10,)),
        normalizer,
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1),
    ]
)
model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mean_absolute_error")
exp = Experiment("Diabetes regression", "u", seed=0, store=sys.argv[1])
exp.set_dataset(features=list(data.feature_names))
model.fit(
    x_train,
    y_train,
    epochs=5,
    batch_size=32,
    validation_split=0.2,
    verbose=0,
    callbacks=[KerasCallback(exp)],
)
reference = model.predict(x_test, verbose=0)
json.dump(
    {"id": exp.id, "raw": x_test.tolist(), "reference": reference.tolist()}, open(sys.argv[2], "w")
)
