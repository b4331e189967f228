"""Store commands: ls, show, query, compare, rm, seal, reindex."""

from __future__ import annotations

import json
from typing import Any

import click

from modelkb.bundle import seal_interrupted
from modelkb.cli.options import (
    DEFAULT_COLUMNS,
    emit_rows,
    open_store,
    report_problems,
    store_option,
)
from modelkb.errors import BundleError, QuerySyntaxError, UnknownFieldError
from modelkb.fields import flatten, resolve, suggest
from modelkb.index import IndexedRun

FORMAT = click.Choice(["table", "json", "csv"])


def _columns(spec: str | None, runs: list[IndexedRun], known: list[str]) -> list[tuple[str, str]]:
    """``(label, key)`` pairs for the requested column names; unknown names are an error."""
    names = [c.strip() for c in (spec.split(",") if spec else DEFAULT_COLUMNS) if c.strip()]
    out = []
    for name in names:
        key = resolve(name, known) if known else name
        if key is None:
            if spec is None:  # a default column nobody has yet: keep it, empty
                out.append((name, name))
                continue
            hints = suggest(name, known)
            raise UnknownFieldError(
                f"unknown column {name!r}"
                + (f" (did you mean {', '.join(hints)}?)" if hints else ""),
                query=spec,
                column=spec.find(name) + 1,
            )
        out.append((name, key))
    return out


def _sort(runs: list[IndexedRun], spec: str | None, known: list[str]) -> list[IndexedRun]:
    if not spec:
        return runs
    for part in reversed([p.strip() for p in spec.split(",") if p.strip()]):
        descending = part.startswith("-")
        name = part.lstrip("-+")
        key = resolve(name, known) or name

        def sort_key(run: IndexedRun, key: str = key) -> tuple[int, Any]:
            value = run.flat.get(key)
            if value is None:
                return (1, 0)
            return (0, value) if isinstance(value, (int, float)) else (0, str(value).lower())

        present = [r for r in runs if r.flat.get(key) is not None]
        missing = [r for r in runs if r.flat.get(key) is None]
        try:
            present.sort(key=sort_key, reverse=descending)
        except TypeError:  # mixed numbers and text
            present.sort(key=lambda r: str(r.flat.get(key)), reverse=descending)
        runs = present + missing
    return runs


def _print_runs(
    runs: list[IndexedRun],
    known: list[str],
    columns: str | None,
    sort: str | None,
    fmt: str,
    limit: int | None,
) -> None:
    runs = _sort(runs, sort, known)
    if limit:
        runs = runs[:limit]
    pairs = _columns(columns, runs, known)
    rows = [{label: run.flat.get(key) for label, key in pairs} for run in runs]
    emit_rows(rows, [label for label, _ in pairs], fmt)
    if fmt == "table":
        click.echo(f"{len(runs)} experiment(s)", err=True)


@click.command("ls")
@click.argument("project", required=False)
@store_option
@click.option("--columns", "-c", help="Comma-separated fields to show.")
@click.option("--sort", "-s", help="Fields to sort by; prefix '-' for descending.")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--limit", "-n", type=int, default=None, help="Show at most N experiments.")
def ls(
    project: str | None,
    store_path: str | None,
    columns: str | None,
    sort: str | None,
    fmt: str,
    limit: int | None,
) -> None:
    """List experiments (of PROJECT), newest first."""
    store = open_store(store_path)
    runs = store.search(project=project)
    report_problems(store.problems)
    if store.unsent:
        click.echo(
            f"warning: {len(store.unsent)} run(s) wait in {store.root} to be uploaded to {store} "
            f"(the next command tries again): {', '.join(store.unsent)}",
            err=True,
        )
    if not runs and fmt == "table":
        where = f"project {project!r} of " if project else ""
        click.echo(
            f"No experiments in {where}{store}. Train with a ModelKB callback, or pass --store.",
            err=True,
        )
        return
    _print_runs(runs, store.index.known_keys(), columns, sort, fmt, limit)


@click.command("query")
@click.argument("expression")
@store_option
@click.option("--project", "-p", help="Only this project.")
@click.option("--columns", "-c", help="Comma-separated fields to show.")
@click.option("--sort", "-s", help="Fields to sort by; prefix '-' for descending.")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
@click.option("--limit", "-n", type=int, default=None, help="Show at most N experiments.")
def query(
    expression: str,
    store_path: str | None,
    project: str | None,
    columns: str | None,
    sort: str | None,
    fmt: str,
    limit: int | None,
) -> None:
    """Find experiments matching EXPRESSION, e.g. 'epochs > 10 && optimizer = Adam && accuracy > 0.9'.

    Operators: = != > >= < <= ~ (contains), && || ! and parentheses; values are numbers, quoted
    strings, dates (2026-11-01) or bare words. Field names are case-insensitive and reach
    hyperparameters, final metrics, dataset and context fields (see docs/query.md).
    """
    store = open_store(store_path)
    runs = store.search(expression, project=project)
    report_problems(store.problems)
    _print_runs(runs, store.index.known_keys(), columns, sort, fmt, limit)


