"""``modelkb hub deploy`` against a moto server: ECR repository, builder image push (a stand-in), the stack."""

from __future__ import annotations

import boto3
import pytest
from click.testing import CliRunner

from modelkb.cli import cli
from modelkb.errors import DeployError
from modelkb.serverless.hub_deploy import deploy_hub, plan_hub

INFERENCE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelkb:abcd1234"
TEAM = "acme-modelkb-team"


def _resources(endpoint: str, stack: str) -> dict[str, str]:
    cfn = boto3.client("cloudformation", region_name="eu-west-1", endpoint_url=endpoint)
    summaries = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["ResourceType"] for r in summaries}


@pytest.mark.parametrize("public", [False, True])
def test_deploy_hub_pushes_the_builder_and_creates_the_stack(aws_moto: str, public: bool) -> None:
    plan = plan_hub(
        region="eu-west-1",
        team_bucket=TEAM,
        team_prefix="/runs/",
        public=public,
        builder_tag="builder-test",
        endpoint_url=aws_moto,
    )
    assert plan.team_store == f"s3://{TEAM}/runs"
    pushed: list[str] = []
    result = deploy_hub(plan, inference_image=INFERENCE, build_and_push=pushed.append)
    assert pushed == [result.image_uri]
    assert (
        result.image_uri.endswith("/modelkb-hub:builder-test")
        and ".dkr.ecr.eu-west-1." in result.image_uri
    )
    assert result.outputs["TeamStoreUrl"] == f"s3://{TEAM}/runs"
    resources = _resources(aws_moto, "modelkb-hub")
    for name, kind in {
        "TeamStoreBucket": "AWS::S3::Bucket",
        "CatalogBucket": "AWS::S3::Bucket",
        "BuildQueue": "AWS::SQS::Queue",
        "BuildDeadLetterQueue": "AWS::SQS::Queue",
        "CatalogBuilderFunction": "AWS::Lambda::Function",
        "CatalogBuilderFunctionRunsLanded": "AWS::Lambda::EventSourceMapping",
        "InferenceFunction": "AWS::Lambda::Function",
    }.items():
        assert resources.get(name) == kind, name
    lam = boto3.client("lambda", region_name="eu-west-1", endpoint_url=aws_moto)
    function = lam.get_function(FunctionName=result.outputs["CatalogBuilderFunctionName"])
    assert function["Code"]["ImageUri"] == result.image_uri
    env = function["Configuration"]["Environment"]["Variables"]
    assert env["MODELKB_TEAM_STORE"] == f"s3://{TEAM}/runs"
    assert env["MODELKB_CATALOG_BUCKET"] == result.outputs["CatalogBucketName"]
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=aws_moto)
    s3.head_bucket(Bucket=TEAM)
    cfn = boto3.client("cloudformation", region_name="eu-west-1", endpoint_url=aws_moto)
    (stack,) = cfn.describe_stacks(StackName="modelkb-hub")["Stacks"]
    assert {"Key": "modelkb", "Value": "hub"} in stack["Tags"]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["PublicCatalog"] == str(public).lower()
    assert parameters["TeamStoreBucketName"] == TEAM
    # a second deploy updates the same stack with the already pushed image
    again = deploy_hub(plan, inference_image=INFERENCE, builder_image=result.image_uri)
    assert again.stack_name == result.stack_name and again.image_uri == result.image_uri


def test_plan_refuses_bad_names() -> None:
    with pytest.raises(DeployError, match="invalid team store bucket name 'Team_Bucket'"):
        plan_hub(region="eu-west-1", team_bucket="Team_Bucket")
    with pytest.raises(DeployError, match="invalid stack name"):
        plan_hub(region="eu-west-1", team_bucket=TEAM, stack_name="1-hub")
    with pytest.raises(DeployError, match="no catalog builder image"):
        deploy_hub(plan_hub(region="eu-west-1", team_bucket=TEAM), inference_image=INFERENCE)


def test_cli_dry_run_says_private_by_default_and_public_when_asked() -> None:
    base = ["hub", "deploy", "--team-bucket", TEAM, "--region", "eu-west-1", "--dry-run"]
    base += ["--inference-image", INFERENCE]
    private = CliRunner().invoke(cli, base, catch_exceptions=False)
    assert private.exit_code == 0, private.output
    assert "catalog bucket (private" in private.output and "PUBLIC" not in private.output
    assert "nothing was built" in private.output
    public = CliRunner().invoke(cli, [*base, "--public"], catch_exceptions=False)
    assert "(PUBLIC: a public-read website)" in public.output
    neither = CliRunner().invoke(cli, base[:-2])
    assert neither.exit_code == 2 and "exactly one of --inference-image" in neither.output


def test_cli_deploys_with_pushed_images(aws_moto: str) -> None:
    builder = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelkb-hub:builder-1"
    result = CliRunner().invoke(
        cli,
        [
            "hub",
            "deploy",
            "--team-bucket",
            TEAM,
            "--region",
            "eu-west-1",
            "--builder-image",
            builder,
            "--inference-image",
            INFERENCE,
            "--stack-name",
            "team-hub",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"Team store: s3://{TEAM}/" in result.output
    assert f"modelkb push RUN s3://{TEAM}" in result.output
    assert "Catalog: private" in result.output
    assert "CatalogBuilderFunction" in _resources(aws_moto, "team-hub")


def test_cli_without_container_engine_names_what_is_missing_before_any_aws_call(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelkb.errors import ContainerToolError

    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, podman or buildah
    monkeypatch.delenv("MODELKB_CONTAINER_ENGINE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: no call made
    argv = ["hub", "deploy", "--team-bucket", TEAM, "--region", "eu-west-1"]
    result = CliRunner().invoke(cli, [*argv, "--inference-image", INFERENCE])
    assert isinstance(result.exception, ContainerToolError), result.output
    assert "docker, podman or buildah" in str(result.exception) and result.exception.hint
