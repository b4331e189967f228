"""``modelkb demo``: the end-to-end demo of the README's first command."""

from __future__ import annotations

import importlib.resources
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from modelkb.store import Store

RUNS = (
    ("train_keras_digits.py", ["--optimizer", "adam"]),
    ("train_keras_digits.py", ["--optimizer", "sgd", "--epochs", "4"]),
    ("train_torch_digits.py", ["--lr", "0.001"]),
)


def _step(title: str) -> None:
    click.secho(f"\n== {title}", bold=True)


def _cli(*args: str, store: Path) -> None:
    """Show a CLI command and its output, as a user would type it."""
    shown = " ".join(f"'{a}'" if " " in a else a for a in args)
    click.secho(f"$ modelkb {shown}", fg="cyan")
    subprocess.run(
        [sys.executable, "-m", "modelkb", args[0], "--store", str(store), *args[1:]], check=False
    )


@click.command("demo")
@click.option(
    "--store",
    "store_path",
    type=click.Path(file_okay=False),
    default="demo-output/store",
    show_default=True,
)
@click.option("--epochs", type=int, default=8, show_default=True, help="Epochs per training run.")
@click.option(
    "--serve/--no-serve", default=True, help="Serve the catalog at the end (Ctrl-C stops)."
)
def demo(store_path: str, epochs: int, serve: bool) -> None:
    """Train Keras and PyTorch CNNs on scikit-learn's digits with ModelKB callbacks, then use the store."""
    store_dir = Path(store_path).resolve()
    workdir = store_dir.parent / "training"
    workdir.mkdir(parents=True, exist_ok=True)
    for name in {script for script, _ in RUNS}:
        source = importlib.resources.files("modelkb.examples").joinpath(name)
        with importlib.resources.as_file(source) as path:
            shutil.copyfile(path, workdir / name)
    for script, extra in RUNS:
        _step(f"training: python {script} {' '.join(extra)}")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, script, "--store", str(store_dir), "--epochs", str(epochs), *extra],
            cwd=workdir,
            check=False,
        )
        if done.returncode != 0:
            raise click.ClickException(f"{script} failed with exit code {done.returncode}")
        click.echo(f"({time.perf_counter() - started:.1f} s)")

    store = Store(store_dir)
    runs = store.search()
    _step(f"{len(runs)} runs recorded in {store_dir}")
    _cli(
        "ls",
        "--columns",
        "id,name,framework,optimizer,epochs,accuracy,val_accuracy",
        store=store_dir,
    )
    _cli(
        "query",
        "epochs > 5 && optimizer = Adam && val_accuracy > 0.9",
        "--columns",
        "id,framework,val_accuracy",
        store=store_dir,
    )
    best = max(runs, key=lambda r: r.flat.get("metrics.final.val_accuracy") or 0.0)
    others = [r for r in runs if r.id != best.id]
    _cli("show", best.id[:10], store=store_dir)
    if others:
        _cli("compare", best.id[:10], others[0].id[:10], store=store_dir)
    click.echo(
        f"\nBest run: {best.id} (val_accuracy {best.flat.get('metrics.final.val_accuracy')})"
    )
    _after_store(store_dir, best.id, serve=serve)


def _after_store(store_dir: Path, best_id: str, *, serve: bool) -> None:
    """The catalog of every run and the best run's model behind a local Lambda-style URL."""
    from modelkb.serve_loop import serve_until_interrupted, start_in_thread
    from modelkb.serverless.local_server import serve_package
    from modelkb.serverless.render import render_package
    from modelkb.site_builder.build import build_site
    from modelkb.site_builder.serve import make_server, server_url

    store = Store(store_dir)
    _step("catalog: modelkb build")
    report = build_site(store, store_dir.parent / "site")
    click.echo(
        f"{report.experiments} experiments rendered in {report.seconds:.1f} s -> {report.out}"
    )
    for notice in report.notices:
        click.echo(f"warning: {notice}", err=True)

    _step(f"serverless: modelkb package {best_id[:10]}")
    bundle = store.get(best_id)
    package = render_package(bundle.path, bundle.metadata, store_dir.parent / "lambda")
    click.echo(f"handler, predict.py, Dockerfile and SAM template in {package.path}")
    if not serve:
        return
    handler = serve_package(package.path, port=0)
    start_in_thread(handler, name="modelkb-serve")
    sample = _digit_sample()
    click.echo(f"model served (the Lambda code path) at {handler.url}; try:")
    click.secho(
        f"  curl -s -X POST {handler.url}/predict -H 'Content-Type: application/json' "
        f"-d '{{\"inputs\": {sample}}}'",
        fg="cyan",
    )
    site = make_server(report.out)
    click.secho(
        f"\nCatalog: {server_url(site)}  (best run: {server_url(site)}experiments/{best_id}/)",
        bold=True,
    )
    click.echo("Ctrl-C stops both servers.")
    try:
        serve_until_interrupted(site)
    finally:
        handler.shutdown()
        handler.server_close()


def _digit_sample() -> str:
    """One digit from scikit-learn's set as the raw 8x8 pixel rows (0-16) the handler accepts."""
    from sklearn.datasets import load_digits

    image = load_digits().images[0].astype(int).tolist()
    return str(image).replace(" ", "")
