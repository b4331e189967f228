"""The hub's catalog builder against a moto S3 server: recorded events in, a published catalog out.

Runs are made locally and pushed with ``modelkb push`` into the team store bucket, the handler is
invoked with recorded S3 notifications (SQS-wrapped, as the hub delivers them, or direct) naming
them, and the catalog bucket is read back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from support import s3_events
from support.runs import make_bundle, tiny_onnx_model

from modelkb.cli import cli
from modelkb.serverless import hub_builder

TEAM, PREFIX, CATALOG = "modelkb-team-test", "team", "modelkb-catalog-test"


@pytest.fixture
def s3(aws_moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=aws_moto)
    for bucket in (TEAM, CATALOG):
        client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=TEAM, VersioningConfiguration={"Status": "Enabled"})
    monkeypatch.setenv("MODELKB_TEAM_STORE", f"s3://{TEAM}/{PREFIX}")
    monkeypatch.setenv("MODELKB_CATALOG_BUCKET", CATALOG)
    monkeypatch.setenv("MODELKB_HUB_WORK_DIR", str(tmp_path / "lambda-tmp"))
    return client


def _push(local: Path, project: str, *, seed: int, model: bytes | None = None) -> str:
    run_id = make_bundle(local, project, seed=seed, model=model)
    pushed = CliRunner().invoke(
        cli,
        ["push", run_id, f"s3://{TEAM}/{PREFIX}", "--store", str(local)],
        catch_exceptions=False,
    )
    assert pushed.exit_code == 0, pushed.output
    return run_id


def _keys(s3, bucket: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def _notifications(s3, run_ids: list[str]) -> list[dict]:
    keys = [k for k in s3_events.run_keys(TEAM, s3, PREFIX) if k.split("/")[-2] in run_ids]
    return [s3_events.s3_event([s3_events.s3_record(TEAM, key, s3=s3)]) for key in keys]


def _page(s3, key: str) -> str:
    return s3.get_object(Bucket=CATALOG, Key=key)["Body"].read().decode("utf-8")


def test_new_runs_become_catalog_pages_and_a_later_run_renders_alone(s3, tmp_path: Path) -> None:
    local = tmp_path / "laptop-store"
    model = tiny_onnx_model()
    first = [
        _push(local, "Digits CNN", seed=1, model=model),
        _push(local, "Digits CNN", seed=2),
        _push(local, "Iris MLP", seed=3),
    ]
    event = s3_events.sqs_event(_notifications(s3, first))
    report = hub_builder.lambda_handler(event, None)
    assert report["runs_seen"] == 3 and report["built"] and report["skipped"] == 0, report
    assert report["experiments"] == 3 and report["pages_rendered"] == 3, report
    assert report["objects_uploaded"] > 0 and not report["problems"], report
    json.dumps(report)  # the handler's answer is plain JSON

    keys = _keys(s3, CATALOG)
    assert {"index.html", "projects/digits-cnn/index.html", "projects/iris-mlp/index.html"} <= keys
    for run_id in first:
        assert f"experiments/{run_id}/index.html" in keys, run_id
        assert f"experiments/{run_id}/bundle.zip" in keys, run_id
    if model is not None:  # fetched on demand from the team store for the page
        assert f"experiments/{first[0]}/model.onnx" in keys
        page_data = json.loads(_page(s3, f"experiments/{first[0]}/data.json"))
        assert page_data["model"] is True  # the page knows it (try-the-model, the graph)
    assert not [k for k in keys if k.startswith(".") or "/." in k]  # never the build cache
    assert not [k for k in keys if k.endswith("/metadata.json")]  # pages, not bundles
    assert first[0] in _page(s3, "projects/digits-cnn/index.html") or first[0] in json.dumps(
        _page(s3, f"experiments/{first[0]}/index.html")
    )
    head = s3.head_object(Bucket=CATALOG, Key="index.html")
    assert head["ContentType"].startswith("text/html") and head["CacheControl"] == "no-cache"

    # one more run, announced by S3 directly: only its page is rendered, few objects change
    later = _push(local, "Digits CNN", seed=4)
    (direct,) = _notifications(s3, [later])
    again = hub_builder.lambda_handler(direct, None)
    assert again["runs_seen"] == 1 and again["pages_rendered"] == 1, again
    assert again["experiments"] == 4
    assert again["objects_uploaded"] < report["objects_uploaded"], (again, report)
    assert f"experiments/{later}/index.html" in _keys(s3, CATALOG)

    # the same notification delivered twice (S3 delivers at least once): nothing to render
    repeat = hub_builder.lambda_handler(s3_events.sqs_event([direct, direct]), None)
    assert repeat["runs_seen"] == 1 and repeat["records"] == 2
    assert repeat["pages_rendered"] == 0 and repeat["experiments"] == 4, repeat

    # a cold start (the same /tmp path, empty) renders every page again and uploads nothing: the
    # fetched files keep their S3 times (so bundle.zip and the build's stamps are the same)
    shutil.rmtree(tmp_path / "lambda-tmp")
    cold = hub_builder.lambda_handler(direct, None)
    assert cold["pages_rendered"] == 4 and cold["experiments"] == 4, cold
    assert cold["objects_uploaded"] == 0 < cold["objects_unchanged"], cold
    if model is not None:
        assert json.loads(_page(s3, f"experiments/{first[0]}/data.json"))["model"] is True


def test_a_changed_primary_metric_rebuilds_that_project(s3, tmp_path: Path) -> None:
    local = tmp_path / "laptop-store"
    runs = [_push(local, "Digits CNN", seed=20), _push(local, "Iris MLP", seed=21)]
    first = hub_builder.lambda_handler(s3_events.sqs_event(_notifications(s3, runs)), None)
    assert first["pages_rendered"] == 2
    changed = CliRunner().invoke(
        cli,
        ["project", "Digits CNN", "--primary-metric", "loss", "--store", f"s3://{TEAM}/{PREFIX}"],
        catch_exceptions=False,
    )
    assert changed.exit_code == 0, changed.output
    key = f"{PREFIX}/digits-cnn/project.json"
    assert key in _keys(s3, TEAM)
    event = s3_events.sqs_event([s3_events.s3_event([s3_events.s3_record(TEAM, key, s3=s3)])])
    report = hub_builder.lambda_handler(event, None)
    assert report["built"] and report["settings_seen"] == 1 and report["runs_seen"] == 0, report
    assert report["pages_rendered"] == 1 and report["objects_uploaded"] > 0, report


def test_a_burst_of_runs_is_one_build(s3, tmp_path: Path) -> None:
    local = tmp_path / "laptop-store"
    runs = [_push(local, f"Sweep {i % 2}", seed=10 + i) for i in range(8)]
    notifications = _notifications(s3, runs)
    event = s3_events.sqs_event(notifications + notifications[:3])  # with redeliveries
    report = hub_builder.lambda_handler(event, None)
    assert report["records"] == 11 and report["runs_seen"] == 8
    assert report["pages_rendered"] == 8 and report["experiments"] == 8, report


def test_bad_events_are_skipped_never_raised(s3, tmp_path: Path) -> None:
    report = hub_builder.lambda_handler(s3_events.load("sqs_s3_test_event.json"), None)
    assert report["built"] is False and report["skipped"] == 1
    assert _keys(s3, CATALOG) == set()  # no run, no build, nothing published

    local = tmp_path / "laptop-store"
    run_id = _push(local, "Digits CNN", seed=5)
    good = _notifications(s3, [run_id])
    foreign = s3_events.s3_event([s3_events.s3_record("another-bucket", "x/metadata.json")])
    event = s3_events.sqs_event(["{not json", foreign, *good])
    mixed = hub_builder.lambda_handler(event, None)
    assert mixed["built"] and mixed["runs_seen"] == 1 and mixed["skipped"] == 2, mixed
    assert f"experiments/{run_id}/index.html" in _keys(s3, CATALOG)


def test_a_bundle_that_cannot_be_read_is_a_problem_not_a_crash(s3, tmp_path: Path) -> None:
    local = tmp_path / "laptop-store"
    good = _push(local, "Digits CNN", seed=6)
    broken_key = f"{PREFIX}/digits-cnn/01kbn4c2w0a7m9t3r5x8y6z2qd/metadata.json"
    s3.put_object(Bucket=TEAM, Key=broken_key, Body=b'{"id": "01kbn4c2w0a7m9t3r5x8y6z2qd"}')
    event = s3_events.sqs_event(_notifications(s3, [good, "01kbn4c2w0a7m9t3r5x8y6z2qd"]))
    report = hub_builder.lambda_handler(event, None)
    assert report["runs_seen"] == 2 and report["built"]
    assert f"experiments/{good}/index.html" in _keys(s3, CATALOG)
    assert "experiments/01kbn4c2w0a7m9t3r5x8y6z2qd/index.html" not in _keys(s3, CATALOG)


def test_missing_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelkb.errors import DeployError

    monkeypatch.delenv("MODELKB_TEAM_STORE", raising=False)
    with pytest.raises(DeployError, match="MODELKB_TEAM_STORE=s3://bucket/prefix"):
        hub_builder.lambda_handler(s3_events.load("s3_put.json"), None)
    monkeypatch.setenv("MODELKB_TEAM_STORE", "s3://team")
    monkeypatch.delenv("MODELKB_CATALOG_BUCKET", raising=False)
    with pytest.raises(DeployError, match="MODELKB_CATALOG_BUCKET"):
        hub_builder.lambda_handler(s3_events.load("s3_put.json"), None)
