"""Fixtures shared by the collector tests; plain helpers are in ``collector_checks``.

The folder is put on the path so that test modules can ``from collector_checks import sealed``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Two cores are shared with other suites: one intra-op thread keeps runs short and steady."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
