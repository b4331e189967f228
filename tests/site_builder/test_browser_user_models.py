"""Try-the-model in Chromium on models trained by user-shaped programs (``tests/programs/``).

The catalog's answer for a raw input must be the framework's own prediction and the generated
HTTP handler's answer for the same input, on each site engine. Each program is trained once per
module (``train``); only the catalog is built again for the second engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.slow


Train = Callable[..., tuple[Any, dict[str, Any]]]


@pytest.fixture(scope="module")
def train(tmp_path_factory: pytest.TempPathFactory) -> Train:
    """``train(program, *needs)``: run ``programs/<program>`` once per module (skipped without
    ``needs``); returns (its bundle, what it wrote). Its store is the bundle's ``path.parents[1]``."""
    from support.user_programs import run_program

    from modelkb.store import Store

    done: dict[str, tuple[Any, dict[str, Any]]] = {}

    def run(program: str, *needs: str) -> tuple[Any, dict[str, Any]]:
        for module in needs:
            pytest.importorskip(module)
        if program not in done:
            folder = tmp_path_factory.mktemp(Path(program).stem)
            result = run_program(program, folder / "store", folder)
            done[program] = (Store(folder / "store").get(result["id"]), result)
        return done[program]

    return run


def _handler_answer(entry: Any, tmp_path: Path, body: dict[str, Any]) -> Any:
    import json

    from modelkb.serverless.local_server import load_handler
    from modelkb.serverless.render import render_package

    handler = load_handler(render_package(entry.path, entry.metadata, tmp_path / "package").path)
    event = {
        "version": "2.0",
        "routeKey": "POST /predict",
        "rawPath": "/predict",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "isBase64Encoded": False,
        "body": json.dumps(body),
        "requestContext": {
            "http": {"method": "POST", "path": "/predict", "sourceIp": "127.0.0.1"},
            "stage": "$default",
            "routeKey": "POST /predict",
        },
    }
    result = handler.lambda_handler(event, None)
    assert result["statusCode"] == 200, result["body"]
    return json.loads(result["body"])


@contextmanager
def _catalog_page(browser: Any, entry: Any, site: Path, engine: str) -> Iterator[Any]:
    """The run's experiment page in a catalog of its store built by ``engine`` into ``site`` and
    served, on its Inference tab, model loaded."""
    from support.browser import served_page

    from modelkb.site_builder.build import build_site
    from modelkb.store import Store

    store = entry.path.parents[1]  # <store>/<project>/<id>
    build_site(Store(store), site, zip_bundles=False, engine=engine)
    with served_page(browser, site, f"experiments/{entry.metadata['id']}/") as page:
        page.click("[data-tab='inference']")
        page.wait_for_selector("#mkb-infer[data-state='ready']", timeout=60_000)
        yield page


def _run(page: Any, button: str = "#mkb-infer-run") -> Any:
    page.click(button)
    page.wait_for_selector("#mkb-infer[data-state='done']", timeout=30_000)
    return page.evaluate("window.ModelKBInferResult")


def _example_output(entry: Any, index: int) -> float:
    """onnxruntime's first output for the run's recorded example ``index`` (a batch of one)."""
    ort = pytest.importorskip("onnxruntime")
    from modelkb.example_inputs import read_examples

    dtypes = {i["name"]: i["dtype"] for i in entry.metadata["onnx"]["inputs"]}
    feed = {
        name: np.asarray([row], dtype=object if dtypes[name] == "str" else dtypes[name])
        for name, row in read_examples(entry.path)[index]["inputs"].items()
    }
    session = ort.InferenceSession(str(entry.path / "model.onnx"))
    return float(np.ravel(session.run(None, feed)[0])[0])


def test_regression_model_answers_values_like_keras_and_the_handler(
    browser: Any, train: Train, engine: str, tmp_path: Path
) -> None:
    entry, result = train("keras_regression.py", "keras", "tf2onnx")
    raw, expected = result["raw"][2], float(np.ravel(result["reference"][2])[0])
    served = _handler_answer(entry, tmp_path, {"inputs": raw})["outputs"]
    with _catalog_page(browser, entry, tmp_path / "site", engine) as page:
        labels = page.eval_on_selector_all(
            "#mkb-infer-inputs label", "ls => ls.map(l => l.firstChild.textContent)"
        )
        assert labels == entry.metadata["dataset"]["features"]  # named fields, not "feature 0"
        fields = page.locator("input.mkb-infer-feature")
        for index, value in enumerate(raw):
            fields.nth(index).fill(repr(value))
        shown = _run(page)
        assert "probs" not in shown  # a value, not a class probability
        assert shown["values"] == pytest.approx([expected], rel=1e-5, abs=1e-3)
        assert shown["values"] == pytest.approx(served, rel=1e-5, abs=1e-4)
        shown = _run(page, "button.mkb-example[data-example='0']")
        assert shown["values"] == pytest.approx([_example_output(entry, 0)], rel=1e-6, abs=1e-6)
    cards = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert (
        "no score yet" not in cards and "best val_loss" in cards
    )  # regression: the lowest loss is the best


