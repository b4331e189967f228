"""The experiment page without a browser: the summary header, "Use this model" and the examples
try-the-model is given, rendered from metadata and parsed back."""

from __future__ import annotations

import ast
import html
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from support.catalog_site import PAYLOAD_SCRIPT
from support.runs import make_bundle, tiny_onnx_model

from modelkb.site_builder.catalog import summarize
from modelkb.site_builder.pages import render_experiment
from modelkb.site_builder.try_examples import page_examples
from modelkb.site_builder.usage import python_snippet
from modelkb.store import Store

FACT = re.compile(r'data-fact="(\w+)"><dt>[^<]*</dt><dd[^>]*>(.*?)</dd>', re.S)
USE = re.compile(r'<section class="mkb-tab" id="tab-use".*?</section>', re.S)


def _page(metadata: dict[str, Any], folder: Path, *, model: bool = True) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    if model:
        (folder / "model.onnx").write_bytes(b"onnx")
    summary = summarize(metadata, folder=folder, slug="digits", stamp=None)
    return render_experiment(metadata, summary, files=set())


def _facts(page: str) -> dict[str, str]:
    return {key: html.unescape(re.sub("<[^>]+>", "", dd)) for key, dd in FACT.findall(page)}


def test_a_run_that_recorded_little_shows_em_dashes(tmp_path: Path) -> None:
    metadata = {"schema_version": 1, "id": "01abc", "project": "P", "name": "n"}
    page = _page(metadata, tmp_path, model=False)
    facts = _facts(page)
    assert len(facts) == 9 and set(facts.values()) == {"—"}
    header = page[page.index('id="mkb-facts"') : page.index("</dl>")]
    assert "None" not in header and "undefined" not in header
    use = USE.search(page).group(0)  # type: ignore[union-attr]
    # no model, no push, no Hub, no deploy: only the downloads are left
    assert "<h3" in use and use.count("<h3") == 1 and "Downloads" in use


def test_the_header_of_a_keras_run(sample_metadata: dict[str, Any], tmp_path: Path) -> None:
    facts = _facts(_page(sample_metadata, tmp_path))
    assert facts == {
        "status": "completed",
        "framework": "keras 3.6.0 (tensorflow)",
        "dataset": "digits: image, x (None, 8, 8, 1)",
        "parameters": "810",
        "size": "model.keras 30.5 kB · model.onnx 4.62 kB",
        "metric": "val_accuracy 0.9222",
        "best_epoch": "2 (val_accuracy 0.9222)",
        "seed": "42",
        "parity": "verified: max |Δ| 2.4e-07 (cpu)",
    }
    regression = {
        **sample_metadata,
        "seed": None,
        "metrics": {
            "history": [{"epoch": 0, "train": {"loss": 2.0}}, {"epoch": 1, "train": {"loss": 3.0}}],
            "final": {"loss": 3.0},
        },
        "onnx": {"path": "model.onnx", "max_abs_diff": None, "checked_on": None},
    }
    facts = _facts(_page(regression, tmp_path / "regression"))
    assert facts["metric"] == "loss 3" and facts["best_epoch"] == "0 (loss 2)"  # lowest loss
    assert facts["seed"] == "not seeded" and facts["parity"] == "not checked"


def test_use_this_model_shows_what_happened_to_the_run_and_escapes_it(
    sample_metadata: dict[str, Any], tmp_path: Path
) -> None:
    page = _page(sample_metadata, tmp_path)
    assert 'id="mkb-use-python"' in page
    assert not re.search(r'id="mkb-use-(clone|hub|endpoint|curl)"', page)
    hostile = {
        **sample_metadata,
        "s3": {"global_id": f"s3://team/models/digits/{PAYLOAD_SCRIPT}"},
        "hub": {"url": f"https://huggingface.co/ada/digits?{PAYLOAD_SCRIPT}"},
        "serverless": {
            "url": "https://abc.execute-api.eu-west-1.amazonaws.com",
            "example_request": {"inputs": [PAYLOAD_SCRIPT]},
        },
    }
    page = _page(hostile, tmp_path / "published")
    use = USE.search(page).group(0)  # type: ignore[union-attr]
    for part in ("clone", "hub", "endpoint", "curl"):
        assert f'id="mkb-use-{part}"' in use, part
    assert "<script>window.__xss" not in page and "&lt;script&gt;window.__xss" in use
    assert "modelkb clone &#39;s3://team/models/digits/&lt;script&gt;" in use  # shell-quoted
    assert "curl -s -X POST https://abc.execute-api.eu-west-1.amazonaws.com/predict" in use
    not_links = {**hostile, "hub": {"url": "javascript:alert(1)"}, "serverless": {"url": "x"}}
    page = _page(not_links, tmp_path / "not-links")
    assert not re.search(r'id="mkb-use-(hub|endpoint|curl)"', page)


