"""Catalog commands: ``modelkb build`` and ``modelkb site serve``."""

from __future__ import annotations

from pathlib import Path

import click

from modelkb.cli.options import open_store, report_problems, store_option
from modelkb.errors import StoreError
from modelkb.site_builder.engines import ENGINES

DEFAULT_OUT = "modelkb-site"


def _serve(site_dir: Path, port: int) -> None:
    from modelkb.serve_loop import serve_until_interrupted
    from modelkb.site_builder.serve import make_server, server_url

    server = make_server(site_dir, port=port)
    click.echo(f"Serving the catalog at {server_url(server)} (Ctrl-C stops)")
    serve_until_interrupted(server)
    click.echo("Stopped.")


@click.command("build")
@store_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=DEFAULT_OUT,
    show_default=True,
    help="Folder of the built site.",
)
@click.option(
    "--project", "projects", multiple=True, help="Only this project (title or slug); repeatable."
)
@click.option("--full", is_flag=True, help="Ignore the cache and re-render every page.")
@click.option("--no-zip", is_flag=True, help="Do not write bundle.zip downloads.")
@click.option(
    "--force",
    is_flag=True,
    help="Build into a non-empty folder that is not an earlier build (only the build's own files are replaced).",
)
@click.option(
    "--engine",
    type=click.Choice(sorted(ENGINES), case_sensitive=False),
    default=None,
    help="Site engine of the page shell: mkdocs (mkdocs-material) or zensical "
    "[default: $MODELKB_ENGINE or mkdocs].",
)
@click.option(
    "--primary-metric",
    metavar="NAME",
    default=None,
    help="Rank each project's runs by this metric (its val_ value when recorded, else the final "
    "training value) unless the project's own setting names one; default: accuracy, then loss.",
)
@click.option("--serve", is_flag=True, help="Serve the site on 127.0.0.1 after building.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port for --serve (0: any free port).",
)
def build(
    store_path: str | None,
    out_dir: str,
    projects: tuple[str, ...],
    full: bool,
    no_zip: bool,
    force: bool,
    engine: str | None,
    primary_metric: str | None,
    serve: bool,
    port: int,
) -> None:
    """Render the store into a static, searchable catalog (works offline, from any static host)."""
    from rich.progress import Progress

    from modelkb.site_builder.build import build_site

    store = open_store(store_path)
    if not store.root.is_dir():
        raise StoreError(
            f"there is no store at {store.root}",
            hint="Train with a ModelKB callback first, or pass --store DIR.",
        )
    with Progress(transient=True) as bar:
        task = bar.add_task("Rendering experiment pages", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = build_site(
            store,
            out_dir,
            projects=projects or None,
            incremental=not full,
            zip_bundles=not no_zip,
            progress=progress,
            force=force,
            engine=engine,
            primary_metric=primary_metric,
        )
    report_problems(report.problems)
    click.echo(
        f"Built {report.experiments} experiment(s) in {report.projects} project(s) into {report.out} "
        f"in {report.seconds:.1f} s ({report.rendered} page(s) rendered"
        f"{f', {report.engine} shell rebuilt' if report.shell_rebuilt else ''})."
    )
    if report.problems:
        click.echo(f"Skipped {len(report.problems)} unreadable bundle(s), listed above.")
    for notice in report.notices:
        click.echo(f"warning: {notice}", err=True)
    if serve:
        _serve(report.out, port)


@click.group("site")
def site() -> None:
    """Catalog helpers."""


@site.command("serve")
@click.argument("site_dir", type=click.Path(file_okay=False, exists=True), default=DEFAULT_OUT)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port (0: any free port).",
)
def serve(site_dir: str, port: int) -> None:
    """Serve a built catalog on 127.0.0.1 and print its URL."""
    _serve(Path(site_dir), port)
