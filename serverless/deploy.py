"""Deploy a package: push its image to ECR and create or update its CloudFormation stack.

The SAM template is translated locally (:mod:`.sam`), so CloudFormation receives a plain template
and no SAM transform runs in the account. boto3 is imported only here (the ``[serverless]`` extra).
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkb.errors import DeployError
from modelkb.serverless.sam import load_template, translate

logger = logging.getLogger(__name__)

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


@dataclass
class DeployPlan:
    """What ``deploy`` will do; printed as is by ``--dry-run``."""

    experiment_id: str
    region: str
    stack_name: str
    repository: str
    image_tag: str
    package_dir: Path
    endpoint_url: str | None = None
    steps: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"Deploy plan for run {self.experiment_id} (region {self.region}, stack {self.stack_name}):"
        ]
        lines += [f"  {number}. {step}" for number, step in enumerate(self.steps, 1)]
        return "\n".join(lines)


@dataclass
class DeployResult:
    """A finished deployment."""

    stack_id: str
    stack_name: str
    image_uri: str
    invoke_url: str | None
    outputs: dict[str, str]


def check_stack_name(name: str) -> str:
    """``name`` if CloudFormation accepts it as a stack name.

    Raises:
        DeployError: It does not.
    """
    if not _STACK_NAME.match(name):
        raise DeployError(
            f"invalid stack name {name!r}: letters, digits and hyphens, starting with a letter"
        )
    return name


def plan_deploy(
    experiment_id: str,
    *,
    region: str,
    package_dir: Path,
    stack_name: str | None = None,
    repository: str | None = None,
    endpoint_url: str | None = None,
) -> DeployPlan:
    """The plan for one run (no AWS call, nothing written)."""
    short = experiment_id[-8:]
    stack = check_stack_name(stack_name or f"modelkb-{short}")
    plan = DeployPlan(
        experiment_id=experiment_id,
        region=region,
        stack_name=stack,
        repository=repository or "modelkb",
        image_tag=f"{short}",
        package_dir=package_dir,
        endpoint_url=endpoint_url,
    )
    plan.steps = [
        f"render the package into {package_dir} "
        "(handler.py, Dockerfile, template.yaml, model.onnx, ...)",
        "vendor onnxruntime, numpy, powertools (and Pillow for images) into deps/ "
        "for manylinux_2_28_x86_64 / CPython 3.12",
        f"create the ECR repository {plan.repository!r} if missing and log the container engine in to it",
        "build the image from public.ecr.aws/lambda/python:3.12 and push it as "
        f"<account>.dkr.ecr.{region}.amazonaws.com/{plan.repository}:{plan.image_tag}",
        "translate template.yaml with the SAM translator locally (ImageUri = the pushed image)",
        f"create or update the CloudFormation stack {stack!r} (CAPABILITY_IAM) and wait for it",
        "print the stack's InvokeUrl output",
    ]
    return plan


def _client(service: str, *, region: str, endpoint_url: str | None, session: Any = None) -> Any:
    import boto3

    session = session or boto3.session.Session(region_name=region)
    return session.client(service, region_name=region, endpoint_url=endpoint_url)


def ensure_repository(
    name: str, *, region: str, endpoint_url: str | None = None, session: Any = None
) -> str:
    """The repository's URI, creating it if needed."""
    from botocore.exceptions import BotoCoreError, ClientError

    ecr = _client("ecr", region=region, endpoint_url=endpoint_url, session=session)
    try:
        found = ecr.describe_repositories(repositoryNames=[name])["repositories"]
        return str(found[0]["repositoryUri"])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "RepositoryNotFoundException":
            raise DeployError(f"cannot read ECR repository {name!r}: {err}") from err
    except BotoCoreError as err:
        raise DeployError(
            f"cannot reach ECR in {region}: {err}", hint="Check your AWS credentials and region."
        ) from err
    try:
        created = ecr.create_repository(
            repositoryName=name, imageScanningConfiguration={"scanOnPush": True}
        )
    except (ClientError, BotoCoreError) as err:
        raise DeployError(f"cannot create ECR repository {name!r}: {err}") from err
    return str(created["repository"]["repositoryUri"])


def registry_login(
    *, region: str, endpoint_url: str | None = None, session: Any = None
) -> tuple[str, str, str]:
    """``(registry, username, password)`` from ECR's authorization token."""
    from botocore.exceptions import BotoCoreError, ClientError

    ecr = _client("ecr", region=region, endpoint_url=endpoint_url, session=session)
    try:
        data = ecr.get_authorization_token()["authorizationData"][0]
    except (ClientError, BotoCoreError, KeyError, IndexError) as err:
        raise DeployError(
            f"cannot get an ECR login token: {err}",
            hint="Configure AWS credentials (aws configure) with ecr:GetAuthorizationToken.",
        ) from err
    username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    registry = data["proxyEndpoint"].removeprefix("https://")
    return registry, username, password


def push_image(local_tag: str, image_uri: str, *, login: tuple[str, str, str], engine: Any) -> None:
    """Log the engine in to the registry, tag and push (buildah/podman/docker)."""
    from modelkb.serverless.container import run_tool

    registry, username, password = login
    run_tool(
        engine.command("login", "--username", username, "--password-stdin", registry),
        what=f"logging {engine.name} in to {registry}",
        input_text=password,
        timeout=120,
    )
    run_tool(engine.command("tag", local_tag, image_uri), what="tagging the image", timeout=120)
    run_tool(engine.command("push", image_uri), what=f"pushing {image_uri}", timeout=1800)


