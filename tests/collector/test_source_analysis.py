"""Static analysis of training scripts: loading calls and replayable preprocessing steps."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from modelkb.collector.source_analysis import analyze_training_source
from modelkb.preprocessing import inference_steps

KERAS_DIGITS = """\
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import keras
from keras import layers

PIXEL_MAX = 16.0

digits = load_digits()
x = digits.images.reshape(-1, 8, 8, 1) / PIXEL_MAX
y = keras.utils.to_categorical(digits.target, 10)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
x_train = x_train.astype("float32")
x_test = x_test.astype("float32")

model = keras.Sequential([
    keras.Input(shape=(8, 8, 1)),
    layers.RandomFlip("horizontal"),
    layers.Rescaling(1.0, offset=0.0),
    layers.Conv2D(8, 3, activation="relu"),
    layers.Flatten(),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, epochs=3, batch_size=32, validation_split=0.1)
loss, acc = model.evaluate(x_test, y_test)
best = max(history.history["val_accuracy"]) * 100
print(f"accuracy {acc / 1.0:.3f}, loss {loss * 100:.1f}")
"""

TORCH_MNIST = """\
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
train_set = datasets.MNIST("data", train=True, download=True, transform=transform)
train_loader = DataLoader(train_set, batch_size=64, shuffle=True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        return self.fc(x / 2.0)


model = Net()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01 * 10)
for epoch in range(3):
    running_loss = 0.0
    correct = total = 0
    for inputs, labels in train_loader:
        inputs = inputs.to("cpu")
        loss = criterion(model(inputs), labels) / 4
        loss.backward()
        running_loss += loss.item()
    print(running_loss / len(train_loader), 100.0 * correct / max(total, 1))
"""

KERAS_TEXT = """\
import tensorflow as tf
from tensorflow.keras import layers
from tensorflow.keras.preprocessing.sequence import pad_sequences

raw_train = tf.keras.utils.text_dataset_from_directory("aclImdb/train", batch_size=32)
vectorize = layers.TextVectorization(max_tokens=10000, output_sequence_length=250)
vectorize.adapt(raw_train.map(lambda text, label: text))
tokens = pad_sequences(sequences, maxlen=250, padding="post")
"""

TABULAR = """\
import pandas as pd
from sklearn.preprocessing import StandardScaler

df = pd.read_csv("data/train.csv")
features = df.drop(columns=["label"]).values.astype("float32")
scaler = StandardScaler()
features = scaler.fit_transform(features)
"""


def _analyze(tmp_path: Path, **sources: str) -> dict[str, Any]:
    paths = []
    for name, text in sources.items():
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        paths.append(path)
    return analyze_training_source(paths)


def _ops(steps: list[dict[str, Any]], *drop: str) -> list[dict[str, Any]]:
    """Steps without their location fields, for exact comparisons."""
    gone = {"line", "file", "source", *drop}
    return [{k: v for k, v in step.items() if k not in gone} for step in steps]


def test_keras_digits_script(tmp_path: Path) -> None:
    result = _analyze(tmp_path, train=KERAS_DIGITS)

    assert result["problems"] == []
    assert result["loading"] == [
        {
            "call": "sklearn.datasets.load_digits",
            "args": [],
            "kwargs": {},
            "line": 9,
            "file": "train.py",
        }
    ]
    assert _ops(result["preprocessing"]) == [
        {"op": "reshape", "shape": [-1, 8, 8, 1], "applies_to": ["x"]},
        {"op": "scale", "factor": pytest.approx(1 / 16), "applies_to": ["x"]},
        {"op": "cast", "dtype": "float32", "applies_to": ["x_train", "x_test"]},
        {
            "op": "augment",
            "layer": "RandomFlip",
            "args": ["horizontal"],
            "kwargs": {},
            "train_only": True,
            "in_model": True,
            "pipeline": "model",
        },
        {"op": "rescale", "scale": 1.0, "offset": 0.0, "in_model": True, "pipeline": "model"},
    ]
    scale = result["preprocessing"][1]
    assert (scale["line"], scale["file"]) == (10, "train.py")
    assert scale["source"] == "digits.images.reshape(-1, 8, 8, 1) / PIXEL_MAX"
    assert [s["op"] for s in inference_steps(result["preprocessing"])] == [
        "reshape",
        "scale",
        "cast",
    ]


def test_torch_script(tmp_path: Path) -> None:
    result = _analyze(tmp_path, train=TORCH_MNIST)

    assert result["problems"] == []
    assert [(c["call"], c["line"]) for c in result["loading"]] == [
        ("torchvision.datasets.MNIST", 7),
        ("torch.utils.data.DataLoader", 8),
    ]
    assert result["loading"][0]["args"] == ["data"]
    assert result["loading"][0]["kwargs"] == {
        "train": True,
        "download": True,
        "transform": "transform",
    }
    assert result["loading"][1]["args"] == ["train_set"]
    # forward() is the model, the loss and metric arithmetic is not preprocessing
    assert _ops(result["preprocessing"]) == [
        {
            "op": "to_tensor",
            "scale": pytest.approx(1 / 255),
            "layout": "CHW",
            "pipeline": "transform",
        },
        {"op": "normalize", "mean": [0.5], "std": [0.5], "pipeline": "transform"},
    ]
    assert result["preprocessing"][1]["source"] == "transforms.Normalize((0.5,), (0.5,))"


def test_text_script(tmp_path: Path) -> None:
    result = _analyze(tmp_path, train=KERAS_TEXT)

    assert [c["call"] for c in result["loading"]] == [
        "tensorflow.keras.utils.text_dataset_from_directory"
    ]
    assert _ops(result["preprocessing"]) == [
        {
            "op": "tokenize",
            "tokenizer": "TextVectorization",
            "max_tokens": 10000,
            "output_sequence_length": 250,
            "fitted": True,
            "params": None,
        },
        # Keras' defaults are written out (a reader assuming "post" served wrong answers)
        {
            "op": "pad",
            "maxlen": 250,
            "padding": "post",
            "truncating": "pre",
            "value": 0,
            "applies_to": ["sequences"],
        },
    ]


def test_tabular_script(tmp_path: Path) -> None:
    result = _analyze(tmp_path, train=TABULAR)

    assert result["loading"] == [
        {
            "call": "pandas.read_csv",
            "args": ["data/train.csv"],
            "kwargs": {},
            "line": 4,
            "file": "train.py",
        }
    ]
    assert _ops(result["preprocessing"], "note") == [
        {"op": "cast", "dtype": "float32", "applies_to": ["features"]},
        {"op": "standard_scaler", "kwargs": {}, "fitted": True, "params": None},
    ]


def test_syntax_error_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    result = _analyze(tmp_path, broken="x = (1,\nprint('unclosed'\n", good=TABULAR)

    (problem,) = result["problems"]
    assert problem["file"] == "broken.py" and isinstance(problem["line"], int)
    assert problem["message"].startswith("SyntaxError: ")
    assert [c["call"] for c in result["loading"]] == ["pandas.read_csv"]
    assert result["loading"][0]["file"] == "good.py"


def test_unreadable_files_are_problems(tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes(b"x = '\xff'\n")
    result = analyze_training_source([tmp_path / "missing.py", tmp_path / "latin.py"])

    assert [p["file"] for p in result["problems"]] == ["missing.py", "latin.py"]
    assert result["problems"][0]["message"].startswith("FileNotFoundError")
    assert result["loading"] == result["preprocessing"] == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("SCALE = 255.0\nx = x / SCALE", [{"op": "scale", "factor": pytest.approx(1 / 255)}]),
        ("x_train = x_train * (1. / 255)", [{"op": "scale", "factor": pytest.approx(1 / 255)}]),
        (
            "images = images.astype('float32') / 255",
            [{"op": "cast", "dtype": "float32"}, {"op": "scale", "factor": pytest.approx(1 / 255)}],
        ),
        (
            "MEAN, STD = 0.1307, 0.3081\nx = (x - MEAN) / STD",
            [{"op": "normalize", "mean": 0.1307, "std": 0.3081}],
        ),
        (
            "x = (x - x.mean()) / x.std()",
            [
                {
                    "op": "normalize",
                    "mean": None,
                    "std": None,
                    "mean_expr": "x.mean()",
                    "std_expr": "x.std()",
                    "fitted": True,
                }
            ],
        ),
        ("import numpy as np\nx = np.expand_dims(x, -1)", [{"op": "expand_dims", "axis": -1}]),
        ("x_train = x_train[..., None]", [{"op": "expand_dims", "axis": -1}]),
        ("import numpy as np\nbatch = batch[:, np.newaxis]", [{"op": "expand_dims", "axis": 1}]),
        (
            "inputs = inputs.unsqueeze(1).float()",
            [{"op": "expand_dims", "axis": 1}, {"op": "cast", "dtype": "float32"}],
        ),
        ("x = x.reshape(len(x), 28, 28, 1)", [{"op": "reshape", "shape": [-1, 28, 28, 1]}]),
        ("import torch\ndata = data.to(torch.float32)", [{"op": "cast", "dtype": "float32"}]),
        (
            "import tensorflow as tf\nimage = tf.cast(image, tf.float32) / 255.0",
            [
                {"op": "cast", "dtype": "float32"},
                {"op": "scale", "factor": pytest.approx(1 / 255)},
            ],
        ),
        ("x = raw / 255.0", [{"op": "scale", "factor": pytest.approx(1 / 255)}]),
        ("x /= 255.0", [{"op": "scale", "factor": pytest.approx(1 / 255)}]),
        (
            "x = x / x.max()",
            [{"op": "scale", "factor": None, "expr": "1 / (x.max())", "fitted": True}],
        ),
        # not preprocessing: losses, metrics, learning rates, labels, plain numbers
        ("loss = loss / accumulation_steps", []),
        ("acc = correct / total", []),
        ("lr = base_lr * 0.1", []),
        ("y = y / 10.0", []),
        ("half = 1 / 2", []),
        ("avg = s / 10", []),
    ],
)
def test_array_arithmetic(tmp_path: Path, code: str, expected: list[dict[str, Any]]) -> None:
    result = _analyze(tmp_path, snippet=code)

    assert result["problems"] == []
    assert _ops(result["preprocessing"], "applies_to") == expected


def test_steps_carry_location_and_truncated_source(tmp_path: Path) -> None:
    long_name = "x" + "_very_long_name" * 20
    result = _analyze(tmp_path, snippet=f"{long_name} = {long_name} / 255.0\n")

    (step,) = result["preprocessing"]
    assert step["line"] == 1 and step["file"] == "snippet.py"
    assert step["source"] == f"{long_name} / 255.0"[:200]


def test_torchvision_train_and_test_pipelines(tmp_path: Path) -> None:
    code = """\
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    train_tf = T.Compose([
        T.RandomResizedCrop(224),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    test_tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.Grayscale(3), T.ToTensor()])
    train = ImageFolder("data/train", transform=train_tf)
    """
    result = _analyze(tmp_path, train=code)

    assert [c["call"] for c in result["loading"]] == ["torchvision.datasets.ImageFolder"]
    assert _ops(result["preprocessing"]) == [
        {
            "op": "augment",
            "layer": "RandomResizedCrop",
            "args": [224],
            "kwargs": {},
            "train_only": True,
            "pipeline": "train_tf",
        },
        {
            "op": "augment",
            "layer": "RandomHorizontalFlip",
            "args": [],
            "kwargs": {},
            "train_only": True,
            "pipeline": "train_tf",
        },
        {
            "op": "to_tensor",
            "scale": pytest.approx(1 / 255),
            "layout": "CHW",
            "pipeline": "train_tf",
        },
        {
            "op": "normalize",
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "pipeline": "train_tf",
        },
        {"op": "resize", "size": 256, "pipeline": "test_tf"},
        {"op": "center_crop", "height": 224, "width": 224, "pipeline": "test_tf"},
        {"op": "grayscale", "channels": 3, "pipeline": "test_tf"},
        {
            "op": "to_tensor",
            "scale": pytest.approx(1 / 255),
            "layout": "CHW",
            "pipeline": "test_tf",
        },
    ]
    assert [s["op"] for s in inference_steps(result["preprocessing"])] == [
        "resize",
        "center_crop",
        "grayscale",
        "to_tensor",
    ]


def test_keras_layers_outside_and_inside_the_model(tmp_path: Path) -> None:
    code = """\
    import tensorflow as tf
    from tensorflow import keras

    IMG = 180
    train_ds = keras.utils.image_dataset_from_directory("flowers", image_size=(IMG, IMG))
    normalization_layer = keras.layers.Rescaling(1.0 / 255)
    train_ds = train_ds.map(lambda x, y: (normalization_layer(x), y))
    inputs = keras.Input((IMG, IMG, 3))
    h = keras.layers.Resizing(64, 64)(inputs)
    h = keras.layers.RandomRotation(0.1)(h)
    norm = keras.layers.Normalization(mean=[0.5], variance=[0.25])
    """
    result = _analyze(tmp_path, train=code)

    assert result["loading"][0]["kwargs"] == {"image_size": [180, 180]}
    assert _ops(result["preprocessing"]) == [
        {"op": "resize", "height": 180, "width": 180},
        {"op": "rescale", "scale": pytest.approx(1 / 255), "offset": 0.0, "in_model": False},
        {"op": "resize", "height": 64, "width": 64, "in_model": True},
        {
            "op": "augment",
            "layer": "RandomRotation",
            "args": [0.1],
            "kwargs": {},
            "train_only": True,
            "in_model": True,
        },
        {"op": "normalize", "mean": [0.5], "std": [0.5], "in_model": False},
    ]
    assert [s["op"] for s in inference_steps(result["preprocessing"])] == [
        "resize",
        "rescale",
        "normalize",
    ]


def test_loading_calls(tmp_path: Path) -> None:
    code = """\
    import numpy as np
    import tensorflow_datasets as tfds
    from datasets import load_dataset
    from tensorflow.keras.datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    arrays = np.load("data/digits.npz")
    table = np.loadtxt("data/iris.csv", delimiter=",")
    ds = tfds.load("mnist", split="train", as_supervised=True)
    imdb = load_dataset("imdb")
    with open("data/labels.json") as fh:
        pass
    with open("out/report.csv", "w") as fh:
        pass
    with open("README.md") as fh:
        pass
    """
    result = _analyze(tmp_path, train=code)

    assert [(c["call"], c["args"], c["kwargs"]) for c in result["loading"]] == [
        ("tensorflow.keras.datasets.mnist.load_data", [], {}),
        ("numpy.load", ["data/digits.npz"], {}),
        ("numpy.loadtxt", ["data/iris.csv"], {"delimiter": ","}),
        ("tensorflow_datasets.load", ["mnist"], {"split": "train", "as_supervised": True}),
        ("datasets.load_dataset", ["imdb"], {}),
        ("open", ["data/labels.json"], {}),
    ]
    assert [c["line"] for c in result["loading"]] == [6, 7, 8, 9, 10, 11]


def test_notebooks_are_read_cell_by_cell(tmp_path: Path) -> None:
    cells = [
        {"cell_type": "markdown", "source": ["# Digits"]},
        {
            "cell_type": "code",
            "source": ["%matplotlib inline\n", "from sklearn.datasets import load_iris\n"],
        },
        {"cell_type": "code", "source": ["!pip install x\n", "X = load_iris().data / 10.0\n"]},
    ]
    path = tmp_path / "explore.ipynb"
    path.write_text(json.dumps({"cells": cells, "nbformat": 4}), encoding="utf-8")
    result = analyze_training_source([path])

    assert result["problems"] == []
    assert [c["call"] for c in result["loading"]] == ["sklearn.datasets.load_iris"]
    assert _ops(result["preprocessing"], "applies_to") == [
        {"op": "scale", "factor": pytest.approx(0.1)}
    ]


def test_files_are_named_relative_to_their_common_folder(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "train.py").write_text("import pandas as pd\ndf = pd.read_parquet('d.parquet')\n")
    (tmp_path / "pkg" / "data.py").write_text("import numpy as np\nx = np.load('x.npy') / 255.0\n")
    result = analyze_training_source([tmp_path / "train.py", tmp_path / "pkg" / "data.py"])

    assert [c["file"] for c in result["loading"]] == ["train.py", "pkg/data.py"]
    assert result["preprocessing"][0]["file"] == "pkg/data.py"


def test_result_is_json_serialisable(tmp_path: Path) -> None:
    result = _analyze(tmp_path, a=KERAS_DIGITS, b=TORCH_MNIST, c=KERAS_TEXT, d=TABULAR)

    assert json.loads(json.dumps(result)) == json.loads(json.dumps(result, sort_keys=True))


def test_inline_pipelines_replay_the_test_one(tmp_path: Path) -> None:
    code = """\
    from torchvision import datasets, transforms as T

    train = datasets.CIFAR10("d", train=True, transform=T.Compose([T.RandomCrop(32), T.ToTensor()]))
    test = datasets.CIFAR10("d", train=False, transform=T.Compose([T.ToTensor()]))
    datasets.CIFAR10("d", transform=T.Compose([T.Grayscale()]))
    """
    result = _analyze(tmp_path, train=code)

    # an unnamed Compose is named after the assignment it is part of
    pipelines = [s["pipeline"] for s in result["preprocessing"]]
    assert pipelines == ["train", "train", "test", "transform@5"]
    assert [(s["op"], s["line"]) for s in inference_steps(result["preprocessing"])] == [
        ("to_tensor", 4)
    ]


def test_star_imports_and_local_classes(tmp_path: Path) -> None:
    code = """\
    from torchvision.transforms import *
    from torchvision.datasets import MNIST

    class Resize:  # a local class is not the torchvision transform
        pass

    tf = Compose([ToTensor(), RandomErasing()])
    helper = Helper()
    """
    result = _analyze(tmp_path, train=code)

    assert [(s["op"], s.get("layer")) for s in result["preprocessing"]] == [
        ("to_tensor", None),
        ("augment", "RandomErasing"),
    ]


def test_the_same_scaling_of_the_same_data_is_one_step(tmp_path: Path) -> None:
    # A data module scales into x; the evaluation scales a slice of the same array inline.
    result = _analyze(
        tmp_path,
        train="""
        import numpy as np
        RAW = np.load("digits.npy")
        x = torch.from_numpy(RAW / 16.0)
        reference = model(torch.from_numpy(RAW[1500:] / 16.0))
    """,
    )
    assert _ops(result["preprocessing"]) == [
        {"op": "scale", "factor": 0.0625, "applies_to": ["x", "RAW"]}
    ]


def test_a_scaling_really_applied_twice_stays_twice(tmp_path: Path) -> None:
    result = _analyze(
        tmp_path,
        train="""
        import numpy as np
        x_train = np.load("x.npy")
        x_train = x_train / 255.0
        x_train = x_train / 255.0
    """,
    )
    assert [step["op"] for step in result["preprocessing"]] == ["scale", "scale"]
