"""The hub's SAM template: it translates and lints; the team store is private; the catalog is public only when asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelkb.serverless import sam
from modelkb.serverless.hub_deploy import hub_template

REPO = Path(__file__).resolve().parents[2]
TEAM = "modelkb-team-test"


def _translated(public: str) -> dict[str, Any]:
    return sam.translate(
        sam.load_template(hub_template()),
        {
            "InferenceImageUri": sam.PLACEHOLDER_IMAGE,
            "BuilderImageUri": sam.PLACEHOLDER_IMAGE,
            "TeamStoreBucketName": TEAM,
            "PublicCatalog": public,
        },
    )


def _condition(value: Any, public: bool) -> Any:
    """``Fn::If`` on IsPublicCatalog resolved as CloudFormation would."""
    if isinstance(value, dict) and "Fn::If" in value:
        name, yes, no = value["Fn::If"]
        assert name == "IsPublicCatalog"
        return yes if public else no
    return value


def test_the_repository_template_is_the_shipped_one() -> None:
    # the same bytes whether modelkb runs from this checkout or from a wheel installed from it
    shipped = hub_template().read_bytes()
    assert (REPO / "template.yaml").read_bytes() == shipped
    assert (REPO / "templates" / "hub" / "template.yaml").read_bytes() == shipped


@pytest.mark.parametrize("public", ["false", "true"])
def test_hub_template_lints_as_written_and_translated(public: str) -> None:
    assert sam.lint(hub_template().read_text(encoding="utf-8")) == []
    translated = _translated(public)
    assert not any(
        r["Type"].startswith("AWS::Serverless::") for r in translated["Resources"].values()
    )
    assert sam.lint(translated) == []


def test_team_store_is_private_versioned_encrypted_and_notifies_the_queue() -> None:
    resources = _translated("false")["Resources"]
    bucket = resources["TeamStoreBucket"]
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    notifications = props["NotificationConfiguration"]["QueueConfigurations"]
    for notification in notifications:
        assert notification["Event"] == "s3:ObjectCreated:*"
        assert notification["Queue"] == {"Fn::GetAtt": ["BuildQueue", "Arn"]}
    suffixes = [n["Filter"]["S3Key"]["Rules"] for n in notifications]
    assert suffixes == [  # a run's metadata (written last), a project's settings
        [{"Name": "suffix", "Value": "metadata.json"}],
        [{"Name": "suffix", "Value": "project.json"}],
    ]
    # S3 checks it may send to the queue when the notification is set: the policy comes first,
    # and it names the bucket by its parameter (a GetAtt on the bucket would be a cycle).
    assert bucket["DependsOn"] == "BuildQueuePolicy"
    (statement,) = resources["BuildQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert "TeamStoreBucketName" in json.dumps(statement["Condition"]["ArnLike"])
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]


def test_builder_is_one_batched_image_function_with_a_dead_letter_queue() -> None:
    translated = _translated("false")
    resources = translated["Resources"]
    function = resources["CatalogBuilderFunction"]["Properties"]
    assert function["PackageType"] == "Image"
    assert function["ReservedConcurrentExecutions"] == 1
    env = function["Environment"]["Variables"]
    assert {"MODELKB_TEAM_STORE", "MODELKB_CATALOG_BUCKET"} <= env.keys()
    (mapping,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["BuildQueue", "Arn"]}
    assert props["BatchSize"] >= 100 and props["MaximumBatchingWindowInSeconds"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": 2}  # the minimum: least over-pull
    queue = resources["BuildQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["BuildDeadLetterQueue", "Arn"]
    }
    longest = translated["Parameters"]["BuilderTimeout"]["MaxValue"]
    assert queue["VisibilityTimeout"] >= 6 * longest
    # read-only on the team store, read-write on the catalog
    role = resources["CatalogBuilderFunctionRole"]["Properties"]
    by_bucket = {
        json.dumps(s["Resource"]): set(s["Action"])
        for p in role["Policies"]
        for s in p["PolicyDocument"]["Statement"]
    }
    team = next(actions for where, actions in by_bucket.items() if "TeamStoreBucketName" in where)
    catalog = next(actions for where, actions in by_bucket.items() if "CatalogBucket" in where)
    assert "s3:GetObject" in team and not {a for a in team if a.startswith(("s3:Put", "s3:Delete"))}
    assert "s3:PutObject" in catalog
    assert translated["Resources"]["InferenceFunction"]["Properties"]["PackageType"] == "Image"


@pytest.mark.parametrize("public", [False, True])
def test_the_catalog_is_the_only_public_thing_and_only_when_asked(public: bool) -> None:
    translated = _translated(str(public).lower())
    resources = translated["Resources"]
    assert translated["Parameters"]["PublicCatalog"]["Default"] == "false"
    block = resources["CatalogBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    resolved = {key: _condition(value, public) for key, value in block.items()}
    assert resolved["BlockPublicAcls"] is True and resolved["IgnorePublicAcls"] is True
    assert resolved["BlockPublicPolicy"] is (not public)
    assert resolved["RestrictPublicBuckets"] is (not public)
    exists = {
        name for name, r in resources.items() if r.get("Condition") != "IsPublicCatalog" or public
    }
    public_statements = [
        name
        for name in exists
        for statement in (resources[name].get("Properties", {}).get("PolicyDocument") or {}).get(
            "Statement", []
        )
        if statement.get("Effect") == "Allow" and statement.get("Principal") == "*"
    ]
    assert public_statements == (["CatalogBucketPolicy"] if public else [])