def deploy_stack(
    template_path: Path,
    *,
    stack_name: str,
    region: str,
    parameters: dict[str, str],
    endpoint_url: str | None = None,
    session: Any = None,
    wait: bool = True,
    purpose: str = "inference",
) -> DeployResult:
    """Translate the SAM template and create or update the stack; returns its outputs.

    ``purpose`` is the stack's ``modelkb`` tag (``inference``, ``hub``).
    """
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError

    translated = translate(load_template(template_path), parameters, region=region)
    body = json.dumps(translated)
    declared = set(translated.get("Parameters") or {})
    cfn_parameters = [
        {"ParameterKey": k, "ParameterValue": str(v)}
        for k, v in parameters.items()
        if k in declared
    ]
    cfn = _client("cloudformation", region=region, endpoint_url=endpoint_url, session=session)
    arguments = {
        "StackName": stack_name,
        "TemplateBody": body,
        "Parameters": cfn_parameters,
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        "Tags": [{"Key": "modelkb", "Value": purpose}],
    }
    try:
        exists = _stack_exists(cfn, stack_name)
        if exists:
            try:
                stack_id = cfn.update_stack(**arguments)["StackId"]
                waiter_name = "stack_update_complete"
            except ClientError as err:
                if "No updates are to be performed" not in str(err):
                    raise
                stack_id, waiter_name = stack_name, None
        else:
            stack_id = cfn.create_stack(**arguments)["StackId"]
            waiter_name = "stack_create_complete"
        if wait and waiter_name:
            cfn.get_waiter(waiter_name).wait(
                StackName=stack_name, WaiterConfig={"Delay": 5, "MaxAttempts": 180}
            )
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except WaiterError as err:
        raise DeployError(
            f"stack {stack_name} did not finish: {err}",
            hint=f"See the stack's events: aws cloudformation describe-stack-events --stack-name {stack_name}",
        ) from err
    except (ClientError, BotoCoreError) as err:
        raise DeployError(f"CloudFormation failed for stack {stack_name}: {err}") from err
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []}
    return DeployResult(
        stack_id=str(stack.get("StackId", stack_id)),
        stack_name=stack_name,
        image_uri=str(parameters.get("ImageUri", "")),
        invoke_url=outputs.get("InvokeUrl"),
        outputs=outputs,
    )


def _stack_exists(cfn: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err):
            return False
        raise
    return bool(stacks) and stacks[0].get("StackStatus") != "DELETE_COMPLETE"


def image_digest(
    image_uri: str, *, region: str, endpoint_url: str | None = None, session: Any = None
) -> str | None:
    """The registry's digest of a pushed ``<repository uri>:<tag>`` (``None`` when ECR does not know it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    repository_uri, _, tag = image_uri.rpartition(":")
    repository = repository_uri.partition("/")[2]
    ecr = _client("ecr", region=region, endpoint_url=endpoint_url, session=session)
    try:
        found = (
            ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}]).get(
                "imageDetails"
            )
            or []
        )
    except (BotoCoreError, ClientError) as err:
        logger.info("no digest for %s: %s", image_uri, err)
        return None
    return str(found[0]["imageDigest"]) if found and found[0].get("imageDigest") else None


def deployment_record(
    plan: DeployPlan,
    result: DeployResult,
    *,
    digest: str | None,
    example: dict[str, Any],
    deployed: str,
) -> dict[str, Any]:
    """What a finished deploy records in the bundle's ``serverless`` field (the catalog and ``query`` read it)."""
    return {
        "url": result.invoke_url,
        "region": plan.region,
        "stack_name": result.stack_name,
        "stack_id": result.stack_id,
        "image_uri": result.image_uri,
        "image_digest": digest,
        "deployed": deployed,
        "example_request": example,
    }


def record_deployment(
    store: Any,
    experiment_id: str,
    plan: DeployPlan,
    result: DeployResult,
    spec: dict[str, Any],
    *,
    session: Any = None,
) -> dict[str, Any]:
    """Write a finished deploy into the bundle through ``store`` (so the index and the catalog see it)."""
    from modelkb.ids import utc_now
    from modelkb.serverless.example_request import example_request

    digest = image_digest(
        result.image_uri, region=plan.region, endpoint_url=plan.endpoint_url, session=session
    )
    record = deployment_record(
        plan, result, digest=digest, example=example_request(spec), deployed=utc_now()
    )
    store.update_metadata(experiment_id, {"serverless": record})
    return record


def deploy(
    plan: DeployPlan, *, build_and_push: Callable[[str], None], session: Any = None
) -> DeployResult:
    """Run a plan whose package is rendered: ECR repository, image (through ``build_and_push``), stack.

    Args:
        plan: From :func:`plan_deploy`.
        build_and_push: Called with the target image URI; builds and pushes the image.
        session: A boto3 session (default: the environment's credentials).
    """
    uri = ensure_repository(
        plan.repository, region=plan.region, endpoint_url=plan.endpoint_url, session=session
    )
    image_uri = f"{uri}:{plan.image_tag}"
    build_and_push(image_uri)
    return deploy_stack(
        plan.package_dir / "template.yaml",
        stack_name=plan.stack_name,
        region=plan.region,
        parameters={"ImageUri": image_uri},
        endpoint_url=plan.endpoint_url,
        session=session,
    )
