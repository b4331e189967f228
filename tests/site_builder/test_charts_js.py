"""``site/js/charts.js``'s number format agrees with the pages' ``for_people`` (run in Node)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from modelkb.site_builder.pages import for_people

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

CHARTS_JS = Path(str(resources.files("modelkb.site") / "js" / "charts.js"))
RUNNER = r"""
const C = require(process.argv[1]).ModelKBCharts;
const values = JSON.parse(require('fs').readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(values.map(C.forPeople)));
"""
VALUES = [
    0.95833333333333334,
    1024,
    1000,
    9999.6,
    12345.6,
    -12345.678,
    123.456,
    1.0,
    0.1 + 0.2,
    2.718281828,
    -0.5,
    0,
    0.001,
    0.0001,
    0.000099996,
    0.00012345,
    3e-5,
    1e-07,
    1e21,
    5e-324,
]


def test_for_people_is_the_same_number_in_both_languages() -> None:
    shown = json.loads(
        subprocess.run(
            [NODE, "-e", RUNNER, str(CHARTS_JS)],
            input=json.dumps(VALUES),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    # Python pads the exponent to two digits (1e+04), JavaScript does not (1e+4).
    expected = [re.sub(r"e([+-])0(\d)", r"e\1\2", for_people(v)) for v in VALUES]
    assert shown == expected
