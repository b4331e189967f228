"""Deploy the hub: push the catalog builder image to ECR, then create or update the hub's stack.

The hub's SAM template ships with ModelKB (``modelkb/templates/hub/template.yaml``, the repository's
``template.yaml``); it is translated locally and deployed by :func:`modelkb.serverless.deploy.deploy_stack`,
as a run's deployment is. The catalog stays private unless ``public`` is set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from modelkb.errors import DeployError
from modelkb.serverless.deploy import (
    DeployResult,
    check_stack_name,
    deploy_stack,
    ensure_repository,
)

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def hub_template() -> Path:
    """The hub's SAM template as installed with ModelKB."""
    return Path(str(resources.files("modelkb.templates").joinpath("hub", "template.yaml")))


@dataclass
class HubPlan:
    """What ``modelkb hub deploy`` will do; printed as is by ``--dry-run``."""

    region: str
    stack_name: str
    team_bucket: str
    team_prefix: str
    catalog_bucket: str
    public: bool
    repository: str
    builder_tag: str
    endpoint_url: str | None = None
    steps: list[str] = field(default_factory=list)

    @property
    def team_store(self) -> str:
        return f"s3://{self.team_bucket}/{self.team_prefix}".rstrip("/")

    def describe(self) -> str:
        lines = [f"Hub deploy plan (region {self.region}, stack {self.stack_name}):"]
        lines += [f"  {number}. {step}" for number, step in enumerate(self.steps, 1)]
        return "\n".join(lines)

    def parameters(self, *, builder_image: str, inference_image: str) -> dict[str, str]:
        """The stack's parameters."""
        return {
            "TeamStoreBucketName": self.team_bucket,
            "TeamStorePrefix": self.team_prefix,
            "CatalogBucketName": self.catalog_bucket,
            "PublicCatalog": "true" if self.public else "false",
            "BuilderImageUri": builder_image,
            "InferenceImageUri": inference_image,
        }


def plan_hub(
    *,
    region: str,
    team_bucket: str,
    team_prefix: str = "",
    catalog_bucket: str = "",
    public: bool = False,
    stack_name: str = "modelkb-hub",
    repository: str = "modelkb-hub",
    builder_tag: str = "builder",
    builder_image: str | None = None,
    inference_image: str | None = None,
    endpoint_url: str | None = None,
) -> HubPlan:
    """The plan for a hub (no AWS call, nothing written).

    Raises:
        DeployError: A bucket or stack name AWS would refuse.
    """
    for what, name in (("team store bucket", team_bucket), ("catalog bucket", catalog_bucket)):
        if name and not _BUCKET.match(name):
            raise DeployError(
                f"invalid {what} name {name!r}: 3-63 lowercase letters, digits, dots and hyphens",
                hint="S3 bucket names are global: try one with your team's or account's name in it.",
            )
    plan = HubPlan(
        region=region,
        stack_name=check_stack_name(stack_name),
        team_bucket=team_bucket,
        team_prefix=team_prefix.strip("/"),
        catalog_bucket=catalog_bucket,
        public=public,
        repository=repository,
        builder_tag=builder_tag,
        endpoint_url=endpoint_url,
    )
    if builder_image:
        builder = [f"use the catalog builder image {builder_image}"]
    else:
        builder = [
            f"create the ECR repository {repository!r} if missing",
            "build the catalog builder image (the modelkb wheel, mkdocs, mkdocs-material, netron and "
            "boto3 vendored for manylinux_2_28_x86_64 / CPython 3.12, COPY-only Dockerfile) and "
            f"push it as <account>.dkr.ecr.{region}.amazonaws.com/{repository}:{builder_tag}",
        ]
    plan.steps = [
        *builder,
        f"use the inference image {inference_image}"
        if inference_image
        else "build and push the inference image of the given run (as `modelkb deploy` does)",
        "translate the hub template with the SAM translator locally",
        f"create or update the stack {stack_name!r} (CAPABILITY_IAM): the private, versioned team "
        f"store bucket {team_bucket!r}, the build queue and its dead-letter queue, the catalog "
        "builder function, the catalog bucket "
        + (
            "(PUBLIC: a public-read website)"
            if public
            else "(private: nobody outside the account can read it)"
        )
        + " and the inference function behind an HTTP API",
        f"print the team store address ({plan.team_store}) and the stack's outputs",
    ]
    return plan


def deploy_hub(
    plan: HubPlan,
    *,
    inference_image: str,
    builder_image: str | None = None,
    build_and_push: Callable[[str], None] | None = None,
    session: Any = None,
) -> DeployResult:
    """Run a hub plan: the builder image (given, or built through ``build_and_push``), then the stack.

    Args:
        plan: From :func:`plan_hub`.
        inference_image: ECR URI of the inference image.
        builder_image: ECR URI of an already pushed catalog builder image.
        build_and_push: Called with the target URI to build and push the builder image when
            ``builder_image`` is not given.
        session: A boto3 session (default: the environment's credentials).
    """
    if builder_image is None:
        if build_and_push is None:
            raise DeployError("no catalog builder image: pass builder_image or build_and_push")
        uri = ensure_repository(
            plan.repository, region=plan.region, endpoint_url=plan.endpoint_url, session=session
        )
        builder_image = f"{uri}:{plan.builder_tag}"
        build_and_push(builder_image)
    result = deploy_stack(
        hub_template(),
        stack_name=plan.stack_name,
        region=plan.region,
        parameters=plan.parameters(builder_image=builder_image, inference_image=inference_image),
        endpoint_url=plan.endpoint_url,
        session=session,
        purpose="hub",
    )
    result.image_uri = builder_image
    return result
