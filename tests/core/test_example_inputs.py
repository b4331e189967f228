"""``examples.json``: the first checked rows of a run, written small and read back strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelkb.errors import BundleSchemaError
from modelkb.example_inputs import EXAMPLES_FILE, MAX_EXAMPLES, read_examples, write_examples

np = pytest.importorskip("numpy")


def test_rows_and_labels_read_back_to_the_values_fed(tmp_path: Path) -> None:
    x = (np.arange(8 * 3, dtype=np.float32) / 7).reshape(8, 3)  # digits float32 cannot show short
    written = write_examples(tmp_path / EXAMPLES_FILE, {"x": x}, np.arange(8))
    examples = read_examples(tmp_path)
    assert written == len(examples) == MAX_EXAMPLES
    assert [e["label"] for e in examples] == [0, 1, 2, 3]
    back = np.asarray([e["inputs"]["x"] for e in examples], dtype=np.float32)
    assert np.array_equal(back, x[:MAX_EXAMPLES])
    assert "0.14285715," in (tmp_path / EXAMPLES_FILE).read_text(encoding="utf-8")


def test_named_inputs_keep_their_text_and_integers(tmp_path: Path) -> None:
    feed = {
        "thal": np.asarray([[b"fixed"], [b"normal"]], dtype=object),
        "age": np.asarray([[63], [41]], dtype=np.int64),
    }
    assert write_examples(tmp_path / EXAMPLES_FILE, feed, rows=1) == 1
    (example,) = read_examples(tmp_path)
    assert example == {"inputs": {"thal": ["fixed"], "age": [63]}}


@pytest.mark.parametrize(
    ("feed", "why"),
    [
        ({"x": np.zeros((2, 64, 64, 3), dtype=np.float32)}, "a photograph is too large a row"),
        ({"x": np.asarray([[1.0, np.nan]], dtype=np.float32)}, "NaN is not JSON"),
        ({"a": np.zeros((2, 3)), "b": np.zeros((3, 3))}, "inputs disagree on the rows"),
        ({"x": np.asarray(1.0)}, "no batch axis"),
    ],
)
def test_what_cannot_be_an_example_is_not_written(
    tmp_path: Path, feed: dict[str, object], why: str
) -> None:
    assert write_examples(tmp_path / EXAMPLES_FILE, feed) == 0, why
    assert not (tmp_path / EXAMPLES_FILE).exists()
    assert read_examples(tmp_path) == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"examples": {"x": 1}}, "'examples'"),
        ({"examples": [{"inputs": []}]}, "examples[0].inputs"),
        ({"examples": [{"inputs": {"x": [1, None]}}]}, "examples[0].inputs['x']"),
        ({"examples": [{"inputs": {"x": [True]}}]}, "examples[0].inputs['x']"),
    ],
)
def test_a_bad_file_names_the_field(tmp_path: Path, data: object, field: str) -> None:
    (tmp_path / EXAMPLES_FILE).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BundleSchemaError, match=f"{EXAMPLES_FILE}: .*{field}".replace("[", r"\[")):
        read_examples(tmp_path)


def test_not_json_is_a_schema_error(tmp_path: Path) -> None:
    (tmp_path / EXAMPLES_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleSchemaError, match="not readable JSON"):
        read_examples(tmp_path)
