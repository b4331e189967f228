"""Shared test setup: the environment every test starts from and the ``sample_metadata`` fixture.

Helpers shared by several folders live in ``tests/support`` (``from support.sample_run import
sample_metadata`` where a fixture cannot go: parametrize, hypothesis).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from support.sample_run import sample_metadata

# huggingface_hub reads this once, when it is first imported, and any test module may be first
# (the card tests import it too). The local Hub the publishing tests start has no Xet endpoint.
os.environ["HF_HUB_DISABLE_XET"] = "1"
# Runs trained inside the pytest process are sealed in it: a forked sealer would copy pytest (and
# TensorFlow, loaded by other tests) and the tests read the bundle right after `fit`. Programs run
# as subprocesses (support.user_programs) and tests/core/test_sealing.py use the default, a
# background sealer.
os.environ["MODELKB_SEAL"] = "inline"


@pytest.fixture(autouse=True)
def team_store_caches_in_the_test_folder(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A team store (``s3://`` store) caches its runs in ``$MODELKB_CACHE``: never the user's
    ``~/.cache`` from a test (a test that needs its own sets it again)."""
    monkeypatch.setenv("MODELKB_CACHE", str(tmp_path_factory.mktemp("modelkb-cache")))


@pytest.fixture(name="sample_metadata")
def sample_metadata_fixture() -> dict[str, Any]:
    """A fresh realistic ``metadata.json`` dict (see :func:`support.sample_run.sample_metadata`)."""
    return sample_metadata()
