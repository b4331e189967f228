"""Sealing a run after training returns: the slow end-of-run work off the training process's path.

When ``fit`` returns, the run's bundle has everything but what takes seconds (the PyTorch ONNX
export and its onnxruntime check). :func:`seal_in_background` records the run as ended
(``status`` set, ``sealing: "in progress"`` in ``run.json``), then forks twice: a detached
grandchild (its own session, output to ``/dev/null``) writes ``run.json`` with its own process id,
tells the parent it has, does the work and seals the bundle; the parent goes on at once and may
exit. Nothing runs a second copy of the user's code: the child is the same process image.

Readers see the run as its final status with ``sealing`` set while the sealer lives
(:func:`modelkb.bundle.read_bundle`); a sealer that died leaves the bundle to be sealed by the next
command that scans the store, or ``modelkb seal ID``, with a warning that the work did not finish.
``MODELKB_SEAL=inline`` (or a platform without ``fork``) does the work in the training process.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelkb.bundle import SEALING_IN_PROGRESS

if TYPE_CHECKING:
    from modelkb.experiment import Experiment

logger = logging.getLogger(__name__)


def background_sealing_enabled() -> bool:
    """Whether this process can seal in a forked child (``MODELKB_SEAL=inline`` turns it off)."""
    return hasattr(os, "fork") and os.environ.get("MODELKB_SEAL", "").lower() != "inline"


def seal_in_background(
    experiment: Experiment,
    work: Callable[[], None],
    status: str = "completed",
    *,
    after_fork: Callable[[], None] | None = None,
) -> int | None:
    """Run ``work()`` then ``experiment.finish(status)`` in a detached child; returns its pid.

    ``after_fork`` runs first in the child: what makes the framework usable after a fork (PyTorch's
    OpenMP pool deadlocks in a forked child unless it runs one thread, as DataLoader workers do).
    Returns ``None`` (and does nothing) when background sealing is off or the fork fails; the
    caller then does the work inline.
    """
    if not background_sealing_enabled():
        return None
    experiment.mark_ended(status, sealing=SEALING_IN_PROGRESS)
    ready_read, ready_write = os.pipe()
    try:
        child = os.fork()
    except OSError as err:
        os.close(ready_read)
        os.close(ready_write)
        logger.debug("cannot fork a sealer: %s", err)
        return None
    if (
        child == 0
    ):  # pragma: no cover - runs in the forked child (exercised by tests/core/test_sealing.py)
        os.close(ready_read)
        _run_sealer(experiment, work, status, ready_write, after_fork)
    os.close(ready_write)
    try:
        told = os.read(ready_read, 32)  # the sealer's pid, once its run.json names it
    finally:
        os.close(ready_read)
        os.waitpid(child, 0)  # the intermediate child exits at once: no zombie in a notebook
    if not told:
        return None  # the sealer died before taking over: the next reader seals the run
    pid = int(told)
    experiment.handed_over(pid)
    return pid


def _run_sealer(
    experiment: Experiment,
    work: Callable[[], None],
    status: str,
    ready: int,
    after_fork: Callable[[], None] | None,
) -> Any:
    """In the first child: detach, fork the sealer and exit; the sealer does the work and exits."""
    try:
        os.setsid()  # Ctrl-C in the terminal or the notebook's interrupt does not reach it
        if os.fork() != 0:
            os._exit(0)
        _silence()
        os.nice(10)  # the user's process (its exit, the next notebook cell) comes first
        if after_fork is not None:
            after_fork()
        experiment.adopt_after_fork()  # run.json names this process; a fresh index connection
        os.write(ready, str(os.getpid()).encode())
        os.close(ready)
        try:
            work()
        finally:
            experiment.finish(status)
    except BaseException:
        pass  # nowhere to report: the bundle's run.json says sealing did not finish
    finally:
        os._exit(0)


def _silence() -> None:
    """Point stdio at ``/dev/null``: the parent's terminal, pipe or notebook is not ours to write."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    logging.disable(logging.CRITICAL)
