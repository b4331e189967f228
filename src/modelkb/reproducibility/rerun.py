"""Re-run a bundle's captured training code in a fresh working folder, in a subprocess.

The entry script from ``code/`` runs with the original command line (``context.command``; redacted
values stay redacted), ``--store`` (when the command has one) and ``$MODELKB_HOME`` pointing at the
same store, and the links and seed passed through ``MODELKB_REPRODUCES`` / ``MODELKB_GROUP`` /
``MODELKB_SEED_OVERRIDE``, which :class:`modelkb.Experiment` reads.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkb.bundle import CODE_DIR, METADATA_FILE, Bundle, read_bundle
from modelkb.reproducibility import ReproductionError
from modelkb.store import Store

logger = logging.getLogger(__name__)

KEEP_SEED = "keep"
"""Seed argument meaning "the bundle's own seed"."""

# Recorded variables that change numerics or threading; re-applied so the re-run sees them too.
_REPLAYED_PREFIXES = ("OMP_", "MKL_", "OPENBLAS_", "TF_", "PYTORCH_", "TORCH_")
_REPLAYED_NAMES = frozenset(
    {"CUBLAS_WORKSPACE_CONFIG", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "XLA_FLAGS"}
)
_LINK_VARIABLES = ("MODELKB_REPRODUCES", "MODELKB_GROUP", "MODELKB_SEED_OVERRIDE")
_TAIL_LINES = 25


@dataclass
class RerunResult:
    """What a re-run produced.

    Attributes:
        bundle: The new run's bundle.
        command: The command that was run.
        workdir: The working folder (deleted afterwards unless kept).
        returncode: Exit status of the training process.
        output_tail: The last lines of its output.
        env: The variables set for it on top of the inherited environment.
    """

    bundle: Bundle
    command: list[str]
    workdir: str
    returncode: int
    output_tail: str
    env: dict[str, str] = field(default_factory=dict)


def rerun_command(bundle: Bundle, entry: Path, store_root: Path, *, python: str) -> list[str]:
    """The command line of the re-run: ``python <entry> <original args>`` with ``--store`` replaced."""
    meta = bundle.metadata
    code = meta.get("code") or {}
    argv = list((meta.get("context") or {}).get("command") or [])
    args = [] if code.get("notebook") or not argv else [str(a) for a in argv[1:]]
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            out.append(str(store_root))
            skip = False
        elif arg == "--store":
            out.append(arg)
            skip = True
        elif arg.startswith("--store="):
            out.append(f"--store={store_root}")
        else:
            out.append(arg)
    return [python, str(entry), *out]


def replayed_env(bundle: Bundle) -> dict[str, str]:
    """Recorded threading/numerics variables of the original run (redacted ones are left out)."""
    recorded = ((bundle.metadata.get("context") or {}).get("env")) or {}
    return {
        name: str(value)
        for name, value in recorded.items()
        if value is not None
        and "REDACTED" not in str(value)
        and (name in _REPLAYED_NAMES or name.startswith(_REPLAYED_PREFIXES))
        and name != "TF_CLI_CONFIG_FILE"
    }


def prepare_workdir(
    bundle: Bundle, workdir: str | os.PathLike[str] | None = None
) -> tuple[Path, Path]:
    """Copy ``code/`` into a fresh folder; returns ``(workdir, entry script)``.

    Raises:
        ReproductionError: The bundle has no captured code or no entry script.
    """
    code = bundle.metadata.get("code") or {}
    source = bundle.path / CODE_DIR
    entry_name = code.get("entry")
    if not entry_name or not (source / entry_name).is_file():
        raise ReproductionError(
            f"{bundle.id} has no captured training code to re-run (code.entry={entry_name!r})",
            hint="Record runs with Experiment(..., capture_code=True) (the default).",
        )
    folder = (
        Path(workdir)
        if workdir is not None
        else Path(tempfile.mkdtemp(prefix=f"modelkb-rerun-{bundle.id[:10]}-"))
    )
    shutil.copytree(source, folder, dirs_exist_ok=True)
    return folder, folder / entry_name


def run_captured_code(
    store: Store,
    bundle: Bundle,
    *,
    python: str | None = None,
    seed: int | str | None = KEEP_SEED,
    reproduces: str | None = None,
    group: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    keep_workdir: bool = False,
    timeout: float | None = None,
) -> RerunResult:
    """Run the bundle's captured code once and return the run it recorded.

    Args:
        store: The store the original lives in; the re-run records into it.
        bundle: The original run.
        python: Interpreter to run with (default: the one running ModelKB).
        seed: ``"keep"`` for the bundle's seed, an int for another one, ``None`` for an unseeded run.
        reproduces: Recorded as the new run's ``reproduces``.
        group: Recorded as the new run's ``group``.
        extra_env: More variables for the training process.
        keep_workdir: Keep the working folder (for debugging).
        timeout: Seconds before the training process is killed.

    Raises:
        ReproductionError: The training process failed, or no new run appeared in the store.
    """
    workdir, entry = prepare_workdir(bundle)
    command = rerun_command(bundle, entry, store.root, python=python or sys.executable)
    chosen = bundle.metadata.get("seed") if seed == KEEP_SEED else seed
    env_vars = {**replayed_env(bundle), "MODELKB_HOME": str(store.root)}
    env_vars["MODELKB_SEED_OVERRIDE"] = "none" if chosen is None else str(int(chosen))
    if reproduces:
        env_vars["MODELKB_REPRODUCES"] = reproduces
    if group:
        env_vars["MODELKB_GROUP"] = group
    env_vars.update(extra_env or {})
    env = {k: v for k, v in os.environ.items() if k not in _LINK_VARIABLES}
    env.update(env_vars)
    project_dir = bundle.path.parent
    before = {p.name for p in project_dir.iterdir()} if project_dir.is_dir() else set()
    logger.info("re-running %s in %s: %s", bundle.id, workdir, " ".join(command))
    try:
        done = subprocess.run(
            command,
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise ReproductionError(
            f"the re-run of {bundle.id} took longer than {timeout} s",
            hint="Pass a larger --timeout.",
        ) from err
    finally:
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-_TAIL_LINES:])
    if done.returncode != 0:
        raise ReproductionError(
            f"the re-run of {bundle.id} exited with status {done.returncode}:\n{tail}",
            hint="Run with --keep-workdir to inspect the copied code.",
        )
    new = _find_new_run(project_dir, before, reproduces=reproduces, group=group)
    if new is None:
        raise ReproductionError(
            f"the re-run of {bundle.id} finished but recorded no new run in {project_dir}",
            hint="Does the script pass a fixed store= to Experiment? It must honour --store or $MODELKB_HOME.",
        )
    store.record(new.path)
    return RerunResult(new, command, str(workdir), done.returncode, tail, env_vars)


def _find_new_run(
    project_dir: Path, before: set[str], *, reproduces: str | None, group: str | None
) -> Bundle | None:
    """The sealed run that appeared in ``project_dir`` and carries the expected links."""
    found: list[Bundle] = []
    for folder in sorted(project_dir.iterdir()) if project_dir.is_dir() else []:
        if folder.name in before or not (folder / METADATA_FILE).is_file():
            continue
        try:
            candidate = read_bundle(folder, validate=False)
        except (OSError, ValueError) as err:
            logger.warning("skipped %s: %s", folder, err)
            continue
        meta: dict[str, Any] = candidate.metadata
        if (reproduces is None or meta.get("reproduces") == reproduces) and (
            group is None or meta.get("group") == group
        ):
            found.append(candidate)
    return found[-1] if found else None
