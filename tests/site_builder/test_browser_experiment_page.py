"""An experiment page as a user reads it, in Chromium: a real PyTorch run trained through ModelKB's
``fit``, its summary header, its "Use this model" snippet run with onnxruntime, and its recorded
examples run in try-the-model; on each site engine. Screenshots: ``support.browser.save_screenshot``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.browser import save_screenshot, served_page

from modelkb.example_inputs import read_examples
from modelkb.site_builder.catalog import for_people
from modelkb.site_builder.run_summary import size_text
from modelkb.store import Store

pytestmark = pytest.mark.slow

STEPS = [
    {"op": "scale", "factor": 1 / 16, "source": "digits.images / 16.0"},
    {"op": "expand_dims", "axis": 1, "source": "x.unsqueeze(1)"},
]
"""What the program does to the raw digits, recorded as a user records it."""
SNIPPET_STEPS = (
    "#   x = x * 0.0625 # in training: digits.images / 16.0\n"
    "#   x = np.expand_dims(x, 1) # in training: x.unsqueeze(1)\n"
)
NO_BROKEN_IMAGES = """() => Array.from(document.images).filter(img =>
    !img.getAttribute('src') || (img.complete && img.naturalWidth === 0)).map(img => img.outerHTML)"""


@dataclass
class TrainedRun:
    store: Path
    folder: Path
    metadata: dict[str, Any]
    site: Path = Path()  # the catalog built from ``store`` by the test's engine
    engine: str = ""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """A small CNN trained on scikit-learn's digits with PytorchCallbacks (once per module)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    datasets = pytest.importorskip("sklearn.datasets")
    from torch import nn

    from modelkb import Experiment
    from modelkb.torch import Model, PytorchCallbacks

    root = tmp_path_factory.mktemp("experiment-page")
    digits = datasets.load_digits()
    x = torch.from_numpy((digits.images / 16.0).astype("float32")).unsqueeze(1)
    y = torch.from_numpy(digits.target)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    exp = Experiment("Digits page", "ada", seed=0, store=root / "store", capture_code=False)
    Model(net).fit(
        x[:600],
        y[:600],
        epochs=3,
        optimizer=torch.optim.Adam(net.parameters(), 1e-2),
        criterion=nn.CrossEntropyLoss(),
        validation_data=(x[600:800], y[600:800]),
        callbacks=[PytorchCallbacks(exp, dataset={"name": "digits", "preprocessing": STEPS})],
        verbose=0,
    )
    entry = Store(root / "store").get(exp.id)
    return TrainedRun(root / "store", entry.path, entry.metadata)


@pytest.fixture(scope="module")
def trained(trained_run: TrainedRun, engine: str) -> TrainedRun:
    """The trained run built into a catalog by ``engine`` (once per engine)."""
    from modelkb.site_builder.build import build_site

    site = trained_run.store.with_name(f"site-{engine}")
    build_site(Store(trained_run.store), site, zip_bundles=False, engine=engine)
    return dataclasses.replace(trained_run, site=site, engine=engine)


@pytest.fixture
def experiment_page(browser: Any, trained: TrainedRun) -> Iterator[Any]:
    with served_page(browser, trained.site, f"experiments/{trained.metadata['id']}/") as page:
        yield page


