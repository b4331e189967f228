"""Shared test setup: helper modules on the path and the ``sample_metadata`` fixture.

Where a fixture cannot go (parametrize, hypothesis), ``from sample_run import sample_metadata``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(
    0, str(Path(__file__).parent)
)  # shared helpers (user_programs); tests use importlib mode

# huggingface_hub reads this once, when it is first imported, and any test module may be first
# (the card tests import it too). The local Hub the publishing tests start has no Xet endpoint.
os.environ["HF_HUB_DISABLE_XET"] = "1"

from sample_run import SAMPLE_ID, sample_metadata  # noqa: F401 - after the path is set; SAMPLE_ID re-exported


@pytest.fixture(name="sample_metadata")
def sample_metadata_fixture() -> dict[str, Any]:
    """A fresh realistic ``metadata.json`` dict (see :func:`sample_metadata`)."""
    return sample_metadata()
