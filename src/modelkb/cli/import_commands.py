"""``modelkb import``: an exported archive (``modelkb import ARCHIVE``) or another tool's runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelkb.cli.options import open_store, store_option
from modelkb.cli.publish_commands import import_ as import_archive

if TYPE_CHECKING:
    from modelkb.importers.runs import ImportReport


class _ImportGroup(click.Group):
    """Subcommands per source; a first argument that names none is an archive path."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["archive", *args]
        return super().parse_args(ctx, args)


@click.group("import", cls=_ImportGroup)
def import_group() -> None:
    """Add runs to the store: `modelkb import ARCHIVE` (from `modelkb export`), or
    `modelkb import tensorboard LOGDIR`, or `modelkb import mlflow [SOURCE]`."""


import_group.add_command(import_archive, name="archive")


@import_group.command("tensorboard")
@click.argument("logdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--project", default=None, help="Project of the imported runs (default: LOGDIR's name)."
)
@store_option
def tensorboard(logdir: Path, project: str | None, store_path: str | None) -> None:
    """Turn each run folder of LOGDIR (event files of TensorBoard, Keras' TensorBoard callback or
    torch's SummaryWriter) into a bundle; runs imported before are skipped."""
    from modelkb.importers.tensorboard import import_logdir

    store = open_store(store_path)
    _report(import_logdir(store, logdir, project=project))


@import_group.command("mlflow")
@click.argument("source", required=False)
@click.option(
    "--experiment",
    "experiments",
    multiple=True,
    help="Only runs of this MLflow experiment (repeatable).",
)
@store_option
def mlflow(source: str | None, experiments: tuple[str, ...], store_path: str | None) -> None:
    """Turn the runs of an MLflow tracking store (SOURCE: an mlruns folder, a sqlite:/// URI or an
    mlflow.db file; default $MLFLOW_TRACKING_URI, ./mlruns or ./mlflow.db) into bundles; runs
    imported before are skipped. MLflow need not be installed."""
    from modelkb.importers.mlflow import import_tracking_store

    if source is None:
        source = os.environ.get("MLFLOW_TRACKING_URI") or (
            "mlruns" if Path("mlruns").is_dir() else "mlflow.db"
        )
    store = open_store(store_path)
    _report(import_tracking_store(store, source, experiments=list(experiments) or None))


def _report(report: ImportReport) -> None:
    for folder in report.imported:
        click.echo(f"imported {folder.name} into {folder}")
    for source, experiment_id in report.skipped:
        click.echo(f"already imported: {source} ({experiment_id})")
    for problem in report.problems:
        click.echo(f"skipped {problem}", err=True)
    if report.problems and not report.imported and not report.skipped:
        raise SystemExit(1)


__all__ = ["import_group"]
