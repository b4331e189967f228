"""Benchmark: what the collector costs a training run (Keras CNN and PyTorch CNN on digits).

For each framework, the same small CNN is trained on scikit-learn's digits with and without the
ModelKB callback, interleaved (A B A B ...) so machine noise hits both alike; medians reported.

- training overhead = the wall time spent inside the callback's hooks during ``fit`` (start of
  training, first batch, every epoch end), as a share of the fit without the callback. ModelKB runs
  no thread during training, so this is all it adds to ``fit``; the difference of the two fit times
  (minus finalize) is printed too, as a cross-check, but on a shared 2-core machine its noise
  (several %) is larger than the effect;
- finalize = the end-of-training work: native weights, ONNX export, onnxruntime parity check, card, seal;
- setup = creating the Experiment and the callback, before ``fit``: the source snapshot, git state,
  host facts and lockfile are read there (not during training), and the source is parsed for
  preprocessing steps.

Usage: python bench/collector_bench.py [--repeats 5] [--epochs 10] [--framework keras|torch|both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from sklearn.datasets import load_digits


def digits(channels_last: bool) -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    x = (
        (data.images.astype("float32") / 16.0).reshape(-1, 8, 8, 1)
        if channels_last
        else (data.images.astype("float32") / 16.0).reshape(-1, 1, 8, 8)
    )
    return x, data.target.astype("int64")


HOOK_TIMES: dict[str, float] = {}
SETUP_TIMES: list[float] = []


def time_hooks(callback, names: tuple[str, ...]) -> None:
    """Wrap the callback's hooks to add up the wall time spent inside each."""
    for name in names:
        original = getattr(callback, name)

        def wrapped(*args, _original=original, _name=name, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                HOOK_TIMES[_name] = HOOK_TIMES.get(_name, 0.0) + time.perf_counter() - start

        setattr(callback, name, wrapped)


def keras_run(with_callback: bool, epochs: int, store: str) -> tuple[float, float]:
    import keras

    from modelkb import Experiment
    from modelkb.keras import KerasCallback

    keras.utils.set_random_seed(0)
    x, y = digits(channels_last=True)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks, finalize = [], [0.0]
    if with_callback:
        setup_start = time.perf_counter()
        callback = KerasCallback(Experiment("Bench", "bench", seed=0, store=store))
        SETUP_TIMES.append(time.perf_counter() - setup_start)
        original = callback.on_train_end

        def timed_end(logs=None):
            start = time.perf_counter()
            original(logs)
            finalize[0] = time.perf_counter() - start

        callback.on_train_end = timed_end
        time_hooks(callback, ("on_train_begin", "on_epoch_end"))
        callbacks.append(callback)
    start = time.perf_counter()
    model.fit(
        x, y, epochs=epochs, batch_size=32, validation_split=0.2, verbose=0, callbacks=callbacks
    )
    return time.perf_counter() - start, finalize[0]


def torch_run(with_callback: bool, epochs: int, store: str) -> tuple[float, float]:
    import torch
    from torch import nn

    from modelkb import Experiment
    from modelkb.torch import Model, PytorchCallbacks

    torch.manual_seed(0)
    x, y = digits(channels_last=False)
    module = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 16, 10),
    )
    model = Model(module)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    callbacks, finalize = [], [0.0]
    if with_callback:
        setup_start = time.perf_counter()
        callback = PytorchCallbacks(Experiment("Bench", "bench", seed=0, store=store))
        SETUP_TIMES.append(time.perf_counter() - setup_start)
        original = callback.on_train_end

        def timed_end(*args, **kwargs):
            start = time.perf_counter()
            original(*args, **kwargs)
            finalize[0] = time.perf_counter() - start

        callback.on_train_end = timed_end
        time_hooks(callback, ("on_train_begin", "on_first_batch", "on_epoch_end"))
        callbacks.append(callback)
    start = time.perf_counter()
    model.fit(
        x[:1400],
        y[:1400],
        epochs=epochs,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        batch_size=32,
        validation_data=(x[1400:], y[1400:]),
        callbacks=callbacks,
        verbose=0,
    )
    return time.perf_counter() - start, finalize[0]


def bench(name: str, run, repeats: int, epochs: int) -> None:
    with tempfile.TemporaryDirectory() as store:
        run(False, 1, store)  # warm-up: imports, graph tracing, exporter
        HOOK_TIMES.clear()
        run(True, 1, store)  # the callback's first run in this process: every first call is cold
        cold = sum(HOOK_TIMES.values())
        SETUP_TIMES.clear()
        base, with_cb, finals, begins, epoch_hooks = [], [], [], [], []
        for _ in range(repeats):
            base.append(run(False, epochs, store)[0])
            HOOK_TIMES.clear()
            total, final = run(True, epochs, store)
            with_cb.append(total)
            finals.append(final)
            begins.append(
                HOOK_TIMES.get("on_train_begin", 0.0) + HOOK_TIMES.get("on_first_batch", 0.0)
            )
            epoch_hooks.append(HOOK_TIMES.get("on_epoch_end", 0.0) / epochs)
    b, w, f = statistics.median(base), statistics.median(with_cb), statistics.median(finals)
    begin, per_epoch = statistics.median(begins), statistics.median(epoch_hooks)
    in_hooks = begin + per_epoch * epochs
    print(
        f"{name}: fit without the callback {b:.3f} s (median of {repeats}, {epochs} epochs, "
        f"min {min(base):.3f}, max {max(base):.3f})"
    )
    print(
        f"  training overhead {in_hooks / b * 100:.2f} % = {in_hooks * 1000:.1f} ms inside the hooks "
        f"(start of training {begin * 1000:.1f} ms once, {per_epoch * 1000:.2f} ms per epoch)"
    )
    print(
        f"  first run in the process (cold caches, one epoch): {cold * 1000:.1f} ms inside the hooks, "
        f"{cold / b * 100:.2f} % of the median fit above"
    )
    print(
        f"  finalize {f:.2f} s (min {min(finals):.2f}, max {max(finals):.2f}); "
        f"setup before fit {statistics.median(SETUP_TIMES) * 1000:.0f} ms"
    )
    print(
        f"  cross-check, wall clock: fit with the callback minus finalize {w - f:.3f} s "
        f"({(w - f - b) / b * 100:+.1f} %; the fits without the callback alone spread over "
        f"{(max(base) - min(base)) / b * 100:.0f} % of their median)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--framework", choices=["keras", "torch", "both"], default="both")
    args = parser.parse_args()
    if args.framework in ("keras", "both"):
        bench("keras", keras_run, args.repeats, args.epochs)
    if args.framework in ("torch", "both"):
        bench("torch", torch_run, args.repeats, args.epochs)


if __name__ == "__main__":
    main()
