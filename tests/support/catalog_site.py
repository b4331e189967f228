"""The catalog tests' store: a real tiny trained model, a sweep, an XSS project and a corrupt bundle.

The store holds:

* ``digits``: a small PyTorch CNN trained for 2 epochs on scikit-learn's digits, exported to ONNX
  (``dynamo=True, external_data=False``), with its preprocessing recorded (``scale 1/16``);
* ``sweep``: synthetic runs with varied hyperparameters for the query and compare tests;
* one project whose title, notes, parameter names and values carry XSS payloads;
* one corrupt bundle (``metadata.json`` that is not JSON), which the build must skip.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelkb.experiment import Experiment
from modelkb.store import Store

PAYLOAD_SCRIPT = "<script>window.__xss=1;alert('xss')</script>"
PAYLOAD_ATTR = '"><img src=x onerror="window.__xss=1;alert(1)">'
XSS_PROJECT = f"Evil {PAYLOAD_SCRIPT} {PAYLOAD_ATTR}"


@dataclass
class SiteInfo:
    store: Path
    out: Path
    model_id: str
    sweep_ids: list[str]
    xss_id: str
    corrupt: Path
    digits_sample: Any  # an 8x8 digit (0..16) used as the inference test image
    engine: str = "mkdocs"  # the site engine the site at ``out`` was built with


def _train_digits(store: Store) -> tuple[str, Any]:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    datasets = pytest.importorskip("sklearn.datasets")
    import numpy as np

    torch.manual_seed(0)
    digits = datasets.load_digits()
    x = torch.tensor(digits.images[:1500, None, :, :] / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target[:1500])

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)
            self.fc = torch.nn.Linear(4 * 6 * 6, 10)

        def forward(self, inputs: Any) -> Any:
            hidden = torch.relu(self.conv(inputs)).flatten(1)
            return torch.softmax(self.fc(hidden), dim=1)

    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    exp = Experiment(
        "Digits torch",
        "ada",
        seed=0,
        store=store,
        notes="Tiny CNN for the catalog tests.",
        tags=["cnn", "test"],
        capture_code=False,
        capture_environment=False,
    )
    with exp:
        exp.set_framework("torch", torch.__version__.split("+")[0])
        exp.set_hyperparameters(
            optimizer={"name": "Adam", "config": {"lr": 0.01}},
            learning_rate=0.01,
            loss="cross_entropy",
            epochs=2,
            batch_size=64,
        )
        exp.set_dataset(
            kind="image",
            name="digits",
            shapes={"x": [None, 1, 8, 8], "y": [None]},
            classes=[str(d) for d in range(10)],
            preprocessing=[{"op": "scale", "factor": 1 / 16}],
        )
        exp.set_architecture(
            {
                "layers": [
                    {
                        "name": "conv",
                        "type": "Conv2d",
                        "params": 40,
                        "output_shape": [None, 4, 6, 6],
                    },
                    {"name": "fc", "type": "Linear", "params": 1450, "output_shape": [None, 10]},
                ],
                "parameter_count": 1490,
                "inputs": [{"name": "input", "shape": [None, 1, 8, 8], "dtype": "float32"}],
                "outputs": [{"name": "probabilities", "shape": [None, 10], "dtype": "float32"}],
            }
        )
        for epoch in range(2):
            for start in range(0, len(x), 64):
                optimizer.zero_grad()
                out = model(x[start : start + 64])
                loss = torch.nn.functional.nll_loss(torch.log(out + 1e-9), y[start : start + 64])
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                probs = model(x)
                acc = float((probs.argmax(1) == y).float().mean())
                val_loss = float(torch.nn.functional.nll_loss(torch.log(probs + 1e-9), y))
            exp.log_epoch(
                epoch, {"loss": float(loss), "accuracy": acc}, {"loss": val_loss, "accuracy": acc}
            )
        model.eval()
        batch = torch.export.Dim("batch", min=1, max=1024)
        torch.onnx.export(
            model,
            (x[:2],),
            str(exp.artifact_path("model.onnx")),
            dynamo=True,
            external_data=False,
            input_names=["input"],
            output_names=["probabilities"],
            dynamic_shapes=({0: batch},),
        )
    return exp.id, np.asarray(digits.images[1700])


def _synthetic(
    store: Store,
    project: str,
    *,
    epochs: int,
    optimizer: str,
    accuracy: float,
    user: str = "grace",
    notes: str | None = None,
    params: dict[str, Any] | None = None,
) -> str:
    exp = Experiment(
        project,
        user,
        seed=1,
        store=store,
        notes=notes,
        tags=["sweep"],
        capture_code=False,
        capture_environment=False,
    )
    with exp:
        exp.set_framework("keras", "3.15.1", backend="tensorflow")
        exp.set_hyperparameters(
            optimizer={"name": optimizer}, epochs=epochs, batch_size=32, learning_rate=0.001
        )
        if params:
            exp.log_params(params)
        for epoch in range(3):
            frac = (epoch + 1) / 3
            exp.log_epoch(
                epoch,
                {"loss": 1.5 - frac, "accuracy": accuracy * frac},
                {"loss": 1.6 - frac, "accuracy": accuracy * frac - 0.01},
            )
        exp.log_metrics({"accuracy": accuracy}, epoch=None)
    return exp.id


def build_store(root: Path) -> SiteInfo:
    """Write the store described above under ``root / "store"``; the site goes to ``root / "site"``."""
    store = Store(root / "store")
    model_id, sample = _train_digits(store)
    sweep = []
    for epochs, optimizer, accuracy in [
        (20, "Adam", 0.95),
        (5, "Adam", 0.97),
        (15, "SGD", 0.93),
        (12, "Adam", 0.85),
        (30, "adam", 0.92),
        (11, "RMSprop", 0.99),
    ]:
        sweep.append(
            _synthetic(store, "Sweep", epochs=epochs, optimizer=optimizer, accuracy=accuracy)
        )
    xss_id = _synthetic(
        store,
        XSS_PROJECT,
        epochs=3,
        optimizer=PAYLOAD_ATTR,
        accuracy=0.5,
        user=PAYLOAD_SCRIPT,
        notes=f"notes {PAYLOAD_SCRIPT} {PAYLOAD_ATTR}",
        params={PAYLOAD_ATTR: PAYLOAD_SCRIPT, "plain": PAYLOAD_ATTR},
    )
    corrupt = store.root / "sweep" / "01zzzzzzzzzzzzzzzzzzzzzzzz"
    corrupt.mkdir(parents=True)
    (corrupt / "metadata.json").write_text("{not json", encoding="utf-8")
    return SiteInfo(store.root, root / "site", model_id, sweep, xss_id, corrupt, sample)


# The search box and its results, per engine: mkdocs-material's is in the page, Zensical's is a
# button that opens a dialog in a shadow root (Playwright's CSS selectors reach into open ones).
_SEARCH = {
    "mkdocs": (None, "input.md-search__input", ".md-search-result__link"),
    "zensical": (
        "button.md-search__button",
        "dialog[aria-label='Search'] input[role='combobox']",
        "dialog[aria-label='Search'] a[role='option']",
    ),
}


def search_results(page: Any, engine: str, text: str) -> list[tuple[str, str]]:
    """Type ``text`` into the catalog's search; the results' ``(link, shown text)`` (at least one)."""
    opener, box_selector, result_selector = _SEARCH[engine]
    if opener is not None:
        page.locator(opener).click()
    box = page.locator(box_selector)
    box.click()
    box.press_sequentially(text, delay=20)  # the theme listens to key events, not just "input"
    page.wait_for_selector(result_selector, timeout=10_000)
    found = page.eval_on_selector_all(
        result_selector, "as => as.map(a => [a.getAttribute('href'), a.innerText])"
    )
    return [(href, shown) for href, shown in found]


def copy_site_store(info: SiteInfo, target: Path) -> Path:
    """A private copy of the test store (for tests that modify it)."""
    shutil.copytree(info.store, target, symlinks=True)
    return target


def read_json(path: Path) -> Any:
    """A JSON file the build wrote."""
    return json.loads(path.read_text(encoding="utf-8"))


def tiny_catalog(root: Path) -> Path:
    """A folder shaped like a built catalog (pages, hashed and unhashed assets, wasm, onnx)."""
    (root / "assets").mkdir(parents=True, exist_ok=True)
    (root / "runs").mkdir(exist_ok=True)
    (root / "index.html").write_text(
        "<!doctype html><title>catalog</title><h1>Runs</h1>", encoding="utf-8"
    )
    (root / "404.html").write_text("<!doctype html><title>missing</title>", encoding="utf-8")
    (root / "assets" / "app.3f9c2b7e.js").write_text("console.log('hi')", encoding="utf-8")
    (root / "assets" / "style.css").write_text("body{}", encoding="utf-8")
    (root / "assets" / "ort.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "search.json").write_text("[]", encoding="utf-8")
    (root / "runs" / "model.onnx").write_bytes(b"onnx-bytes")
    return root
