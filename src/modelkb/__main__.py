"""``python -m modelkb`` runs the CLI."""

from __future__ import annotations

from modelkb.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
