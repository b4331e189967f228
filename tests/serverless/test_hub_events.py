"""The catalog builder's notifications: every recorded shape gives the run keys; the rest is skipped."""

from __future__ import annotations

import json

from support import s3_events

from modelkb.serverless.hub_events import RunKey, run_keys

BUCKET = "modelkb-team-test"
RECORDED_KEY = "team/digits-cnn/01kbn4c2w0a7m9t3r5x8y6z2qd/metadata.json"
ID = "01kbn4c2w0a7m9t3r5x8y6z2qd"


def test_every_recorded_shape_names_the_run() -> None:
    for name in ("sqs_s3_put.json", "s3_put.json", "eventbridge_object_created.json"):
        found = run_keys(s3_events.load(name), bucket=BUCKET, prefix="team")
        assert found.runs == [RunKey(BUCKET, RECORDED_KEY)], name
        assert found.records == 1 and not found.skipped, name
        assert found.runs[0].experiment_id == ID and found.runs[0].project == "digits-cnn"


def test_s3_test_event_is_skipped() -> None:
    found = run_keys(s3_events.load("sqs_s3_test_event.json"), bucket=BUCKET, prefix="team")
    assert found.runs == [] and len(found.skipped) == 1 and "test event" in found.skipped[0]


def test_a_batch_is_deduplicated_and_keeps_its_order() -> None:
    other = "team/digits-cnn/01kbn4c2w0a7m9t3r5x8y6z2qe/metadata.json"
    records = [s3_events.s3_record(BUCKET, key) for key in (other, RECORDED_KEY, other)]
    event = s3_events.sqs_event([s3_events.s3_event([record]) for record in records])
    found = run_keys(event, bucket=BUCKET, prefix="team")
    assert [run.key for run in found.runs] == [other, RECORDED_KEY]
    assert found.records == 3 and not found.skipped


def test_what_is_not_a_new_run_of_this_store_is_skipped_with_its_reason() -> None:
    def record(key: str, *, bucket: str = BUCKET, name: str = "ObjectCreated:Put") -> dict:
        made = s3_events.s3_record(bucket, key)
        made["eventName"] = name
        return s3_events.s3_event([made])

    bodies = [
        record(RECORDED_KEY, bucket="someone-else"),
        record(RECORDED_KEY.replace("metadata.json", "model.onnx")),
        record("team/digits-cnn/not-an-id/metadata.json"),
        record(f"team/{ID}/metadata.json"),  # no project folder
        record(f"other/digits-cnn/{ID}/metadata.json"),
        record(f"team/deeper/digits-cnn/{ID}/metadata.json"),
        record(RECORDED_KEY, name="ObjectRemoved:Delete"),
        "not json {",
        json.dumps({"hello": "world"}),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
        record(RECORDED_KEY),
    ]
    found = run_keys(s3_events.sqs_event(bodies), bucket=BUCKET, prefix="team")
    assert found.runs == [RunKey(BUCKET, RECORDED_KEY)]
    reasons = "\n".join(found.skipped)
    assert len(found.skipped) == len(bodies) - 1, reasons
    for part in (
        "someone-else",
        "model.onnx",
        "not-an-id",
        "outside the team store prefix",
        "ObjectRemoved:Delete is not an object creation",
        "not JSON",
        "neither an S3 event notification",
        "without its s3 section",
    ):
        assert part in reasons, part


def test_keys_are_url_decoded_and_a_store_at_the_bucket_root_works() -> None:
    key = f"my team/digits-cnn/{ID}/metadata.json"
    event = s3_events.s3_event([s3_events.s3_record(BUCKET, key)])
    assert "my+team/" in json.dumps(event)
    assert run_keys(event, bucket=BUCKET, prefix="my team").runs == [RunKey(BUCKET, key)]
    root = f"digits-cnn/{ID}/metadata.json"
    event = s3_events.s3_event([s3_events.s3_record(BUCKET, root)])
    assert run_keys(event, bucket=BUCKET).runs == [RunKey(BUCKET, root)]
    assert run_keys(event, bucket=BUCKET, prefix="team").runs == []


def test_garbage_never_raises() -> None:
    for event in (None, [], "text", {}, {"Records": "x"}, {"Records": [None]}, {"detail-type": 1}):
        found = run_keys(event, bucket=BUCKET)
        assert found.runs == [] and found.skipped


def test_a_projects_settings_file_is_a_change_to_build_not_a_run() -> None:
    keys = [
        "team/digits-cnn/project.json",
        "team/digits-cnn/project.json",
        "team/Bad Slug/project.json",
    ]
    event = s3_events.sqs_event(
        [s3_events.s3_event([s3_events.s3_record(BUCKET, k)]) for k in keys]
    )
    found = run_keys(event, bucket=BUCKET, prefix="team")
    assert found.runs == [] and found.settings == ["digits-cnn"]
    assert len(found.skipped) == 1 and "Bad Slug" in found.skipped[0]
    root = s3_events.s3_event([s3_events.s3_record(BUCKET, "iris/project.json")])
    assert run_keys(root, bucket=BUCKET).settings == ["iris"]
