"""``modelkb reproduce``: re-run a bundle's captured code and compare every metric with the original."""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkb.bundle import LOCK_FILE, Bundle
from modelkb.reproducibility import ReproductionError
from modelkb.reproducibility.compare import DEFAULT_TOLERANCE, MetricComparison, compare_runs
from modelkb.reproducibility.envbuild import EnvBuildReport, build_locked_env, default_env_dir
from modelkb.reproducibility.rerun import KEEP_SEED, RerunResult, run_captured_code
from modelkb.store import Store

logger = logging.getLogger(__name__)

ENV_MODES = ("current", "locked")


@dataclass
class Reproduction:
    """The outcome of ``modelkb reproduce``.

    Attributes:
        original: The original run.
        rerun: The re-run (its ``bundle`` is the new experiment, linked by ``reproduces``).
        comparison: Every metric side by side, and the verdict.
        env_mode: ``current`` or ``locked``.
        env_report: What building the locked environment did (``locked`` only).
    """

    original: Bundle
    rerun: RerunResult
    comparison: MetricComparison
    env_mode: str
    env_report: EnvBuildReport | None = None

    @property
    def new_id(self) -> str:
        return self.rerun.bundle.id

    def as_dict(self) -> dict[str, Any]:
        return {
            "original": self.original.id,
            "reproduction": self.new_id,
            "command": self.rerun.command,
            "env": self.env_mode,
            "env_report": self.env_report.as_dict() if self.env_report else None,
            "seed": {
                "original": self.original.metadata.get("seed"),
                "reproduction": self.rerun.bundle.metadata.get("seed"),
            },
            **self.comparison.as_dict(),
        }


def reproduce(
    store: Store,
    experiment_id: str,
    *,
    env: str = "current",
    seed: int | str | None = KEEP_SEED,
    tolerance: float = DEFAULT_TOLERANCE,
    env_dir: str | Path | None = None,
    pip_args: list[str] | None = None,
    keep_workdir: bool = False,
    timeout: float | None = None,
) -> Reproduction:
    """Re-run an experiment's captured code and compare the new run with it.

    Args:
        store: The store holding the experiment; the reproduction is recorded there too.
        experiment_id: Id, unique prefix or name.
        env: ``current`` runs with this interpreter; ``locked`` first builds a virtual environment
            from the bundle's ``requirements.lock`` (kept under ``<store>/.modelkb/envs/<id>``).
        seed: ``"keep"`` (the bundle's seed), another int (a deliberate change), or ``None``.
        tolerance: Largest absolute metric difference counted as equal.
        env_dir: Where to build the locked environment.
        pip_args: Extra ``pip install`` arguments for the locked environment.
        keep_workdir: Keep the working copy of the code.
        timeout: Seconds before the training process is killed.

    Raises:
        ReproductionError: No captured code, no lockfile for ``locked``, or the re-run failed.
    """
    if env not in ENV_MODES:
        raise ValueError(f"Expected env to be one of {ENV_MODES}. Received: env={env!r}")
    original = store.get(experiment_id)
    python = None
    env_report = None
    if env == "locked":
        lockfile = original.file(LOCK_FILE)
        if not lockfile.is_file():
            raise ReproductionError(
                f"{original.id} has no {LOCK_FILE}; --env locked needs it",
                hint="Use --env current.",
            )
        recorded = (original.metadata.get("context") or {}).get("python")
        if recorded and recorded != platform.python_version():
            logger.warning(
                "the run used Python %s; the locked environment uses %s",
                recorded,
                platform.python_version(),
            )
        target = Path(env_dir) if env_dir else default_env_dir(store.root, original.id)
        env_report = build_locked_env(lockfile, target, pip_args=pip_args)
        python = env_report.python
    try:
        rerun = run_captured_code(
            store,
            original,
            python=python,
            seed=seed,
            reproduces=original.id,
            keep_workdir=keep_workdir,
            timeout=timeout,
        )
    except ReproductionError as err:
        if env_report is None or env_report.complete:
            raise
        raise ReproductionError(f"{err}\n{env_report.summary()}", hint=err.hint) from err
    comparison = compare_runs(original.metadata, rerun.bundle.metadata, tolerance=tolerance)
    if env_report is not None and env_report.failed:
        comparison.reasons.append(
            "locked environment incomplete: "
            + ", ".join(f["requirement"] for f in env_report.failed)
        )
    return Reproduction(original, rerun, comparison, env, env_report)