@pytest.mark.parametrize(
    "program",
    [
        "keras_text_vectorization.py",  # the layer adapted in the tf.data pipeline
        "keras_text_in_model.py",  # the layer inside the model: model.onnx starts after it
    ],
)
def test_text_model_tokenizes_like_keras_and_the_handler(
    browser: Any, train: Train, engine: str, tmp_path: Path, program: str
) -> None:
    entry, result = train(program, "keras", "tf2onnx")
    text, expected = (
        result["raw"][-2],
        float(np.ravel(result["reference"][-2])[0]),
    )  # capitals, commas, an apostrophe
    served = _handler_answer(entry, tmp_path, {"text": text})
    served_p = next(p["probability"] for p in served["predictions"] if p["label"] == "1")
    with _catalog_page(browser, entry, tmp_path / "site", engine) as page:
        page.fill("#mkb-infer-text", text)
        shown = _run(page)
        assert shown["probs"][1] == pytest.approx(expected, abs=1e-5)  # a sigmoid head: [1 - p, p]
        assert shown["probs"][1] == pytest.approx(served_p, abs=1e-5)
        # a recorded example (token ids, as model.onnx takes them) in one click
        shown = _run(page, "button.mkb-example[data-example='1']")
        assert shown["probs"][1] == pytest.approx(_example_output(entry, 1), abs=1e-5)


def test_structured_model_form_offers_the_vocabulary_and_answers_like_keras(
    browser: Any, train: Train, engine: str, tmp_path: Path
) -> None:
    """Named inputs through StringLookup/IntegerLookup: a field per input, the recorded vocabulary
    as choices, the raw values fed to the graph; the same answer as Keras and the handler."""
    entry, result = train("keras_structured_lookups.py", "keras", "tf2onnx")
    record, expected = result["raw"][2], float(np.ravel(result["reference"][2])[0])
    served = _handler_answer(entry, tmp_path, {"inputs": record})
    served_p = next(p["probability"] for p in served["predictions"] if p["label"] == "1")
    with _catalog_page(browser, entry, tmp_path / "site", engine) as page:
        choices = page.eval_on_selector_all(
            "select[data-input='thal'] option", "os => os.map(o => o.value)"
        )
        assert sorted(choices) == ["fixed", "normal", "reversible"]  # no [UNK]
        page.select_option("select[data-input='thal']", record["thal"])
        page.select_option("select[data-input='cp']", str(record["cp"]))
        page.fill("input[data-input='age']", repr(record["age"]))
        shown = _run(page)
        assert shown["probs"][1] == pytest.approx(expected, abs=1e-5)
        assert shown["probs"][1] == pytest.approx(served_p, abs=1e-5)
        # a recorded example of named inputs (text, integers, numbers) in one click
        shown = _run(page, "button.mkb-example[data-example='0']")
        assert shown["probs"][1] == pytest.approx(_example_output(entry, 0), abs=1e-5)


@pytest.mark.parametrize(
    ("program", "needs"),
    [
        ("torch_manual_loop.py", "onnxscript"),  # the manual API, features normalised one by one
        ("lightning_cli.py", "jsonargparse"),  # a LightningModule run by LightningCLI, pixels / 16
    ],
)
def test_torch_tabular_classifier_replays_its_steps_like_torch_and_the_handler(
    browser: Any, train: Train, engine: str, tmp_path: Path, program: str, needs: str
) -> None:
    """Raw values in the form's fields, the recorded steps replayed in the page; the same
    probabilities as PyTorch and the handler."""
    entry, result = train(program, "torch", needs)
    classes = entry.metadata["dataset"]["classes"]
    raw, expected = result["raw"][3], result["reference"][3]
    served = _handler_answer(entry, tmp_path, {"inputs": raw})
    served_p = [{p["label"]: p["probability"] for p in served["predictions"]}[c] for c in classes]
    with _catalog_page(browser, entry, tmp_path / "site", engine) as page:
        fields = page.locator("input.mkb-infer-feature")
        assert fields.count() == len(raw)
        for index, value in enumerate(raw):
            fields.nth(index).fill(repr(value))
        shown = _run(page)
        assert shown["probs"] == pytest.approx(expected, abs=1e-5)
        assert shown["probs"] == pytest.approx(served_p, abs=1e-5)


def test_lstm_pads_token_ids_at_the_front_like_keras_and_the_handler(
    browser: Any, train: Train, engine: str, tmp_path: Path
) -> None:
    """Token ids typed as a list, unpadded: the page pads them where pad_sequences did (the front)."""
    import json

    entry, result = train("keras_lstm_padded.py", "keras", "tf2onnx")
    ids = next(seq for seq in result["raw"] if len(seq) < 20)  # one that needs padding
    expected = float(np.ravel(result["reference"][result["raw"].index(ids)])[0])
    served = _handler_answer(entry, tmp_path, {"instances": [ids]})["results"][0]
    served_p = next(p["probability"] for p in served["predictions"] if p["label"] == "1")
    with _catalog_page(browser, entry, tmp_path / "site", engine) as page:
        page.fill("#mkb-infer-text", json.dumps(ids))
        shown = _run(page)
        assert shown["probs"][1] == pytest.approx(expected, abs=1e-5)
        assert shown["probs"][1] == pytest.approx(served_p, abs=1e-5)
