"""Make the working tree importable as ``modelkb`` without reinstalling after every edit.

The wheel maps ``src/modelkb`` and the root folders (``collector/``, ``site_builder/``, ...) into one
``modelkb`` namespace; an editable install cannot express that mapping for subpackages, so for
development this links the same layout into a folder and puts it on the venv's path.

Usage: ``python scripts/devlink.py`` (re-run after adding a file to ``src/modelkb``). With
``--no-pth`` only the folder is made, for a second checkout (a git worktree) that shares the venv:
run its tests with ``PYTHONPATH=<checkout>/.dev``.
"""

from __future__ import annotations

import os
import shutil
import site
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("collector", "site_builder", "serverless", "templates", "site", "examples")


def main() -> None:
    farm = ROOT / ".dev" / "modelkb"
    if farm.exists():
        shutil.rmtree(farm)
    farm.mkdir(parents=True)
    for entry in (ROOT / "src" / "modelkb").iterdir():
        os.symlink(entry, farm / entry.name)
    for name in SUBPACKAGES:
        os.symlink(ROOT / name, farm / name)
    if "--no-pth" in sys.argv[1:]:
        print(f"linked {farm}; use it with PYTHONPATH={farm.parent}")
        return
    pth = Path(site.getsitepackages()[0]) / "modelkb-dev.pth"
    pth.write_text(str(farm.parent) + "\n")
    print(f"linked {farm} via {pth} ({sys.executable})")


if __name__ == "__main__":
    main()
