"""``modelkb import``: an exported archive (``modelkb import ARCHIVE``) or another tool's runs."""

from __future__ import annotations

from pathlib import Path

import click

from modelkb.cli.options import open_store, store_option
from modelkb.cli.publish_commands import import_ as import_archive


class _ImportGroup(click.Group):
    """Subcommands per source; a first argument that names none is an archive path."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["archive", *args]
        return super().parse_args(ctx, args)


@click.group("import", cls=_ImportGroup)
def import_group() -> None:
    """Add runs to the store: `modelkb import ARCHIVE` (from `modelkb export`), or
    `modelkb import tensorboard LOGDIR`."""


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
    report = import_logdir(store, logdir, project=project)
    for folder in report.imported:
        click.echo(f"imported {folder.name} into {folder}")
    for source, experiment_id in report.skipped:
        click.echo(f"already imported: {source} ({experiment_id})")
    for problem in report.problems:
        click.echo(f"skipped {problem}", err=True)
    if report.problems and not report.imported and not report.skipped:
        raise SystemExit(1)


__all__ = ["import_group"]
