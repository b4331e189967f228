"""``modelkb package``, ``serve`` and ``deploy``: a run's model as an HTTP API (Lambda + API Gateway)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import click

from modelkb.cli.options import aws_region, open_store, region_option, store_option
from modelkb.extras import require


def _bundle(store_path: str | None, experiment: str):
    store = open_store(store_path)
    try:
        return store.get(experiment)
    finally:
        store.close()


def _render(bundle, out: Path, *, memory_size: int = 1024, timeout: int = 30):
    require("onnxruntime", "serverless")
    from modelkb.serverless.render import render_package

    return render_package(
        bundle.path, bundle.metadata, out, memory_size=memory_size, timeout=timeout
    )


@click.command()
@click.argument("experiment")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Package folder [default: ./modelkb-lambda-<id suffix>].",
)
@click.option(
    "--memory-size",
    type=click.IntRange(128, 10240),
    default=1024,
    show_default=True,
    help="Lambda memory (MB).",
)
@click.option(
    "--timeout",
    type=click.IntRange(1, 900),
    default=30,
    show_default=True,
    help="Lambda timeout (s).",
)
@store_option
def package(
    experiment: str, out_dir: str | None, memory_size: int, timeout: int, store_path: str | None
) -> None:
    """Generate the inference handler, Dockerfile and SAM template of EXPERIMENT (id, prefix or name)."""
    bundle = _bundle(store_path, experiment)
    out = Path(out_dir or f"modelkb-lambda-{bundle.id[-8:]}")
    result = _render(bundle, out, memory_size=memory_size, timeout=timeout)
    click.echo(
        f"Packaged run {bundle.id} ({result.spec['kind']}, "
        f"{result.spec['framework'] or 'unknown framework'}) into {result.path}"
    )
    click.echo(f"  files: {', '.join(result.files)}")
    click.echo(f"  try it: python {result.path / 'predict.py'} {result.path / 'model.onnx'} INPUT")
    click.echo(f"  serve:  modelkb serve {bundle.id}")


@click.command()
@click.argument("experiment")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port on 127.0.0.1.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep the generated package here.",
)
@click.option(
    "--rie",
    is_flag=True,
    help="Run the handler under the Lambda Runtime Interface Emulator + awslambdaric.",
)
@store_option
def serve(
    experiment: str, port: int, out_dir: str | None, rie: bool, store_path: str | None
) -> None:
    """Serve EXPERIMENT's generated handler at http://127.0.0.1:PORT (the exact Lambda code path)."""
    require("aws_lambda_powertools", "serverless")
    from modelkb.serve_loop import serve_until_interrupted
    from modelkb.serverless import local_server
    from modelkb.serverless import rie as rie_tools

    bundle = _bundle(store_path, experiment)
    with tempfile.TemporaryDirectory(prefix="modelkb-serve-") as tmp:
        out = Path(out_dir) if out_dir else Path(tmp) / "package"
        result = _render(bundle, out)
        process = None
        try:
            rie_url = None
            if rie:
                process, rie_url = rie_tools.start_rie(result.path)
            server = local_server.serve_package(result.path, port=port, rie_url=rie_url)
            click.echo(
                f"Serving run {bundle.id} at {server.url} (POST /predict, GET /health, GET /metadata); Ctrl-C stops."
            )
            serve_until_interrupted(server)
            click.echo("Stopped.")
        finally:
            if process is not None:
                rie_tools.stop(process)


@click.command()
@click.argument("experiment")
@region_option
@click.option(
    "--stack-name", default=None, help="CloudFormation stack [default: modelkb-<id suffix>]."
)
@click.option(
    "--repository", default="modelkb", show_default=True, help="ECR repository for the image."
)
@click.option(
    "--engine",
    type=click.Choice(["docker", "podman", "buildah"]),
    default=None,
    help="Container engine.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Package folder to (re)write.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; build, push and write nothing.")
@store_option
def deploy(
    experiment: str,
    region: str | None,
    stack_name: str | None,
    repository: str,
    engine: str | None,
    out_dir: str | None,
    dry_run: bool,
    store_path: str | None,
) -> None:
    """Build and push EXPERIMENT's image, create or update its stack, and print the invoke URL."""
    from modelkb.serverless.deploy import plan_deploy

    bundle = _bundle(store_path, experiment)
    region = aws_region(region)
    package_dir = Path(out_dir or f"modelkb-lambda-{bundle.id[-8:]}")
    endpoint = os.environ.get("MODELKB_AWS_ENDPOINT_URL")  # a local emulator (tests)
    plan = plan_deploy(
        bundle.id,
        region=region,
        package_dir=package_dir,
        stack_name=stack_name,
        repository=repository,
        endpoint_url=endpoint,
    )
    if dry_run:
        click.echo(plan.describe())
        click.echo("Dry run: nothing was built, pushed or written.")
        return
    require("boto3", "serverless")
    require("samtranslator", "serverless")
    from modelkb.serverless import container
    from modelkb.serverless import deploy as deploying

    tool = container.find_engine(engine)  # fail before any AWS call when no engine exists
    started = time.monotonic()
    package = _render(bundle, package_dir)
    click.echo(f"Rendered {package_dir}; vendoring dependencies ...")
    container.vendor_dependencies(package_dir)
    local_tag = f"localhost/modelkb-{bundle.id[-8:]}:latest"

    def build_and_push(image_uri: str) -> None:
        click.echo(f"Building {local_tag} with {tool.name} ...")
        container.build_image(package_dir, local_tag, engine=tool)
        login = deploying.registry_login(region=region, endpoint_url=endpoint)
        click.echo(f"Pushing {image_uri} ...")
        deploying.push_image(local_tag, image_uri, login=login, engine=tool)

    result = deploying.deploy(plan, build_and_push=build_and_push)
    click.echo(f"Stack {result.stack_name} is ready ({time.monotonic() - started:.0f} s).")
    click.echo(f"Invoke URL: {result.invoke_url or '(the stack has no InvokeUrl output)'}")
    store = open_store(store_path)
    try:
        deploying.record_deployment(store, bundle.id, plan, result, package.spec)
    finally:
        store.close()
    click.echo(f"Recorded the endpoint in run {bundle.id} (serverless.url).")
