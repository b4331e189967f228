"""``modelkb hub deploy``: the team hub on AWS (team store bucket, catalog builder, catalog, inference)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from modelkb.cli.options import aws_region, region_option, store_option
from modelkb.extras import require


@click.group()
def hub() -> None:
    """The team hub: a private S3 team store whose catalog rebuilds itself."""


@hub.command()
@click.option(
    "--team-bucket",
    required=True,
    help="The private team store bucket to create (runs are pushed to s3://BUCKET/PREFIX).",
)
@click.option("--team-prefix", default="", help="Prefix of the team store inside the bucket.")
@click.option(
    "--catalog-bucket",
    default="",
    help="Name of the catalog bucket [default: chosen by CloudFormation].",
)
@click.option(
    "--public/--private",
    "public",
    default=False,
    show_default=True,
    help="Make the catalog a public website (--public), or keep every bucket private.",
)
@region_option
@click.option(
    "--endpoint-url",
    default=None,
    help="A non-AWS endpoint (an emulator) [default: $AWS_ENDPOINT_URL].",
)
@click.option(
    "--stack-name", default="modelkb-hub", show_default=True, help="CloudFormation stack."
)
@click.option(
    "--repository",
    default="modelkb-hub",
    show_default=True,
    help="ECR repository for the catalog builder image.",
)
@click.option(
    "--builder-image",
    default=None,
    help="An already pushed catalog builder image (ECR URI): skip building it.",
)
@click.option(
    "--inference-image",
    default=None,
    help="The inference image (ECR URI, e.g. the one `modelkb deploy` pushed).",
)
@click.option(
    "--run",
    "experiment",
    default=None,
    help="Build and push this run's inference image instead of --inference-image.",
)
@click.option(
    "--engine",
    type=click.Choice(["docker", "podman", "buildah"]),
    default=None,
    help="Container engine.",
)
@click.option(
    "--base-image",
    default=None,
    help="Base image for the builds [default: public.ecr.aws/lambda/python:3.12].",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; build, push and deploy nothing.")
@store_option
def deploy(
    team_bucket: str,
    team_prefix: str,
    catalog_bucket: str,
    public: bool,
    region: str | None,
    endpoint_url: str | None,
    stack_name: str,
    repository: str,
    builder_image: str | None,
    inference_image: str | None,
    experiment: str | None,
    engine: str | None,
    base_image: str | None,
    dry_run: bool,
    store_path: str | None,
) -> None:
    """Build and push the catalog builder image and create or update the hub's stack."""
    from modelkb.ids import utc_now
    from modelkb.serverless.hub_deploy import plan_hub

    region = aws_region(region)
    if bool(inference_image) == bool(experiment):
        raise click.UsageError("pass exactly one of --inference-image URI and --run EXPERIMENT")
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    stamp = "".join(ch for ch in utc_now() if ch.isdigit())[:14]
    plan = plan_hub(
        region=region,
        team_bucket=team_bucket,
        team_prefix=team_prefix,
        catalog_bucket=catalog_bucket,
        public=public,
        stack_name=stack_name,
        repository=repository,
        builder_tag=f"builder-{stamp}",
        builder_image=builder_image,
        inference_image=inference_image,
        endpoint_url=endpoint_url,
    )
    if dry_run:
        click.echo(plan.describe())
        click.echo("Dry run: nothing was built, pushed or deployed.")
        return
    require("boto3", "serverless")
    require("samtranslator", "serverless")
    from modelkb.serverless import hub_deploy

    tool = None
    if not builder_image or experiment:
        from modelkb.serverless import container

        tool = container.find_engine(engine)  # fail before any AWS call when no engine exists
    with tempfile.TemporaryDirectory(prefix="modelkb-hub-") as tmp:
        work = Path(tmp)
        if experiment:
            inference_image = _push_inference_image(
                experiment, store_path, plan, work=work, engine=tool, base_image=base_image
            )
        result = hub_deploy.deploy_hub(
            plan,
            inference_image=str(inference_image),
            builder_image=builder_image,
            build_and_push=lambda uri: _push_builder(uri, plan, work, tool, base_image),
        )
    outputs = result.outputs
    click.echo(f"Stack {result.stack_name} is ready.")
    click.echo(f"Team store: {outputs.get('TeamStoreUrl', plan.team_store)}")
    click.echo(f"  push runs: modelkb push RUN {plan.team_store}")
    click.echo(f"Catalog bucket: {outputs.get('CatalogBucketName', '?')}")
    if public:
        click.echo(f"Catalog (public): {outputs.get('CatalogUrl', '?')}")
    else:
        click.echo("Catalog: private (redeploy with --public to serve it as a public website)")
    click.echo(f"Inference API: {result.invoke_url or '(no InvokeUrl output)'}")


def _push_builder(uri: str, plan, work: Path, tool, base_image: str | None) -> None:
    from modelkb.serverless import deploy as deploying
    from modelkb.serverless import hub_image

    click.echo("Building the catalog builder image ...")
    context = hub_image.render_builder_context(work / "builder")
    local_tag = "localhost/modelkb-hub-builder:latest"
    hub_image.build_builder_image(context, local_tag, engine=tool, base_image=base_image)
    login = deploying.registry_login(region=plan.region, endpoint_url=plan.endpoint_url)
    click.echo(f"Pushing {uri} ...")
    deploying.push_image(local_tag, uri, login=login, engine=tool)


def _push_inference_image(
    experiment: str, store_path: str | None, plan, *, work: Path, engine, base_image: str | None
) -> str:
    """Render, build and push a run's inference image (as ``modelkb deploy`` does); its URI."""
    require("onnxruntime", "serverless")
    from modelkb.cli.options import open_store
    from modelkb.serverless import container
    from modelkb.serverless import deploy as deploying
    from modelkb.serverless.render import render_package

    store = open_store(store_path)
    try:
        bundle = store.get(experiment)
    finally:
        store.close()
    package = render_package(bundle.path, bundle.metadata, work / "inference").path
    container.vendor_dependencies(package)
    local_tag = f"localhost/modelkb-{bundle.id[-8:]}:latest"
    click.echo(f"Building the inference image of run {bundle.id} ...")
    container.build_image(package, local_tag, engine=engine, base_image=base_image)
    repository = deploying.ensure_repository(
        plan.repository, region=plan.region, endpoint_url=plan.endpoint_url
    )
    uri = f"{repository}:inference-{bundle.id[-8:]}"
    login = deploying.registry_login(region=plan.region, endpoint_url=plan.endpoint_url)
    deploying.push_image(local_tag, uri, login=login, engine=engine)
    return uri
