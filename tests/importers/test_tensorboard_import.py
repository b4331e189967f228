"""``modelkb import tensorboard``: real logs from Keras' TensorBoard callback and torch's
SummaryWriter become bundles whose every value equals what TensorBoard's own reader reads back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelkb.cli import main
from modelkb.importers.runs import MAX_HISTORY
from modelkb.store import Store

PROGRAM = Path(__file__).resolve().parents[1] / "programs" / "tensorboard_logs.py"
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _write_logs(logdir: Path, points: int = 0) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELKB_")}
    done = subprocess.run(
        [sys.executable, str(PROGRAM), str(logdir), str(points)],
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("tb") / "logs"
    _write_logs(logdir)
    return logdir


def _reference(folder: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value}, as TensorBoard's EventAccumulator reads the folder."""
    from tensorboard.util import tensor_util

    accumulator = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    found: dict[str, dict[int, float]] = {}
    for tag in accumulator.Tags()["scalars"]:
        found[tag] = {e.step: e.value for e in accumulator.Scalars(tag)}
    for tag in accumulator.Tags()["tensors"]:
        values = {
            e.step: tensor_util.make_ndarray(e.tensor_proto) for e in accumulator.Tensors(tag)
        }
        if all(v.shape == () and v.dtype.kind in "fiu" for v in values.values()):
            found[tag] = {step: float(v) for step, v in values.items()}
    return found


def _reference_hparams(folder: Path) -> dict[str, object]:
    from tensorboard.plugins.hparams import plugin_data_pb2

    accumulator = event_accumulator.EventAccumulator(str(folder))
    accumulator.Reload()
    hparams: dict[str, object] = {}
    for content in accumulator.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        for name, value in data.session_start_info.hparams.items():
            hparams[name] = getattr(value, value.WhichOneof("kind"))
    return hparams


def _by_name(store: Store) -> dict[str, dict]:
    return {run.flat["name"]: store.get(run.id).metadata for run in store.search()}


@pytest.mark.slow
def test_every_value_equals_tensorboards_own_reading(
    logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "store"
    main(["import", "tensorboard", str(logs), "--store", str(store_path)])
    assert capsys.readouterr().out.count("imported ") == 2
    runs = _by_name(Store(store_path))

    keras_run = runs["keras_iris"]
    assert (
        keras_run["imported"]["from"] == "tensorboard" and keras_run["imported"]["axis"] == "epoch"
    )
    history = {entry["epoch"]: entry for entry in keras_run["metrics"]["history"]}
    compared = 0
    for folder, split in (("train", "train"), ("validation", "val")):
        for tag, values in _reference(logs / "keras_iris" / folder).items():
            if not tag.startswith("epoch_"):
                continue
            for step, value in values.items():
                assert history[step][split][tag.removeprefix("epoch_")] == value
                compared += 1
    assert compared >= 3 * 4  # loss, accuracy (train, val) and the learning rate, 3 epochs
    assert keras_run["metrics"]["final"]["val_loss"] == history[2]["val"]["loss"]
    assert "hyperparameters" in keras_run["imported"]["not_recorded"]

    torch_run = runs["torch_iris"]
    assert torch_run["imported"]["axis"] == "step"
    steps = {entry["step"]: entry for entry in torch_run["metrics"]["history"]}
    reference = _reference(logs / "torch_iris")
    assert {step: e["train"]["Loss"] for step, e in steps.items()} == reference["Loss/train"]
    assert {s: e["test"]["Loss"] for s, e in steps.items() if "test" in e} == reference["Loss/test"]
    [hparams_folder] = [p for p in (logs / "torch_iris").iterdir() if p.is_dir()]
    assert torch_run["hyperparameters"]["params"] == _reference_hparams(hparams_folder)
    assert torch_run["hyperparameters"]["learning_rate"] == 0.1
    assert (
        torch_run["metrics"]["final"]["final_loss"]
        == _reference(hparams_folder)["hparam/final_loss"][0]
    )


@pytest.fixture
def imported(logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A store the logs were imported into; returns its folder."""
    store_path = tmp_path / "store"
    main(["import", "tensorboard", str(logs), "--store", str(store_path)])
    capsys.readouterr()
    return store_path


@pytest.mark.slow
def test_importing_again_adds_nothing(
    logs: Path, imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = imported
    main(["import", "tensorboard", str(logs), "--store", str(store_path)])
    assert capsys.readouterr().out.count("already imported: ") == 2
    assert len(Store(store_path).search()) == 2


@pytest.mark.slow
def test_imported_runs_are_listed_queried_and_compared(
    imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = imported
    query = "imported.from = tensorboard && val_loss > 0"
    main(["query", query, "--format", "csv", "-c", "name", "--store", str(store_path)])
    assert capsys.readouterr().out.split() == ["name", "keras_iris"]  # torch's run has no val_loss
    ids = [run.id for run in Store(store_path).search()]
    main(["compare", *ids, "--store", str(store_path)])
    assert "imported.axis" in capsys.readouterr().out


def _import_command(logdir: Path, store: Path) -> subprocess.CompletedProcess[str]:
    """``modelkb import tensorboard`` as a user runs it, in a fresh process."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "modelkb",
            "import",
            "tensorboard",
            str(logdir),
            "--store",
            str(store),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_folder_without_event_files_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "tfevents.py").write_text("# a module, not an event file", encoding="utf-8")
    done = _import_command(tmp_path, tmp_path / "s")
    assert done.returncode == 1
    assert "holds no TensorBoard event files" in done.stderr and "Traceback" not in done.stderr


def test_a_corrupt_event_file_is_reported_and_nothing_is_half_imported(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "broken"
    run.mkdir(parents=True)
    (run / "events.out.tfevents.1.host").write_bytes(os.urandom(4096))
    done = _import_command(tmp_path / "logs", tmp_path / "s")
    assert done.returncode == 1, done.stderr
    assert "not an event file" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    leftovers = [
        p for p in (tmp_path / "s").rglob("*") if p.is_file() and ".modelkb" not in p.parts
    ]
    assert leftovers == []
    incoming = tmp_path / "s" / ".modelkb" / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())


@pytest.mark.slow
def test_a_run_with_100000_points_keeps_10000_and_says_so(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    _write_logs(logdir, points=100_000)
    store_path = tmp_path / "store"
    main(["import", "tensorboard", str(logdir / "long_run"), "--store", str(store_path)])
    [run] = Store(store_path).search()
    metadata = Store(store_path).get(run.id).metadata
    history = metadata["metrics"]["history"]
    assert len(history) == MAX_HISTORY and history[-1]["step"] == 99_999
    assert metadata["imported"]["points"] == 100_000
    assert any("kept 10,000 of 100,000" in w["message"] for w in metadata["warnings"])
    lines = (Path(Store(store_path).get(run.id).path) / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == MAX_HISTORY and json.loads(lines[-1])["step"] == 99_999
