"""The catalog stage of ``modelkb demo``: build the site next to the store, optionally serve it."""

from __future__ import annotations

import logging
from pathlib import Path

from modelkb.store import Store

from .build import build_site

logger = logging.getLogger(__name__)


def demo_catalog(store_dir: Path, best_id: str, *, serve: bool) -> Path:
    """Build the demo store's catalog into ``<store>/../site``; serve it when asked (blocks).

    Returns:
        The site folder.
    """
    import click

    store = Store(store_dir)
    report = build_site(store, Path(store_dir).parent / "site")
    click.echo(
        f"Catalog: {report.experiments} experiments in {report.seconds:.1f} s -> {report.out}"
    )
    click.echo(f"Best run's page: {report.out / 'experiments' / best_id / 'index.html'}")
    if serve:
        from .serve import make_server, server_url

        server = make_server(report.out)
        click.echo(
            f"Serving the catalog at {server_url(server)}experiments/{best_id}/ (Ctrl-C stops)"
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return report.out
