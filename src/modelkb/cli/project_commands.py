"""``modelkb project``: show or change a project's settings (``project.json`` in the store)."""

from __future__ import annotations

import json

import click

from modelkb.cli.options import open_store, store_option
from modelkb.errors import StoreError
from modelkb.project_settings import read_settings, settings_path


@click.command("project")
@store_option
@click.argument("title")
@click.option(
    "--primary-metric",
    metavar="NAME",
    default=None,
    help="Rank the project's runs by this metric in the catalog (val_NAME when recorded, else NAME).",
)
@click.option("--unset-primary-metric", is_flag=True, help="Go back to the build's choice.")
def project(
    store_path: str | None, title: str, primary_metric: str | None, unset_primary_metric: bool
) -> None:
    """Show a project's settings, or change them; takes effect at the next `modelkb build`."""
    store = open_store(store_path)
    store.sync()
    folder = settings_path(store.root, title).parent
    if not folder.is_dir():
        known = ", ".join(sorted(store.projects())) or "none yet"
        raise StoreError(
            f"there is no project {title!r} in {store.root}",
            hint=f"Give the title a run was recorded under (projects: {known}).",
        )
    if primary_metric is not None and unset_primary_metric:
        raise click.UsageError("give --primary-metric or --unset-primary-metric, not both")
    if primary_metric is not None or unset_primary_metric:
        settings = store.write_project_settings(title, primary_metric=primary_metric)
    else:
        settings = read_settings(store.root, title)
    click.echo(json.dumps(settings, indent=2, sort_keys=True, ensure_ascii=False))
