"""Describing training arrays: kind inference, shapes, classes, ranges, and merging."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from modelkb.collector.dataset_info import describe_arrays, infer_kind, merge_dataset


@pytest.mark.parametrize(
    ("shape", "dtype", "kind"),
    [
        ((8, 8), "float64", "image"),  # sklearn digits.images
        ((28, 28), "uint8", "image"),  # raw MNIST
        ((28, 28, 1), "float32", "image"),
        ((32, 32, 3), "uint8", "image"),
        ((3, 32, 32), "float32", "image"),  # channels first (torch)
        ((1, 28, 28), "float32", "image"),
        ((64, 64, 4), "float32", "image"),  # RGBA
        ((None, None, 3), "float32", "image"),  # variable-size images
        [[224, 224, 3], "float16", "image"],  # lists work too
        ((64,), "float64", "tabular"),  # digits.data
        ((4,), "float32", "tabular"),  # iris
        ((4,), "int64", "tabular"),  # few integer features
        ((13,), "bool", "tabular"),
        ((100,), "int32", "text"),  # token ids
        ((None,), "int64", "text"),  # ragged token ids
        ((), "str", "text"),  # one string per sample
        ((), "bytes", "text"),
        ((20,), "str", "text"),
        ((), "float32", "other"),  # scalar per sample
        ((4, 4), "float32", "other"),  # too small for an image
        ((100, 12), "float32", "image"),  # (H, W) rule: both sides >= 8
        ((50, 5, 5), "float32", "other"),
        ((16, 16, 16, 1), "float32", "other"),  # volumes
        ((8, 8), None, "image"),
        ((5,), None, "tabular"),
        ((3,), "complex64", "other"),
    ],
)
def test_infer_kind(shape: Any, dtype: str | None, kind: str) -> None:
    assert infer_kind(shape, dtype) == kind


@pytest.mark.parametrize("dtype", ["<U12", "|S4", "torch.int64", "tf.string", "object"])
def test_infer_kind_accepts_raw_dtype_spellings(dtype: str) -> None:
    expected = "other" if dtype == "object" else "text"
    assert infer_kind((300,) if "int" in dtype else (), dtype) == expected


def test_describe_digits_images_with_integer_labels() -> None:
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 17, size=(120, 8, 8, 1)) / 16.0).astype("float32")
    y = np.arange(120) % 10

    info = describe_arrays(x, y)

    assert info == {
        "kind": "image",
        "shapes": {"x": [None, 8, 8, 1], "y": [None]},
        "dtype": "float32",
        "samples": {"train": 120},
        "x_range": {"min": 0.0, "max": 1.0},
        "classes": list(range(10)),
        "num_classes": 10,
    }
    json.dumps(info)  # plain Python types only


def test_describe_one_hot_labels_and_split_name() -> None:
    x = np.zeros((30, 3, 32, 32), dtype="uint8")
    y = np.eye(4, dtype="float32")[np.arange(30) % 4]

    info = describe_arrays(x, y, split="val")

    assert info["kind"] == "image"
    assert info["samples"] == {"val": 30}
    assert info["shapes"] == {"x": [None, 3, 32, 32], "y": [None, 4]}
    assert (info["classes"], info["num_classes"]) == ([0, 1, 2, 3], 4)
    assert info["x_range"] == {"min": 0.0, "max": 0.0}


def test_describe_tabular_with_regression_target_has_no_classes() -> None:
    x = np.linspace(-1, 1, 64 * 50).reshape(50, 64)
    y = np.linspace(0, 5, 50)

    info = describe_arrays(x, y)

    assert info["kind"] == "tabular"
    assert info["dtype"] == "float64"
    assert info["x_range"] == {"min": -1.0, "max": 1.0}
    assert "classes" not in info and "num_classes" not in info


def test_binary_float_labels_are_classes() -> None:
    info = describe_arrays(np.ones((6, 10)), np.array([[0.0], [1.0], [1.0], [0.0], [1.0], [0.0]]))
    assert info["classes"] == [0, 1]
    assert info["shapes"]["y"] == [None, 1]


def test_too_many_distinct_labels_are_not_classes() -> None:
    info = describe_arrays(np.ones((2000, 3)), np.arange(2000))
    assert "classes" not in info


def test_describe_token_sequences_and_string_labels() -> None:
    x = np.random.default_rng(1).integers(1, 5000, size=(40, 100), dtype="int32")
    y = np.array(["neg", "pos"] * 20)

    info = describe_arrays(x, y)

    assert info["kind"] == "text"
    assert info["shapes"]["x"] == [None, 100]
    assert info["classes"] == ["neg", "pos"]
    assert info["num_classes"] == 2


def test_describe_string_arrays_and_lists() -> None:
    info = describe_arrays(np.array(["a great film", "dull"]), [1, 0])
    assert (info["kind"], info["dtype"], info["shapes"]["x"]) == ("text", "str", [None])
    assert "x_range" not in info
    assert info["classes"] == [0, 1]

    info = describe_arrays(["good", "bad", "fine"], ["p", "n", "p"])
    assert (info["kind"], info["dtype"], info["samples"]) == ("text", "str", {"train": 3})
    assert info["classes"] == ["n", "p"]

    info = describe_arrays([[0.1, 0.2, 0.3, 0.4]] * 5)
    assert (info["kind"], info["dtype"], info["shapes"]) == ("tabular", "float64", {"x": [None, 4]})
    assert info["x_range"] == {"min": pytest.approx(0.1), "max": pytest.approx(0.4)}

    info = describe_arrays([np.zeros((28, 28), "float32")] * 3)
    assert (info["kind"], info["dtype"], info["shapes"]["x"]) == (
        "image",
        "float32",
        [None, 28, 28],
    )

    info = describe_arrays(np.array(["x", None, "y"], dtype=object))
    assert info["dtype"] == "str" and info["kind"] == "text"


def test_describe_dict_of_inputs() -> None:
    x = {"image": np.zeros((12, 28, 28, 1), "float32"), "meta": np.zeros((12, 5), "float32")}

    info = describe_arrays(x, np.arange(12) % 3)

    assert info["shapes"]["x"] == {"image": [None, 28, 28, 1], "meta": [None, 5]}
    assert info["dtype"] == "float32"
    assert info["dtypes"] == {"image": "float32", "meta": "float32"}
    assert info["kind"] == "other"  # an image and a table
    assert info["samples"] == {"train": 12}
    assert info["classes"] == [0, 1, 2]


def test_describe_dict_of_outputs_and_unknown_objects() -> None:
    info = describe_arrays(np.zeros((4, 8, 8)), {"a": np.zeros((4, 2)), "b": np.zeros(4)})
    assert info["shapes"]["y"] == {"a": [None, 2], "b": [None]}
    assert "classes" not in info

    info = describe_arrays(object())
    assert info == {
        "kind": "other",
        "shapes": {"x": None},
        "dtype": None,
        "samples": {"train": None},
    }


def test_range_reads_at_most_ten_thousand_rows() -> None:
    x = np.zeros((20_000, 3))
    x[15_000] = 99.0
    assert describe_arrays(x)["x_range"] == {"min": 0.0, "max": 0.0}


def test_nan_is_ignored_by_the_range() -> None:
    x = np.array([[np.nan, 1.0], [2.0, np.nan]])
    assert describe_arrays(x)["x_range"] == {"min": 1.0, "max": 2.0}
    assert "x_range" not in describe_arrays(np.full((3, 2), np.nan))


def test_describe_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    x = torch.rand(16, 3, 32, 32, requires_grad=True)
    y = torch.arange(16) % 5

    info = describe_arrays(x, y, split="test")

    assert info["kind"] == "image"
    assert info["dtype"] == "float32"
    assert info["shapes"] == {"x": [None, 3, 32, 32], "y": [None]}
    assert info["samples"] == {"test": 16}
    assert info["classes"] == [0, 1, 2, 3, 4]
    assert 0.0 <= info["x_range"]["min"] <= info["x_range"]["max"] <= 1.0
    assert describe_arrays(torch.randint(0, 999, (4, 64)))["kind"] == "text"


def test_describe_pandas_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"age": [30, 40, 50], "income": [1.5, 2.5, 3.5], "city": ["a", "b", "a"]})

    info = describe_arrays(df, pd.Series(["yes", "no", "yes"]))

    assert info["kind"] == "tabular"
    assert info["features"] == ["age", "income", "city"]
    assert info["shapes"] == {"x": [None, 3], "y": [None]}
    assert info["dtype"] == "mixed"
    assert info["x_range"] == {"min": 1.5, "max": 50.0}
    assert info["classes"] == ["no", "yes"]


class _FakeFrame:
    """The parts of a pandas DataFrame that describe_arrays relies on."""

    def __init__(self, columns: dict[str, list[float]]) -> None:
        self._columns = columns
        self.columns = list(columns)
        self.dtypes = ["float64"] * len(columns)
        self.shape = (len(next(iter(columns.values()))), len(columns))
        self.iloc = self

    def __getitem__(self, rows: slice) -> _FakeFrame:
        return _FakeFrame({k: v[rows] for k, v in self._columns.items()})

    def select_dtypes(self, include: str) -> _FakeFrame:
        return self

    def to_numpy(self) -> np.ndarray:
        return np.array(list(self._columns.values())).T


def test_describe_dataframe_look_alike() -> None:
    info = describe_arrays(_FakeFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    assert info == {
        "kind": "tabular",
        "shapes": {"x": [None, 2]},
        "dtype": "float64",
        "features": ["a", "b"],
        "samples": {"train": 2},
        "x_range": {"min": 1.0, "max": 4.0},
    }


def test_modules_import_no_framework_and_no_numpy() -> None:
    code = (
        "import sys, modelkb.collector.dataset_info, modelkb.collector.source_analysis;"
        "print(sorted({'numpy', 'torch', 'tensorflow', 'keras', 'pandas'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_merge_dataset_new_wins_and_lists_concatenate() -> None:
    old = {
        "kind": "other",
        "shapes": {"x": [None, 64]},
        "samples": {"train": 1437},
        "preprocessing": [{"op": "scale", "factor": 0.0625}],
        "loading": [{"call": "sklearn.datasets.load_digits"}],
        "name": "digits",
    }
    new = {
        "kind": "image",
        "shapes": {"y": [None, 10]},
        "samples": {"val": 180, "test": 180},
        "preprocessing": [
            {"op": "scale", "factor": 0.0625},
            {"op": "reshape", "shape": [-1, 8, 8, 1]},
        ],
        "loading": [{"call": "sklearn.datasets.load_digits"}],
        "name": None,
        "notes": "user text",
    }
    snapshot = json.dumps([old, new], sort_keys=True)

    merged = merge_dataset(old, new)

    assert merged == {
        "kind": "image",
        "shapes": {"x": [None, 64], "y": [None, 10]},
        "samples": {"train": 1437, "val": 180, "test": 180},
        "preprocessing": [
            {"op": "scale", "factor": 0.0625},
            {"op": "reshape", "shape": [-1, 8, 8, 1]},
        ],
        "loading": [{"call": "sklearn.datasets.load_digits"}],
        "name": "digits",
        "notes": "user text",
    }
    assert json.dumps([old, new], sort_keys=True) == snapshot  # inputs untouched
    merged["shapes"]["x"].append(1)
    assert old["shapes"]["x"] == [None, 64]


def test_merge_dataset_user_override_of_inferred_kind() -> None:
    inferred = describe_arrays(np.zeros((10, 100), dtype="int64"))
    assert inferred["kind"] == "text"
    assert merge_dataset(inferred, {"kind": "tabular"})["kind"] == "tabular"
    assert merge_dataset({}, {"samples": {"train": 3}}) == {"samples": {"train": 3}}
    assert merge_dataset({"classes": [0, 1]}, {"classes": ["cat", "dog"]})["classes"] == [
        "cat",
        "dog",
    ]
