"""A moto server on 127.0.0.1 for the tests that talk to AWS APIs (import the fixtures into a conftest)."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.processes import VENV_BIN, free_port, local_server


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """``moto_server -H 127.0.0.1 -p PORT`` for the session (skipped without moto[server])."""
    binary = VENV_BIN / "moto_server"
    if not binary.exists():
        found = shutil.which("moto_server")
        if found is None:
            pytest.skip("moto_server is not installed (pip install 'moto[server]')")
        binary = Path(found)
    port = free_port()
    with local_server([str(binary), "-H", "127.0.0.1", "-p", str(port)], port) as url:
        yield url


@pytest.fixture
def moto(moto_server: str) -> str:
    """The moto endpoint, reset to empty for this test."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=10).close()
    return moto_server
