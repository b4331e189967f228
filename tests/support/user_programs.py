"""Run the user-shaped training programs of ``tests/programs/`` (shared by the serving and catalog tests).

Each program is a well-known public recipe with offline data and ModelKB's two lines. It is run
as a script (so ModelKB reads its source as it reads a user's), with the store and an output file
as arguments, and writes ``{"id", "raw", "reference"}``: raw held-out inputs and the framework's
own prediction on them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


def program_env() -> dict[str, str]:
    """The environment a user's program runs in: the tests' own, without their inline sealing
    (a program's PyTorch run is sealed in the background, as a user's is)."""
    return {k: v for k, v in os.environ.items() if k != "MODELKB_SEAL"}


def run_program(program: str, store: Path, workdir: Path, *args: str) -> dict[str, Any]:
    """Run ``programs/<program>`` recording into ``store`` (``args`` after the two paths); returns
    what it wrote."""
    written = workdir / f"{Path(program).stem}.json"
    done = subprocess.run(
        [sys.executable, str(PROGRAMS / program), str(store), str(written), *args],
        cwd=workdir,
        env={**program_env(), "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise AssertionError(f"{program} failed:\n{done.stderr[-3000:]}")
    return json.loads(written.read_text(encoding="utf-8"))
