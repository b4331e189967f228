"""One way to write a file in place: ``atomic_target``, whose temporary names the bundle reader skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelkb.fsutil import atomic_target, is_temp_file


@pytest.mark.parametrize("keep_suffix", [False, True])
def test_the_temporary_file_is_named_by_the_temp_rule_and_replaced_on_success(
    tmp_path: Path, keep_suffix: bool
) -> None:
    target = tmp_path / "sub" / "model.onnx"
    with atomic_target(target, keep_suffix=keep_suffix, mode=0o640) as tmp:
        assert tmp.parent == target.parent and is_temp_file(
            tmp.name
        )  # a kill now leaves a file readers skip
        assert tmp.suffix == (".onnx" if keep_suffix else ".tmp")
        tmp.write_bytes(b"onnx")
    assert target.read_bytes() == b"onnx" and os.stat(target).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx"]


def test_a_failed_writer_leaves_neither_the_target_nor_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    with (
        pytest.raises(RuntimeError, match="exporter broke"),
        atomic_target(target, keep_suffix=True) as tmp,
    ):
        tmp.write_bytes(b"half")
        raise RuntimeError("exporter broke")
    assert list(tmp_path.iterdir()) == []
