"""keras.io "text classification from scratch", its end-to-end form: TextVectorization inside the model,
trained on raw strings."""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

from modelkb import Experiment
from modelkb.keras import KerasCallback

GOOD = ["great", "loved", "wonderful", "fun", "brilliant", "superb"]
BAD = ["awful", "boring", "hated", "dull", "terrible", "worst"]
FILLER = ["the", "movie", "was", "and", "it", "plot", "acting", "really", "film", "i"]
rng = np.random.default_rng(0)


def review(label: int) -> str:
    words = list(rng.choice(FILLER, size=int(rng.integers(4, 12))))
    for _ in range(int(rng.integers(1, 3))):
        words.insert(
            int(rng.integers(0, len(words))),
            str(rng.choice(GOOD if label else BAD)).capitalize() + "!",
        )
    return " ".join(words).replace(" it ", " it's ")


labels = rng.integers(0, 2, size=400)
texts = np.array([review(int(y)) for y in labels])
MAX_TOKENS, MAXLEN = 40, 16
vectorize_layer = keras.layers.TextVectorization(
    max_tokens=MAX_TOKENS, output_mode="int", output_sequence_length=MAXLEN
)
vectorize_layer.adapt(texts[:320])


train_ds = tf.data.Dataset.from_tensor_slices((texts[:320], labels[:320])).batch(32)
keras.utils.set_random_seed(0)
text_input = keras.Input(shape=(1,), dtype="string", name="text")
x = vectorize_layer(text_input)
x = keras.layers.Embedding(MAX_TOKENS, 8)(x)
x = keras.layers.GlobalAveragePooling1D()(x)
output = keras.layers.Dense(1, activation="sigmoid", name="predictions")(x)
model = keras.Model(text_input, output)
model.compile(
    optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy", metrics=["accuracy"]
)
exp = Experiment("Reviews end to end", "u", seed=0, store=sys.argv[1])
model.fit(train_ds, epochs=3, verbose=0, callbacks=[KerasCallback(exp)])
raw = [str(t) for t in texts[320:336]] + [
    "It's GREAT, really... loved it!!",
    "Worst film; dull & boring",
]
reference = model.predict(tf.constant([[text] for text in raw]), verbose=0)
json.dump({"id": exp.id, "raw": raw, "reference": reference.tolist()}, open(sys.argv[2], "w"))
