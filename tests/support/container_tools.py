"""Locating the external tools the slow tests need (RIE, buildah/podman, mmdebstrap)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def rie_binary(tmp_root: Path) -> Path:
    """The RIE from $MODELKB_RIE / PATH / cache, else extracted from the aws-sam-cli wheel (pip download)."""
    from modelkb.errors import ContainerToolError
    from modelkb.serverless import rie

    found = rie.find_rie()
    if found:
        return found
    try:
        return rie.fetch_rie()
    except ContainerToolError as err:
        pytest.skip(
            f"the Lambda RIE is not available and could not be fetched from the aws-sam-cli wheel: {err}"
        )


def require_tools(*names: str) -> None:
    """Skip the test unless every command in ``names`` is on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        pytest.skip(
            f"missing tools: {', '.join(missing)} (apt-get install -y buildah podman runc "
            "mmdebstrap uidmap fuse-overlayfs slirp4netns)"
        )