def _graph(tmp_path: Path) -> Path:
    """A model of three named inputs (text, integer, float) that returns the float input."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inputs = [
        helper.make_tensor_value_info("thal", TensorProto.STRING, ["batch", 1]),
        helper.make_tensor_value_info("age", TensorProto.INT64, ["batch", 1]),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["x"], ["y"]),
            helper.make_node("Identity", ["thal"], ["thal_out"]),
            helper.make_node("Cast", ["age"], ["age_out"], to=TensorProto.FLOAT),
        ],
        "named",
        inputs,
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("thal_out", TensorProto.STRING, ["batch", 1]),
            helper.make_tensor_value_info("age_out", TensorProto.FLOAT, ["batch", 1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    return path


def test_the_snippet_feeds_every_named_input_and_runs(
    sample_metadata: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("onnxruntime")
    _graph(tmp_path)
    metadata = {
        **sample_metadata,
        "onnx": {
            "inputs": [
                {"name": "thal", "dtype": "str", "shape": ["batch", 1]},
                {"name": "age", "dtype": "int64", "shape": ["batch", 1]},
                {"name": "x", "dtype": "float32", "shape": ["batch", 3]},
            ]
        },
        "dataset": {
            "preprocessing": [
                {"op": "lookup", "input": "thal", "vocabulary": ["[UNK]", "fixed", "normal"]}
                | {"oov_token": "[UNK]", "in_model": True},
                {"op": "normalize", "mean": [1.5, 2.0, 0.5], "std": [2.0, 1.0, 4.0]},
                {"op": "augment", "layer": "RandomFlip", "train_only": True},
            ]
        },
    }
    code = python_snippet(metadata)
    assert "#   x = (x - [1.5, 2.0, 0.5]) / [2.0, 1.0, 4.0]\n" in code  # replayed by the handler
    assert "lookup" not in code and "RandomFlip" not in code  # in the model / train only
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(code, "snippet.py", "exec"), namespace)
    feed = namespace["feed"]
    assert list(feed) == ["thal", "age", "x"]
    assert feed["thal"].dtype == object and feed["thal"].tolist() == [["fixed"]]
    assert feed["age"].dtype == np.int64 and feed["x"].shape == (1, 3)
    assert namespace["outputs"][0].tolist() == [[0.0, 0.0, 0.0]]


def test_bundle_text_in_the_snippet_stays_a_literal_or_a_comment(
    sample_metadata: dict[str, Any],
) -> None:
    name = "in'put\"\nimport os"
    metadata = {
        **sample_metadata,
        "onnx": {"inputs": [{"name": name, "dtype": "float32", "shape": [None, 4]}]},
        "dataset": {
            "preprocessing": [
                {"op": "scale", "factor": 0.5, "source": "x / 2\nimport os; os.remove('a')"},
                {"op": "resize", "height": 8, "width": 8, "interpolation": "a\rimport os"},
            ]
        },
    }
    tree = ast.parse(python_snippet(metadata))
    assert [type(node).__name__ for node in tree.body] == [
        "Import",
        "Import",
        "Assign",
        "Assign",
        "Assign",
        "Expr",
    ]
    feed = tree.body[3].value  # type: ignore[attr-defined]
    assert [ast.literal_eval(key) for key in feed.keys] == [name]


def test_examples_are_given_to_the_page_with_labels_people_read() -> None:
    metadata = {
        "onnx": {"inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 2]}]},
        "dataset": {"kind": "tabular", "classes": ["cat", "dog"]},
        "hyperparameters": {"loss": "categorical_crossentropy"},
    }
    examples = [
        {"inputs": {"x": [0.5, 1.25]}, "label": 1},
        {"inputs": {"x": [0.0, 2.0]}, "label": [1.0, 0.0]},
        {"inputs": {"x": [3.0, 4.0]}},
    ]
    shown = page_examples(examples, metadata)
    assert shown[0] == {
        "feeds": {"x": {"dtype": "float32", "dims": [1, 2], "data": [0.5, 1.25]}},
        "text": "0.5, 1.25",
        "label": "dog",
    }
    assert shown[1]["label"] == "cat" and "label" not in shown[2]
    regression = {**metadata, "hyperparameters": {"loss": "mse"}}
    assert page_examples([{"inputs": {"x": [1, 2]}, "label": 2.5}], regression)[0]["label"] == "2.5"
    wrong_shape = [{"inputs": {"x": [1.0, 2.0, 3.0]}}]
    assert page_examples(wrong_shape, metadata) == []
    half = {"onnx": {"inputs": [{"name": "x", "dtype": "float16", "shape": [None, 2]}]}}
    assert page_examples(examples, half) == []  # onnxruntime-web is not given float16 here


def test_a_bad_examples_file_costs_only_the_examples(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from modelkb.site_builder.build import build_site

    model = tiny_onnx_model() or pytest.skip("onnx is not installed")
    experiment_id = make_bundle(tmp_path / "store", model=model)
    folder = next((tmp_path / "store").glob(f"*/{experiment_id}"))
    (folder / "examples.json").write_text(
        '{"examples": [{"inputs": {"x": [null]}}]}', encoding="utf-8"
    )
    with caplog.at_level(logging.WARNING):
        report = build_site(Store(tmp_path / "store"), tmp_path / "site", zip_bundles=False)
    assert report.experiments == 1 and report.problems == []
    page = tmp_path / "site" / "experiments" / experiment_id
    assert (page / "index.html").is_file() and not (page / "examples.json").exists()
    assert json.loads((page / "data.json").read_text(encoding="utf-8"))["examples"] == 0
    assert "no example inputs" in caplog.text and "examples[0].inputs['x']" in caplog.text
