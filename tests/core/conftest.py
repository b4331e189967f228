"""Fixtures for the core tests: isolated stores and quick framework-free runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.runs import write_run

from modelkb.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def make_run():
    """The :func:`support.runs.write_run` helper."""
    return write_run
