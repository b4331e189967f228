"""Reproducibility commands: reproduce, repeat, group, checklist."""

from __future__ import annotations

import json
from typing import Any

import click

from modelkb.cli.options import open_store, store_option

_OUTPUT = click.Choice(["table", "json"])


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.10g}"


def _print_comparison(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    comparison = result.comparison
    table = Table(header_style="bold")
    for column in ("scope", "metric", "original", "reproduction", "difference"):
        table.add_column(column, justify="left" if column in ("scope", "metric") else "right")
    for row in comparison.rows:
        diff = row.difference
        shown = "missing" if diff is None else ("0" if diff == 0 else f"{diff:+.3g}")
        style = None if diff is not None and abs(diff) <= comparison.tolerance else "red"
        table.add_row(
            row.scope,
            row.metric,
            _number(row.original),
            _number(row.reproduced),
            shown,
            style=style,
        )
    Console(soft_wrap=False).print(table)


@click.command("reproduce")
@click.argument("experiment_id")
@store_option
@click.option(
    "--env",
    "env_mode",
    type=click.Choice(["current", "locked"]),
    default="current",
    show_default=True,
    help="current: this Python; locked: a venv built from the bundle's requirements.lock.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Use another seed (a deliberate change) instead of the bundle's.",
)
@click.option(
    "--tolerance",
    type=float,
    default=1e-6,
    show_default=True,
    help="Largest difference counted as equal.",
)
@click.option(
    "--env-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to build the locked venv.",
)
@click.option("--keep-workdir", is_flag=True, help="Keep the working copy of the code.")
@click.option(
    "--timeout", type=float, default=None, help="Kill the training after this many seconds."
)
@click.option("--format", "fmt", type=_OUTPUT, default="table", show_default=True)
def reproduce(
    experiment_id: str,
    store_path: str | None,
    env_mode: str,
    seed: int | None,
    tolerance: float,
    env_dir: str | None,
    keep_workdir: bool,
    timeout: float | None,
    fmt: str,
) -> None:
    """Re-run EXPERIMENT_ID's captured code and compare every metric with the original."""
    from modelkb.reproducibility.reproduce import reproduce as run_reproduction
    from modelkb.reproducibility.rerun import KEEP_SEED

    store = open_store(store_path)
    result = run_reproduction(
        store,
        experiment_id,
        env=env_mode,
        seed=KEEP_SEED if seed is None else seed,
        tolerance=tolerance,
        env_dir=env_dir,
        keep_workdir=keep_workdir,
        timeout=timeout,
    )
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        meta, new = result.original.metadata, result.rerun.bundle.metadata
        click.echo(f"original     {result.original.id}  seed {meta.get('seed')}")
        click.echo(f"reproduction {result.new_id}  seed {new.get('seed')}  (env {env_mode})")
        if result.env_report is not None:
            click.echo(result.env_report.summary())
            for failure in result.env_report.failed:
                click.echo(f"  not installable: {failure['requirement']}: {failure['reason']}")
        _print_comparison(result)
        click.echo(result.comparison.summary())
        for reason in result.comparison.reasons:
            click.echo(f"  - {reason}")
    if result.comparison.status == "mismatch":
        raise SystemExit(2)


@click.command("repeat")
@click.argument("experiment_id")
@store_option
@click.option(
    "-n", "runs", type=click.IntRange(min=1), default=5, show_default=True, help="Number of runs."
)
@click.option("--seeds", help="Comma-separated seeds (default 1..n).")
@click.option(
    "--timeout", type=float, default=None, help="Kill one training after this many seconds."
)
@click.option("--format", "fmt", type=_OUTPUT, default="table", show_default=True)
def repeat(
    experiment_id: str,
    store_path: str | None,
    runs: int,
    seeds: str | None,
    timeout: float | None,
    fmt: str,
) -> None:
    """Run EXPERIMENT_ID's configuration n times with different seeds, as one group."""
    from modelkb.reproducibility.repeat import repeat as run_repeats

    chosen = [int(s) for s in seeds.split(",") if s.strip()] if seeds else None
    store = open_store(store_path)

    def progress(index: int, run: Any) -> None:
        click.echo(
            f"run {index + 1}: {run.bundle.id} seed {run.bundle.metadata.get('seed')}", err=True
        )

    result = run_repeats(store, experiment_id, runs, seeds=chosen, timeout=timeout, on_run=progress)
    _print_group(result.statistics, fmt)


def _print_group(stats: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(stats, indent=2, sort_keys=True, ensure_ascii=False))
        return
    from modelkb.cli.options import emit_rows

    click.echo(f"group {stats['group']}: {stats['n']} run(s), seeds {stats['seeds']}")
    rows = [
        {
            "metric": name,
            "mean ± std": f"{m['mean']:.6g} ± {m['std']:.3g}",
            "min": m["min"],
            "max": m["max"],
            "n": m["n"],
        }
        for name, m in stats["metrics"].items()
    ]
    emit_rows(rows, ["metric", "mean ± std", "min", "max", "n"], "table")


@click.command("group")
@click.argument("group_id")
@store_option
@click.option("--format", "fmt", type=_OUTPUT, default="table", show_default=True)
def group(group_id: str, store_path: str | None, fmt: str) -> None:
    """Mean ± standard deviation of every final metric over a group of runs."""
    from modelkb.errors import BundleNotFoundError
    from modelkb.reproducibility.repeat import group_statistics

    stats = group_statistics(open_store(store_path), group_id)
    if not stats["n"]:
        raise BundleNotFoundError(
            f"no runs in group {group_id!r}",
            hint="Group ids look like grp-...; see `modelkb show ID`.",
        )
    _print_group(stats, fmt)


@click.command("checklist")
@click.argument("experiment_id", required=False)
@store_option
@click.option(
    "--list",
    "which",
    type=click.Choice(["reproducibility", "neurips"]),
    default=None,
    help="The ML reproducibility checklist (13 items, the default) or the NeurIPS paper "
    "checklist (16 questions; the default with --format tex or --project).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["md", "json", "tex"]), default="md", show_default=True
)
@click.option("--project", default=None, help="Answer the NeurIPS list across a project's runs.")
@click.option("--no-flops", is_flag=True, help="Do not estimate FLOPs from model.onnx.")
def checklist(
    experiment_id: str | None,
    store_path: str | None,
    which: str | None,
    fmt: str,
    project: str | None,
    no_flops: bool,
) -> None:
    """Print EXPERIMENT_ID's checklist, filled from its bundle (or a project's, with --project)."""
    from modelkb.errors import BundleNotFoundError
    from modelkb.reproducibility import neurips
    from modelkb.reproducibility.checklist import checklist as fill_checklist
    from modelkb.reproducibility.checklist import render_markdown

    which = which or ("neurips" if fmt == "tex" or project else "reproducibility")
    if (experiment_id is None) == (project is None):
        raise click.UsageError("give either an EXPERIMENT_ID or --project NAME")
    if which == "reproducibility" and (fmt == "tex" or project):
        raise click.UsageError(
            "--format tex and --project answer the NeurIPS list (--list neurips)"
        )
    store = open_store(store_path)
    if project is not None:
        bundles = [store.get(run.id) for run in store.search(project=project) if run.sealed]
        if not bundles:
            raise BundleNotFoundError(
                f"no finished runs in project {project!r}", hint="Run `modelkb ls` to see projects."
            )
        scope = f"project {bundles[0].project} ({len(bundles)} runs)"
    else:
        bundles = [store.get(experiment_id)]
        scope = f"{bundles[0].project} / {bundles[0].id}"
    filled = [
        (b, fill_checklist(b, store, flops=not no_flops and which == "reproducibility"))
        for b in bundles
    ]
    if which == "neurips":
        result = neurips.paper_checklist(filled, scope=scope)
        text = {"md": neurips.render_markdown, "tex": neurips.render_tex}.get(fmt)
    else:
        result = filled[0][1]
        text = render_markdown if fmt == "md" else None
    if text is None:
        click.echo(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False, default=str))
    else:
        click.echo(text(result), nl=False)


__all__ = ["checklist", "group", "repeat", "reproduce"]
