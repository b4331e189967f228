"""Fixtures for the catalog tests: a store with a real tiny trained model, a built site, Chromium.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelkb.experiment import Experiment
from modelkb.store import Store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
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


@pytest.fixture(scope="session")
def site_info(tmp_path_factory: pytest.TempPathFactory) -> SiteInfo:
    """A store with real and synthetic runs, built into a site once per session."""
    from modelkb.site_builder.build import build_site

    info = build_store(tmp_path_factory.mktemp("catalog"))
    build_site(Store(info.store), info.out)
    return info


@pytest.fixture(scope="session")
def site_url(site_info: SiteInfo) -> Iterator[str]:
    from modelkb.site_builder.serve import serve_in_thread

    server, url = serve_in_thread(site_info.out)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class PageWatch:
    """Everything a page did that a test must check: console errors, foreign requests, dialogs."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.dialogs: list[str] = []
        page.on(
            "console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None
        )
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.on(
            "request",
            lambda req: (
                None
                if req.url.startswith((origin, "data:", "blob:"))
                else self.foreign.append(req.url)
            ),
        )

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)

    def assert_clean(self) -> None:
        assert self.foreign == [], f"requests left the site's origin: {self.foreign}"
        assert self.errors == [], f"console errors: {self.errors}"
        assert self.dialogs == [], f"dialogs opened (script ran?): {self.dialogs}"


@pytest.fixture
def page(browser: Any, site_url: str) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    pg = context.new_page()
    pg.watch = PageWatch(pg, site_url.rstrip("/"))
    yield pg
    context.close()


@contextmanager
def served_page(browser: Any, site: Path, path: str) -> Iterator[Any]:
    """``path`` of the built ``site``, served on 127.0.0.1, in a fresh browser context; the page
    must stay clean (``PageWatch``) to the end of the block."""
    from modelkb.site_builder.serve import serve_in_thread

    server, url = serve_in_thread(site)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.watch = PageWatch(page, url.rstrip("/"))
        page.goto(url + path)
        yield page
        page.watch.assert_clean()
    finally:
        context.close()
        server.shutdown()
        server.server_close()


def copy_site_store(info: SiteInfo, target: Path) -> Path:
    """A private copy of the test store (for tests that modify it)."""
    shutil.copytree(info.store, target, symlinks=True)
    return target


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