@click.command("show")
@click.argument("experiment_id")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print metadata.json as is.")
def show(experiment_id: str, store_path: str | None, as_json: bool) -> None:
    """Show one experiment (any unique id prefix or its name)."""
    store = open_store(store_path)
    bundle = store.get(experiment_id, files=False)
    if as_json:
        click.echo(json.dumps(bundle.metadata, indent=2, sort_keys=True, ensure_ascii=False))
        return
    meta = bundle.metadata
    click.echo(f"{meta['project']} / {meta.get('name')}  [{meta.get('status')}]")
    click.echo(f"id {meta['id']}  user {meta.get('user', '')}  created {meta.get('created', '')}")
    click.echo(f"bundle {bundle.path}")
    flat = flatten(meta)
    sections: dict[str, list[tuple[str, Any]]] = {}
    for key in sorted(flat):
        head = key.split(".", 1)[0] if "." in key else "run"
        sections.setdefault(head, []).append((key, flat[key]))
    for head in (
        "run",
        "framework",
        "hyperparameters",
        "metrics",
        "dataset",
        "architecture",
        "seed",
        "context",
    ):
        items = sections.pop(head, [])
        if items:
            click.echo(f"\n{head}:")
            for key, value in items:
                click.echo(f"  {key} = {value}")
    for head, items in sections.items():
        click.echo(f"\n{head}:")
        for key, value in items:
            click.echo(f"  {key} = {value}")
    if meta.get("reproduces"):
        click.echo(f"\nreproduces {meta['reproduces']}")
    if meta.get("group"):
        from modelkb.reproducibility.repeat import format_mean_std, group_statistics

        stats = group_statistics(store, str(meta["group"]))
        click.echo(f"\ngroup {meta['group']}: {stats['n']} run(s), seeds {stats.get('seeds')}")
        for name in sorted(stats["metrics"]):
            click.echo(f"  {name} = {format_mean_std(stats, name)}")
    for warning in meta.get("warnings", []):
        click.echo(f"warning: {warning.get('message') if isinstance(warning, dict) else warning}")


@click.command("compare")
@click.argument("experiment_ids", nargs=-1, required=True)
@store_option
@click.option("--all", "show_all", is_flag=True, help="Show identical fields too.")
@click.option("--format", "fmt", type=FORMAT, default="table", show_default=True)
def compare(
    experiment_ids: tuple[str, ...], store_path: str | None, show_all: bool, fmt: str
) -> None:
    """Compare two or more experiments; only differing fields unless --all."""
    if len(experiment_ids) < 2:
        raise click.UsageError("Give at least two experiment ids to compare.")
    store = open_store(store_path)
    bundles = [store.get(i, files=False) for i in experiment_ids]
    flats = [flatten(b.metadata) for b in bundles]
    keys = sorted(set().union(*flats))
    ids = [b.id[:10] for b in bundles]
    rows = []
    for key in keys:
        values = [f.get(key) for f in flats]
        if not show_all and all(v == values[0] for v in values):
            continue
        rows.append({"field": key, **dict(zip(ids, values, strict=True))})
    emit_rows(rows, ["field", *ids], fmt)
    if fmt == "table":
        same = len(keys) - len(rows) if not show_all else 0
        click.echo(
            f"{len(rows)} field(s) differ"
            + (f"; {same} identical hidden (--all shows them)" if same else ""),
            err=True,
        )


@click.command("rm")
@click.argument("experiment_ids", nargs=-1, required=True)
@store_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def rm(experiment_ids: tuple[str, ...], store_path: str | None, yes: bool) -> None:
    """Delete experiments' bundles from the store."""
    store = open_store(store_path)
    resolved = [store.resolve(i) for i in experiment_ids]
    if not yes:
        click.confirm(f"Delete {len(resolved)} experiment(s): {', '.join(resolved)}?", abort=True)
    for experiment_id in resolved:
        store.remove(experiment_id)
        click.echo(f"removed {experiment_id}")


@click.command("seal")
@click.argument("experiment_id")
@store_option
def seal(experiment_id: str, store_path: str | None) -> None:
    """Finish a run whose end-of-run work is not done: wait for its background sealer, or seal it
    (with a warning) when the sealer or the training process died."""
    store = open_store(store_path)
    bundle = store.get(experiment_id)  # waits for a live sealer; seals a run whose sealer died
    if not bundle.sealed and not bundle.live:
        seal_interrupted(bundle)
        store.record(bundle.path)
        bundle = store.get(experiment_id)
    if not bundle.sealed:
        raise BundleError(
            f"{bundle.id} is still training (its process is alive)",
            hint="Runs are sealed when training ends; `modelkb seal` finishes runs that ended.",
        )
    store.record(bundle.path)
    warnings = bundle.metadata.get("warnings") or []
    click.echo(
        f"{bundle.id} sealed [{bundle.status}]"
        + (f", {len(warnings)} warning(s)" if warnings else "")
    )


@click.command("reindex")
@store_option
def reindex(store_path: str | None) -> None:
    """Rebuild the index from the bundles (seals runs whose process died as 'interrupted')."""
    store = open_store(store_path)
    count, problems = store.reindex()
    report_problems(problems)
    click.echo(
        f"indexed {count} experiment(s) in {store.root}"
        + (f"; skipped {len(problems)} unreadable" if problems else "")
    )


__all__ = ["QuerySyntaxError", "compare", "ls", "query", "reindex", "rm", "show"]
