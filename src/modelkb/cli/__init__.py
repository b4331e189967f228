"""The ``modelkb`` command line.

Subcommands live in small modules and are imported only when run, so ``modelkb --help`` stays
fast and loads no framework.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
from typing import Any

import click

from modelkb.errors import ModelKBError

# name -> "module:attribute" (relative to modelkb.cli); loaded on first use.
_COMMANDS: dict[str, tuple[str, str]] = {
    "ls": ("store_commands:ls", "List experiments, newest first."),
    "show": ("store_commands:show", "Show one experiment."),
    "query": ("store_commands:query", "Find experiments with a filter expression."),
    "compare": ("store_commands:compare", "Compare experiments field by field."),
    "rm": ("store_commands:rm", "Delete an experiment's bundle."),
    "seal": ("store_commands:seal", "Finish a run whose end-of-run work (ONNX export) did not."),
    "reindex": ("store_commands:reindex", "Rebuild the index from the bundles."),
    "demo": (
        "demo_command:demo",
        "Train small Keras and PyTorch models on the digits data and catalog them.",
    ),
    "build": ("site_commands:build", "Render the store into a static, searchable catalog."),
    "site": ("site_commands:site", "Catalog helpers (serve a built catalog)."),
    "project": (
        "project_commands:project",
        "Show or change a project's settings (the metric the catalog ranks its runs by).",
    ),
    "package": (
        "serverless_commands:package",
        "Generate an inference handler and Lambda container for a run.",
    ),
    "serve": ("serverless_commands:serve", "Serve a run's generated handler on 127.0.0.1."),
    "deploy": (
        "serverless_commands:deploy",
        "Build, push and deploy a run as a Lambda behind API Gateway.",
    ),
    "reproduce": (
        "repro_commands:reproduce",
        "Re-run an experiment's captured code and compare its metrics.",
    ),
    "repeat": (
        "repro_commands:repeat",
        "Run an experiment's configuration n times with different seeds, as a group.",
    ),
    "group": ("repro_commands:group", "Mean ± std of every final metric over a group of runs."),
    "checklist": (
        "repro_commands:checklist",
        "Print a run's or a project's reproducibility or NeurIPS checklist.",
    ),
    "export": (
        "publish_commands:export",
        "Write a run as a zip/tar archive usable without ModelKB.",
    ),
    "import": (
        "import_commands:import_group",
        "Add runs: an exported archive (verified, safely unpacked) or TensorBoard logs.",
    ),
    "push": ("publish_commands:push", "Upload a run's bundle to S3 and print its global id."),
    "clone": (
        "publish_commands:clone",
        "Bring a run from s3://... or hf://... into the local store.",
    ),
    "publish": (
        "publish_commands:publish",
        "Publish a built catalog to S3 (site) or a run to the Hub (hf).",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked (or when their help is shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in _COMMANDS:
            return command
        module_name, attribute = _COMMANDS[cmd_name][0].split(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        return getattr(module, attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][1]) for name in sorted(_COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelkb")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """ModelKB: every training run captured, cataloged, served and shared."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.ensure_object(dict)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: every error becomes one line with a next step (the traceback only with MODELKB_DEBUG=1)."""
    debug = os.environ.get("MODELKB_DEBUG") == "1"
    try:
        return cli.main(args=argv, prog_name="modelkb", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except ModelKBError as err:
        if debug:
            raise
        message = str(err)
        click.echo(f"Error: {message}", err=True)
        if err.hint:
            click.echo(f"Hint: {err.hint}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as err:
        if debug:
            raise
        message, hint = describe_error(err)
        click.echo(f"Error: {message}", err=True)
        click.echo(f"Hint: {hint}", err=True)
        sys.exit(1)


def describe_error(err: BaseException) -> tuple[str, str]:
    """One line and a next step for an error that is not a ModelKB error."""
    again = "Run again with MODELKB_DEBUG=1 to see the traceback."
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return (
            f"no space left on the device{_where(err)}",
            "Free some space, or pass another --store/--out.",
        )
    if isinstance(err, FileNotFoundError):
        return f"no such file or folder{_where(err)}", "Check the path."
    if isinstance(err, FileExistsError):
        return f"already exists{_where(err)}", "A file or folder is in the way: pass another path."
    if isinstance(err, IsADirectoryError):
        return f"a folder was given where a file is expected{_where(err)}", "Pass a file path."
    if isinstance(err, NotADirectoryError):
        return f"a file was given where a folder is expected{_where(err)}", "Pass a folder path."
    if isinstance(err, PermissionError):
        return (
            f"permission denied{_where(err)}",
            "Check the path's permissions, or pass another --store/--out.",
        )
    if isinstance(err, OSError):
        return f"{err.strerror or err}{_where(err)}", again
    if isinstance(err, ValueError):
        return str(err) or type(err).__name__, again
    return f"unexpected {type(err).__name__}: {err}", again


def _where(err: OSError) -> str:
    return f": {err.filename}" if err.filename else ""
