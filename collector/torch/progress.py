"""The per-epoch progress display of :meth:`Model.fit <modelkb.collector.torch.trainer.Model.fit>`."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping
from typing import Any

__all__: list[str] = []


class EpochProgress:
    """Per-epoch progress on stderr: a rich bar when rich is installed, else one rewritten line."""

    def __init__(self, verbose: int, epochs: int) -> None:
        self.verbose, self.epochs = verbose, epochs
        self._rich: Any = None
        self._task: Any = None
        self._epoch = 0
        self._steps: int | None = None
        self._last = 0.0
        if verbose:
            with contextlib.suppress(ImportError):
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )

                self._rich = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TextColumn("{task.fields[metrics]}"),
                    console=Console(stderr=True),
                )
                self._rich.start()

    def start_epoch(self, epoch: int, steps: int | None) -> None:
        self._epoch, self._steps = epoch, steps
        if self._rich is not None:
            self._task = self._rich.add_task(
                f"Epoch {epoch + 1}/{self.epochs}", total=steps, metrics=""
            )

    def step(self, done: int, loss: float | None) -> None:
        if not self.verbose:
            return
        text = "" if loss is None else f"loss {loss:.4f}"
        if self._rich is not None:
            self._rich.update(self._task, completed=done, metrics=text)
        elif time.monotonic() - self._last > 0.2:
            self._last = time.monotonic()
            total = f"/{self._steps}" if self._steps else ""
            sys.stderr.write(f"\rEpoch {self._epoch + 1}/{self.epochs}  {done}{total}  {text}   ")
            sys.stderr.flush()

    def end_epoch(self, metrics: Mapping[str, float]) -> None:
        if not self.verbose:
            return
        text = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        if self._rich is not None:
            self._rich.update(self._task, metrics=text)
        else:
            sys.stderr.write(f"\rEpoch {self._epoch + 1}/{self.epochs}  {text}\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
