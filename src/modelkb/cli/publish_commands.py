"""Sharing commands: export/import archives, push/clone through S3 and the Hub, publish a catalog."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from modelkb.cli.options import open_store, store_option
from modelkb.ids import utc_now

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1 << 10,
    "m": 10**6,
    "mb": 10**6,
    "mib": 1 << 20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 1 << 30,
    "t": 10**12,
    "tb": 10**12,
    "tib": 1 << 40,
}


class ByteSize(click.ParamType):
    """``2GiB``, ``500MB``, ``1048576``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _SIZE.match(str(value))
        unit = (match.group(2) or "").lower() if match else None
        if not match or unit not in _UNITS:
            self.fail(
                f"Expected a size like 2GiB, 500MB or 1048576. Received: {value!r}", param, ctx
            )
        return int(float(match.group(1)) * _UNITS[unit])


def limit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--max-size``, ``--max-file-size``, ``--max-entries`` (defaults 2 GiB, 1 GiB, 10,000)."""
    func = click.option(
        "--max-entries",
        type=click.IntRange(min=1),
        default=10_000,
        show_default=True,
        help="Refuse more files than this.",
    )(func)
    func = click.option(
        "--max-file-size",
        type=ByteSize(),
        default="1GiB",
        show_default=True,
        help="Refuse any single file larger than this.",
    )(func)
    return click.option(
        "--max-size",
        type=ByteSize(),
        default="2GiB",
        show_default=True,
        help="Refuse a bundle larger than this in total.",
    )(func)


def _limits(max_size: int, max_file_size: int, max_entries: int) -> Any:
    from modelkb.publishing.integrity import SizeLimits

    return SizeLimits(
        max_total_bytes=max_size, max_file_bytes=max_file_size, max_entries=max_entries
    )


endpoint_option = click.option(
    "--endpoint-url",
    default=None,
    metavar="URL",
    help="S3-compatible endpoint [default: AWS, or $AWS_ENDPOINT_URL].",
)


@contextmanager
def _progress(
    description: str, total: int | None, *, unit_bytes: bool = True
) -> Iterator[Callable[[str, int], None]]:
    """A rich progress bar on stderr; yields the ``(name, bytes)`` callback that advances it."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn() if unit_bytes else MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    console = Console(stderr=True)
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as progress:
        task = progress.add_task(description, total=total)

        def advance(name: str, size: int) -> None:
            progress.update(
                task, advance=size if unit_bytes else 1, description=f"{description} {name}"
            )

        yield advance


def _artifact_bytes(metadata: dict[str, Any]) -> int:
    return sum(
        int(a.get("size") or 0) for a in metadata.get("artifacts") or [] if isinstance(a, dict)
    )


# -- export / import ---------------------------------------------------------------------------------
@click.command("export")
@click.argument("experiment")
@click.option(
    "--zip", "fmt", flag_value="zip", default=True, help="Write a .zip archive (default)."
)
@click.option("--tar", "fmt", flag_value="tar.gz", help="Write a .tar.gz archive.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Archive file [default: ./<project>-<id>.zip].",
)
@click.option(
    "--no-serving",
    is_flag=True,
    help="Leave out the generated handler, Dockerfile and SAM template.",
)
@store_option
def export(
    experiment: str, fmt: str, out: Path | None, no_serving: bool, store_path: str | None
) -> None:
    """Write EXPERIMENT as an archive that needs no ModelKB to use.

    It holds the bundle (model card, model, weights, code, lockfile, metadata), a SHA256SUMS file,
    EXPORT.md with instructions and, when the serverless generator can package the run, serving/
    with handler.py, predict.py, Dockerfile and template.yaml.
    """
    from modelkb.publishing.export import default_archive_name, export_bundle

    store = open_store(store_path)
    bundle = store.get(experiment)
    target = out or Path(default_archive_name(bundle, fmt))
    result = export_bundle(bundle, target, fmt=fmt, include_serving=not no_serving)
    if result.serving_note and not no_serving:
        click.echo(f"note: {result.serving_note}", err=True)
    click.echo(
        f"exported {bundle.id} to {result.path} ({result.path.stat().st_size} bytes, {len(result.files)} files)"
    )


@click.command("import")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@limit_options
@store_option
def import_(
    archive: Path, max_size: int, max_file_size: int, max_entries: int, store_path: str | None
) -> None:
    """Add the bundle in ARCHIVE (from `modelkb export`) to the store.

    The archive is unpacked inside the store's staging area with every entry checked (no paths
    outside it, no links or devices, size limits), every file's sha256 is verified against
    metadata.json, and only then is the bundle moved into place.
    """
    from modelkb.publishing.export import import_archive

    store = open_store(store_path)
    folder = import_archive(store, archive, limits=_limits(max_size, max_file_size, max_entries))
    click.echo(f"imported {folder.name} into {folder}")


