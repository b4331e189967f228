"""Reproducibility: re-run a bundle's captured code, repeat it with other seeds, fill its checklist.

Nothing here imports an ML framework: re-runs happen in a subprocess, and ``onnx`` is imported
only inside :func:`modelkb.reproducibility.flops.estimate_flops`.

Modules: :mod:`.rerun` (run the captured code), :mod:`.compare` (metric side-by-side),
:mod:`.reproduce`, :mod:`.repeat` (groups and ``group_statistics``), :mod:`.envbuild`
(virtual environment from ``requirements.lock``), :mod:`.checklist`, :mod:`.flops`.
"""

from __future__ import annotations

from modelkb.errors import ReproductionError

__all__ = ["ReproductionError"]
