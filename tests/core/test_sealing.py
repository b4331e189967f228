"""The end-of-run work of a PyTorch run (ONNX export and its check) runs in a background sealer,
off the training process: real training programs, run as users run them (``tests/programs``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from support.user_programs import run_program

from modelkb import Store
from modelkb.bundle import METADATA_FILE, RUN_STATE_FILE, read_bundle, wait_sealed

pytestmark = pytest.mark.slow


def _modelkb(*args: str) -> subprocess.CompletedProcess[str]:
    from support.user_programs import program_env

    return subprocess.run(
        [sys.executable, "-c", "from modelkb.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=program_env(),
        timeout=300,
    )


def test_a_script_that_exits_right_after_fit_gets_its_verified_onnx_from_the_sealer(
    tmp_path: Path,
) -> None:
    written = run_program("torch_sealing.py", tmp_path / "store", tmp_path)
    (run_id,) = written["ids"]
    assert written["sealer_pids"][0] not in (None, written["training_pid"])
    assert written["exporter_loaded"] == [False]  # the export never ran in the training process
    folder = next((tmp_path / "store").glob(f"*/{run_id}"))
    if not (folder / METADATA_FILE).exists():  # still sealing: the run is already `completed`
        assert read_bundle(folder).status == "completed"
    metadata = wait_sealed(folder)
    assert metadata["status"] == "completed" and "sealing" not in metadata
    assert metadata["onnx"]["max_abs_diff"] < 1e-4 and (folder / "model.onnx").is_file()
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
    assert metadata["warnings"] == [] and not (folder / RUN_STATE_FILE).exists()
    assert Store(tmp_path / "store").get(run_id).metadata["onnx"] == metadata["onnx"]


def test_a_killed_sealer_leaves_a_completed_run_that_modelkb_seal_finishes(tmp_path: Path) -> None:
    written = run_program("torch_sealing.py", tmp_path / "store", tmp_path, "--kill-sealer")
    (run_id,) = written["ids"]
    folder = next((tmp_path / "store").glob(f"*/{run_id}"))
    bundle = read_bundle(folder)
    assert not bundle.sealed and bundle.status == "completed" and not bundle.live
    done = _modelkb("seal", run_id[:10], "--store", str(tmp_path / "store"))
    assert done.returncode == 0, done.stderr
    assert f"{run_id} sealed [completed], 1 warning(s)" in done.stdout
    metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    assert metadata["status"] == "completed" and "onnx" not in metadata
    assert "background sealer stopped" in metadata["warnings"][0]["message"]
    assert not (folder / "model.onnx").exists() and (folder / "model.safetensors").is_file()
    assert len(metadata["metrics"]["history"]) == 2


def test_the_next_command_seals_a_run_whose_sealer_died(tmp_path: Path) -> None:
    written = run_program("torch_sealing.py", tmp_path / "store", tmp_path, "--kill-sealer")
    listed = _modelkb("ls", "--store", str(tmp_path / "store"), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert [run["status"] for run in json.loads(listed.stdout)] == ["completed"]
    folder = next((tmp_path / "store").glob(f"*/{written['ids'][0]}"))
    assert (folder / METADATA_FILE).is_file()


def test_a_failing_export_is_a_warning_of_the_sealed_run(tmp_path: Path) -> None:
    written = run_program("torch_sealing.py", tmp_path / "store", tmp_path, "--failing-export")
    metadata = Store(tmp_path / "store").get(written["ids"][0]).metadata  # waits for the sealer
    assert metadata["status"] == "completed" and "onnx" not in metadata
    messages = " ".join(w["message"] for w in metadata["warnings"])
    assert "exporting model.onnx failed" in messages and "svdvals" in messages


def test_a_long_lived_process_goes_on_while_its_runs_are_sealed(tmp_path: Path) -> None:
    """A notebook's kernel: each fit returns before its export, and both runs are sealed."""
    written = run_program("torch_sealing.py", tmp_path / "store", tmp_path, "--twice")
    assert written["exporter_loaded"] == [False, False] and written["sealed"] == [True, True]
    assert len(set(written["sealer_pids"])) == 2


def test_a_keras_run_is_exported_by_a_process_that_loads_model_keras(tmp_path: Path) -> None:
    pytest.importorskip("tf2onnx")
    written = run_program("keras_sealing.py", tmp_path / "store", tmp_path)
    assert written["sealer_pid"] not in (None, written["training_pid"])
    assert (
        written["exporter_loaded"] == []
    )  # neither tf2onnx nor onnxruntime in the training process
    metadata = Store(tmp_path / "store").get(written["id"]).metadata  # waits for the sealer
    assert metadata["status"] == "completed" and metadata["warnings"] == []
    assert metadata["onnx"]["max_abs_diff"] < 1e-4 and metadata["onnx"]["sample"] == "data"
    folder = next((tmp_path / "store").glob(f"*/{written['id']}"))
    assert sorted(p.name for p in folder.glob(".*")) == []  # the sealer's sample file is gone
    _assert_digit_examples(folder)


def _assert_digit_examples(folder: Path) -> None:
    """The program's first training rows and their labels are the run's example inputs."""
    np = pytest.importorskip("numpy")
    from sklearn.datasets import load_digits

    from modelkb.example_inputs import MAX_EXAMPLES, read_examples

    digits = load_digits()
    examples = read_examples(folder)
    assert [e["label"] for e in examples] == digits.target[:MAX_EXAMPLES].tolist()
    rows = np.asarray([next(iter(e["inputs"].values())) for e in examples], dtype=np.float32)
    assert np.array_equal(rows, (digits.data[:MAX_EXAMPLES] / 16.0).astype("float32"))


def test_a_keras_model_with_a_layer_of_the_script_is_sealed_in_its_process(tmp_path: Path) -> None:
    pytest.importorskip("tf2onnx")
    written = run_program("keras_sealing.py", tmp_path / "store", tmp_path, "--custom-layer")
    assert written["sealer_pid"] is None and "tf2onnx" in written["exporter_loaded"]
    entry = Store(tmp_path / "store").get(written["id"])
    assert entry.metadata["onnx"]["max_abs_diff"] < 1e-4 and entry.metadata["warnings"] == []
    _assert_digit_examples(entry.path)