# -- S3 ----------------------------------------------------------------------------------------------
@click.command("push")
@click.argument("experiment")
@click.argument("destination", metavar="s3://BUCKET/PREFIX")
@endpoint_option
@store_option
def push(
    experiment: str, destination: str, endpoint_url: str | None, store_path: str | None
) -> None:
    """Upload EXPERIMENT's bundle to S3 and print its global id.

    The bundle goes to s3://BUCKET/PREFIX/<project>/<id>/ (metadata.json last); `modelkb clone`
    with the printed id brings it back. Credentials come from the standard AWS chain.
    """
    from modelkb.publishing.s3 import push_bundle

    store = open_store(store_path)
    bundle = store.get(experiment)
    with _progress(f"push {bundle.id[:10]}", _artifact_bytes(bundle.metadata)) as advance:
        gid = push_bundle(bundle, destination, endpoint_url=endpoint_url, on_file=advance)
    previous = bundle.metadata.get("s3") if isinstance(bundle.metadata.get("s3"), dict) else {}
    store.update_metadata(bundle.id, {"s3": {**previous, "global_id": gid, "pushed": utc_now()}})
    click.echo(gid)


@click.command("clone")
@click.argument("address", metavar="s3://...|hf://USER/NAME")
@endpoint_option
@click.option("--revision", default=None, help="Hub branch, tag or commit (hf:// only).")
@limit_options
@store_option
def clone(
    address: str,
    endpoint_url: str | None,
    revision: str | None,
    max_size: int,
    max_file_size: int,
    max_entries: int,
    store_path: str | None,
) -> None:
    """Bring a pushed or published bundle into the local store, verifying every file's sha256.

    ADDRESS is the global id `modelkb push` printed (s3://BUCKET/PREFIX/<project>/<id>) or a Hub
    model repo (hf://USER/NAME, optionally hf://USER/NAME@REVISION).
    """
    from modelkb.publishing.clone import clone as clone_bundle

    store = open_store(store_path)
    with _progress("clone", None) as advance:
        result = clone_bundle(
            store,
            address,
            endpoint_url=endpoint_url,
            revision=revision,
            limits=_limits(max_size, max_file_size, max_entries),
            on_file=advance,
        )
    click.echo(f"cloned {result.experiment_id} into {result.path}")


# -- publish -----------------------------------------------------------------------------------------
@click.group("publish")
def publish() -> None:
    """Publish a built catalog to S3, or a run to the Hugging Face Hub."""


@publish.command("site")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("destination", metavar="s3://BUCKET/PREFIX")
@click.option(
    "--delete", is_flag=True, help="Remove objects under the prefix that are not in FOLDER."
)
@click.option(
    "--public",
    is_flag=True,
    help="Add a public-read (s3:GetObject) bucket-policy statement for the prefix.",
)
@click.option(
    "--website", is_flag=True, help="Configure the bucket's static website hosting (index.html)."
)
@endpoint_option
def publish_site_command(
    folder: Path,
    destination: str,
    delete: bool,
    public: bool,
    website: bool,
    endpoint_url: str | None,
) -> None:
    """Upload the catalog FOLDER (from `modelkb build`) to S3; only changed files are sent.

    Nothing is made public unless --public is given.
    """
    from modelkb.publishing.s3_site import publish_site

    state: dict[str, Any] = {}
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:

        def on_plan(count: int, total: int) -> None:
            state["task"] = progress.add_task(f"upload {count} files", total=total)

        def on_file(key: str, size: int) -> None:
            progress.update(state["task"], advance=size)

        result = publish_site(
            folder,
            destination,
            delete=delete,
            public=public,
            website=website,
            endpoint_url=endpoint_url,
            on_plan=on_plan,
            on_file=on_file,
        )
    click.echo(
        f"uploaded {len(result.uploaded)}, unchanged {len(result.unchanged)}, deleted {len(result.deleted)}"
        f" -> {destination}"
    )
    if result.website_url:
        click.echo(
            f"website: {result.website_url}"
            + ("" if result.public else " (not public: add --public to open it)")
        )
    if result.public:
        click.echo(
            f"public: anyone can now read {result.public_scope} (one s3:GetObject statement in the bucket "
            "policy; the bucket's public access block was set to allow public bucket policies, ACLs stay blocked)"
        )


@publish.command("hf")
@click.argument("experiment")
@click.option(
    "--repo", "repo_id", required=True, metavar="USER/NAME", help="Model repo on the Hub."
)
@click.option("--private", is_flag=True, help="Create the repo private.")
@click.option("--replace", is_flag=True, help="Publish over a repo that holds another ModelKB run.")
@click.option("--no-serving", is_flag=True, help="Leave out the generated handler files.")
@store_option
def publish_hf(
    experiment: str,
    repo_id: str,
    private: bool,
    replace: bool,
    no_serving: bool,
    store_path: str | None,
) -> None:
    """Create or update the Hub model repo USER/NAME with EXPERIMENT's bundle.

    Uploads the model card (README.md), model.onnx, weights, code, lockfile, metrics and
    metadata.json (so `modelkb clone hf://USER/NAME` rebuilds the bundle), plus serving/ when the
    inference package can be generated. The token comes from HF_TOKEN or `hf auth login`.
    """
    from modelkb.publishing.hub import publish_bundle

    store = open_store(store_path)
    bundle = store.get(experiment)
    result = publish_bundle(
        bundle, repo_id, private=private, replace=replace, include_serving=not no_serving
    )
    if result.serving_note and not no_serving:
        click.echo(f"note: {result.serving_note}", err=True)
    store.update_metadata(
        bundle.id,
        {
            "hub": {
                "url": result.url,
                "repo_id": result.repo_id,
                "revision": result.revision,
                "published": utc_now(),
            }
        },
    )
    click.echo(result.url)
