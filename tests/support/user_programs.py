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


def run_program(program: str, store: Path, workdir: Path) -> dict[str, Any]:
    """Run ``programs/<program>`` recording into ``store``; returns what it wrote."""
    written = workdir / f"{Path(program).stem}.json"
    done = subprocess.run(
        [sys.executable, str(PROGRAMS / program), str(store), str(written)],
        cwd=workdir,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise AssertionError(f"{program} failed:\n{done.stderr[-3000:]}")
    return json.loads(written.read_text(encoding="utf-8"))
