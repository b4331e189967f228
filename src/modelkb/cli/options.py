"""Options and output helpers shared by the CLI commands."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from modelkb import store as stores
from modelkb.store import Problem, Store

DEFAULT_COLUMNS = (
    "id",
    "project",
    "created",
    "status",
    "framework",
    "epochs",
    "optimizer",
    "accuracy",
    "loss",
)


def store_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--store DIR|s3://BUCKET/PREFIX`` (default ``$MODELKB_HOME`` or ``./modelkb-store``)."""
    return click.option(
        "--store",
        "store_path",
        type=click.Path(file_okay=False),
        default=None,
        help="Store folder, or s3://BUCKET/PREFIX for a team store "
        "[default: $MODELKB_HOME or ./modelkb-store].",
    )(func)


def region_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--region`` of the commands that deploy to AWS (resolved by :func:`aws_region`)."""
    return click.option(
        "--region", default=None, help="AWS region [default: $AWS_REGION / $AWS_DEFAULT_REGION]."
    )(func)


def aws_region(region: str | None) -> str:
    """``--region``, else ``$AWS_REGION``, else ``$AWS_DEFAULT_REGION``; a usage error without one."""
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise click.UsageError("no AWS region: pass --region or set AWS_REGION")
    return region


def open_store(store_path: str | None) -> Store:
    return stores.open_store(store_path)


def report_problems(problems: Iterable[Problem]) -> None:
    """Corrupt bundles are listed on stderr and skipped."""
    for problem in problems:
        click.echo(f"warning: skipped {problem}", err=True)


def format_value(value: Any, *, short_id: bool = False, key: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    if short_id and key == "id":
        return text[:10]
    if key in ("created", "finished") and len(text) >= 19:
        return text[:19].replace("T", " ")
    return text


def emit_rows(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, *, title: str | None = None
) -> None:
    """Print rows as a table, JSON or CSV."""
    if fmt == "json":
        click.echo(
            json.dumps(
                [{c: row.get(c) for c in columns} for row in rows],
                indent=2,
                ensure_ascii=False,
                default=str,
            )
        )
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        click.echo(buffer.getvalue(), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column == "id")
    for row in rows:
        table.add_row(*(format_value(row.get(c), short_id=True, key=c) for c in columns))
    Console(soft_wrap=False).print(table)
