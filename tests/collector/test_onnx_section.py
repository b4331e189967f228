"""The bundle's ``onnx`` section: one report format, recorded through ``Experiment.record_onnx``."""

from __future__ import annotations

from pathlib import Path

from modelkb.collector.onnx_check import CHECKED_ON, check_fields
from modelkb.experiment import Experiment

CHECK_RESULT = {
    "max_abs_diff": 2.5e-7,
    "opset": 18,
    "ir_version": 10,
    "inputs": [{"name": "input", "shape": ["batch", 64], "dtype": "float32"}],
    "outputs": [{"name": "output", "shape": ["batch", 10], "dtype": "float32"}],
    "checked_on": 6,  # verify_onnx counts the rows it compared
    "batch_dynamic": True,
}


def test_check_fields_name_the_runtime_and_count_the_rows() -> None:
    fields = check_fields(CHECK_RESULT)
    assert fields["checked_on"] == CHECKED_ON == "onnxruntime CPUExecutionProvider"
    assert fields["checked_samples"] == 6
    assert fields["max_abs_diff"] == 2.5e-7 and fields["batch_dynamic"] is True


def test_record_onnx_stores_the_section(tmp_path: Path) -> None:
    exp = Experiment("Digits", "alice", seed=1, store=tmp_path / "store", capture_code=False)
    exp.record_onnx({**check_fields(CHECK_RESULT), "path": "model.onnx", "exporter": "dynamo"})
    meta = exp.finish()
    assert meta["onnx"]["path"] == "model.onnx"
    assert meta["onnx"]["checked_samples"] == 6 and meta["onnx"]["exporter"] == "dynamo"
    assert not [w for w in meta["warnings"] if w["source"] == "onnx"]


def test_a_report_the_format_cannot_hold_is_a_warning(tmp_path: Path) -> None:
    exp = Experiment("Digits", "alice", seed=1, store=tmp_path / "store", capture_code=False)
    exp.record_onnx({"path": "model.onnx", "checked_on": 8})  # a count where a name belongs
    exp.record_onnx({"checked_on": CHECKED_ON})  # no path
    meta = exp.finish()
    assert "onnx" not in meta
    messages = [w["message"] for w in meta["warnings"] if w["source"] == "onnx"]
    assert len(messages) == 2 and all("recording the ONNX check failed" in m for m in messages)
    assert "onnx.checked_on" in messages[0] and "'path'" in messages[1]
