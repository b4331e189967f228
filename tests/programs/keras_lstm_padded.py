"""keras-io style: Embedding + LSTM on sequences padded by pad_sequences (defaults: pre)."""

import json
import sys

import keras
import numpy as np

from modelkb import Experiment
from modelkb.keras import KerasCallback

MAXLEN = 20
VOCAB = 50
rng = np.random.default_rng(0)


def make(n):
    seqs, labels = [], []
    for _ in range(n):
        y = int(rng.integers(0, 2))
        length = int(rng.integers(3, 25))
        ids = rng.integers(2, 25, size=length) + (25 if y else 0)
        ids[: length // 2] = rng.integers(2, VOCAB, size=length // 2)
        seqs.append([int(i) for i in ids])
        labels.append(y)
    return seqs, np.array(labels)


train_seqs, y_train = make(300)
test_seqs, _ = make(16)
x_train = keras.utils.pad_sequences(train_seqs, maxlen=MAXLEN)
keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input(shape=(MAXLEN,), dtype="int32"),
        keras.layers.Embedding(VOCAB, 8),
        keras.layers.LSTM(8),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
exp = Experiment("LSTM", "u", seed=0, store=sys.argv[1])
model.fit(x_train, y_train, epochs=2, batch_size=32, verbose=0, callbacks=[KerasCallback(exp)])
reference = model.predict(keras.utils.pad_sequences(test_seqs, maxlen=MAXLEN), verbose=0)
json.dump({"id": exp.id, "raw": test_seqs, "reference": reference.tolist()}, open(sys.argv[2], "w"))
