"""``import modelkb`` and ``modelkb --help`` load no heavy optional dependency."""

from __future__ import annotations

import subprocess
import sys

HEAVY = [
    "torch",
    "tensorflow",
    "keras",
    "boto3",
    "botocore",
    "huggingface_hub",
    "mkdocs",
    "zensical",
    "onnx",
    "onnxruntime",
    "jsonschema",
    "fastjsonschema",
]

CHECK = """
import sys
import modelkb, modelkb.cli
from modelkb import Experiment, Store
from modelkb.cli import cli, main
try:
    main(["--help"])
except SystemExit:
    pass
try:
    main(["ls", "--help"])
except SystemExit:
    pass
heavy = %r
print("HEAVY:" + ",".join(sorted(m for m in heavy if m in sys.modules)))
"""


def test_import_and_help_stay_light() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK % HEAVY], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.strip().splitlines()[-1].removeprefix("HEAVY:")
    assert loaded == "", f"loaded heavy modules: {loaded}"
    assert "Commands" in done.stdout and "query" in done.stdout