def _facts(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all(
        "#mkb-facts .mkb-fact",
        "fs => Object.fromEntries(fs.map(f => [f.dataset.fact, f.querySelector('dd').textContent]))",
    )


def test_summary_header_states_the_run_as_recorded(
    experiment_page: Any, trained: TrainedRun
) -> None:
    meta = trained.metadata
    facts = _facts(experiment_page)
    sizes = {a["path"]: a["size"] for a in meta["artifacts"]}
    val_accuracy = [(e["val"]["accuracy"], e["epoch"]) for e in meta["metrics"]["history"]]
    best, best_epoch = max(val_accuracy)
    onnx = meta["onnx"]
    assert facts == {
        "status": "completed",
        "framework": f"pytorch {meta['framework']['version']}",
        "dataset": "digits: image, x (None, 1, 8, 8)",
        "parameters": f"{meta['architecture']['parameter_count']:,}",
        "size": f"model.safetensors {size_text(sizes['model.safetensors'])} · "
        f"model.onnx {size_text(sizes['model.onnx'])}",
        "metric": f"val_accuracy {for_people(meta['metrics']['final']['val_accuracy'])}",
        "best_epoch": f"{best_epoch} (val_accuracy {for_people(best)})",
        "seed": "0",
        "parity": f"verified: max |Δ| {for_people(onnx['max_abs_diff'])} "
        f"({onnx['checked_on']}, {onnx['checked_samples']} samples)",
    }
    header = experiment_page.locator("#mkb-facts").inner_text()
    assert "None" not in header.replace("(None,", "") and "undefined" not in header


def test_use_this_model_snippet_runs_with_onnxruntime(
    experiment_page: Any, trained: TrainedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    np = pytest.importorskip("numpy")
    experiment_page.click("[data-tab='use']")
    code = experiment_page.locator("#mkb-use-python code").inner_text()
    # nothing was pushed, published or deployed: those parts are left out, not shown empty
    assert experiment_page.locator("#mkb-use-clone, #mkb-use-hub, #mkb-use-curl").count() == 0
    assert SNIPPET_STEPS in code  # the recorded steps the handler replays, as comments
    (tmp_path / "model.onnx").write_bytes((trained.folder / "model.onnx").read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(code, "snippet.py", "exec"), namespace)
    (graph_input,) = trained.metadata["onnx"]["inputs"]
    feed = namespace["feed"]
    assert list(feed) == [graph_input["name"]]
    wanted = [d if isinstance(d, int) else 1 for d in graph_input["shape"]]
    assert list(feed[graph_input["name"]].shape) == wanted
    assert feed[graph_input["name"]].dtype == np.dtype(graph_input["dtype"])
    assert namespace["outputs"][0].shape == (1, 10)


def test_an_example_runs_in_one_click_like_onnxruntime(
    experiment_page: Any, trained: TrainedRun
) -> None:
    np = pytest.importorskip("numpy")
    ort = pytest.importorskip("onnxruntime")
    page = experiment_page
    page.click("[data-tab='inference']")
    page.wait_for_selector("#mkb-infer[data-state='ready']", timeout=60_000)
    assert page.evaluate(NO_BROKEN_IMAGES) == []  # before any upload
    assert page.locator("#mkb-infer-preview").count() == 0
    examples = read_examples(trained.folder)
    buttons = page.locator("button.mkb-example")
    buttons.first.wait_for()
    assert buttons.count() == len(examples) == 4
    classes = trained.metadata["dataset"]["classes"]
    labels = page.eval_on_selector_all(".mkb-example-label", "ls => ls.map(l => l.textContent)")
    assert labels == [f"true label: {classes[e['label']]}" for e in examples]
    assert page.locator("canvas.mkb-example-image").count() == 4  # images drawn, not <img>
    save_screenshot(page, "experiment-examples", trained.engine, full_page=True)

    session = ort.InferenceSession(str(trained.folder / "model.onnx"))
    for index in (2, 0):
        buttons.nth(index).click()
        page.wait_for_selector("#mkb-infer[data-state='done']", timeout=30_000)
        shown = page.evaluate("window.ModelKBInferResult")
        feed = {
            name: np.asarray([row], dtype=np.float32)
            for name, row in examples[index]["inputs"].items()
        }
        logits = session.run(None, feed)[0][0].astype(np.float64)
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert shown["top"] == int(np.argmax(expected))
        assert np.allclose(shown["probs"], expected, atol=1e-5)
        assert page.locator("#mkb-infer-status").inner_text().startswith(f"Example {index + 1}")
    assert page.evaluate(NO_BROKEN_IMAGES) == []


def test_examples_file_of_the_site_is_small_and_fed_as_recorded(trained: TrainedRun) -> None:
    site_file = trained.site / "experiments" / trained.metadata["id"] / "examples.json"
    data = json.loads(site_file.read_text(encoding="utf-8"))
    assert site_file.stat().st_size < 8_000
    recorded = read_examples(trained.folder)
    first = data["examples"][0]["feeds"]["input"]
    assert first["dims"] == [1, 1, 8, 8] and first["dtype"] == "float32"
    flat = [v for row in recorded[0]["inputs"]["input"] for line in row for v in line]
    assert first["data"] == flat
