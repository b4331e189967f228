"""A full disk keeps the recorded epochs and says so.

A real PyTorch run (the demo's digits CNN through ``modelkb.torch.Model.fit``) trains into a store
on a small tmpfs whose free space was filled down to 8 KB or 40 KB first. The tmpfs is mounted in a
private user and mount namespace (``unshare -rm``), so the test needs no privileges and leaves
nothing mounted. After training, the filler is removed (space is back) and the store is copied
out; there it must hold the run with its status as it ended (``completed``) and all its epochs,
and the training output must say that the disk was full.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelkb.store import Store

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 3

pytestmark = pytest.mark.slow

_IN_NAMESPACE = r"""
set -e
mount -t tmpfs -o size=2048k tmpfs "$DISK"
avail=$(df -k --output=avail "$DISK" | tail -1)
dd if=/dev/zero of="$DISK/filler" bs=1k count=$((avail - FREE_KB)) status=none 2>/dev/null || true
cd "$WORK"
"$PYTHON" train.py --store "$DISK/store" --epochs "$EPOCHS" > "$WORK/out.txt" 2>&1 || echo "rc=$?" >> "$WORK/out.txt"
"$PYTHON" -c "$WAIT_FOR_SEALER"  # the run's background sealer works on the full disk too
rm -f "$DISK/filler"
cp -a "$DISK/store" "$WORK/store"
"""


_WAIT_FOR_SEALER = """
import os, time
def sealing():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")[1:2] == [b"train.py"]:
                return True
        except OSError:
            pass
    return False
deadline = time.monotonic() + 120
while sealing() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _train_on_a_full_disk(tmp_path: Path, free_kb: int) -> tuple[str, Path]:
    if not _namespaces_work():
        pytest.skip("needs unshare -rm with tmpfs mounts (util-linux, user namespaces)")
    work = tmp_path / "work"  # not a git checkout: run.json holds no diff of this repository
    work.mkdir()
    shutil.copy(ROOT / "examples" / "train_torch_digits.py", work / "train.py")
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(tmp_path),
        "DISK": str(disk),
        "WORK": str(work),
        "FREE_KB": str(free_kb),
        "EPOCHS": str(EPOCHS),
        "PYTHON": sys.executable,
        "WAIT_FOR_SEALER": _WAIT_FOR_SEALER,
        "PYTHONPATH": ":".join(p for p in sys.path if p),
    }
    subprocess.run(
        ["unshare", "-rm", "bash", "-c", _IN_NAMESPACE], env=env, check=True, timeout=300
    )
    return (work / "out.txt").read_text(encoding="utf-8"), work / "store"


@pytest.mark.parametrize("free_kb", [8, 24, 40])
def test_a_run_on_a_full_disk_keeps_its_epochs_and_status(tmp_path: Path, free_kb: int) -> None:
    output, store_path = _train_on_a_full_disk(tmp_path, free_kb)
    assert "rc=" not in output, output  # training itself never fails because of ModelKB
    assert "No space left on device" in output or "the disk is full" in output

    store = Store(store_path)
    store.reindex()
    [run] = store.search()
    bundle = store.get(run.id)
    assert bundle.metadata["status"] == "completed", bundle.metadata.get("warnings")
    history = bundle.metadata["metrics"]["history"]
    assert [e["epoch"] for e in history] == list(range(EPOCHS))
    assert all(e["train"].get("loss") is not None for e in history)
    if free_kb == 8:  # nothing but the run state fitted: the sealed run says where it went
        # (the detached sealer met the full disk; its report is the bundle's, not the console's)
        messages = [w["message"] for w in bundle.metadata["warnings"]]
        assert any("the disk was full" in m for m in messages), "\n".join(messages)
    sealed = json.loads((bundle.path / "metadata.json").read_text(encoding="utf-8"))
    assert sealed["status"] == "completed"
    assert not (bundle.path / "run.json").exists()
    assert not list(bundle.path.glob(".disk-reserve*"))
