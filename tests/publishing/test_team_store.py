"""The team store: ``s3://bucket/prefix`` as the store of every command and of the collector.

Against a real moto server on 127.0.0.1. Each "machine" is a separate cache folder
(``MODELKB_CACHE``), so what one machine wrote reaches another only through S3.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from support.processes import VENV_BIN, free_port, run_cli, stop, wait_for_port
from support.runs import artifact_bytes, make_bundle
from support.user_programs import run_program

from modelkb.errors import RemoteConflictError
from modelkb.experiment import Experiment
from modelkb.publishing.integrity import verify_files
from modelkb.store import Store, open_store
from modelkb.team_store import TeamStore

TEAM = "s3://team/ml"


@pytest.fixture
def team(moto: str, s3, monkeypatch: pytest.MonkeyPatch) -> str:
    s3.create_bucket(Bucket="team")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    return TEAM


def machine(tmp_path: Path, name: str) -> TeamStore:
    store = open_store(TEAM, cache_dir=tmp_path / "machines" / name)
    assert isinstance(store, TeamStore)
    return store


def keys(s3, prefix: str = "ml/") -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="team", Prefix=prefix)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def test_a_run_recorded_into_s3_reaches_another_machine_weights_only_on_demand(
    team: str, s3, tmp_path: Path
) -> None:
    here = machine(tmp_path, "laptop")
    run_id = make_bundle(here)  # the collector writes into the cache, then uploads when sealed
    prefix = f"ml/digits-cnn/{run_id}/"
    local = here.bundle_dir("Digits CNN", run_id)
    listed = json.loads((local / "metadata.json").read_text())["artifacts"]
    expected = {prefix + a["path"] for a in listed} | {prefix + "metadata.json"}
    assert keys(s3) == expected

    there = machine(tmp_path, "cluster")
    assert [run.id for run in there.search()] == [run_id]
    folder = there.bundle_dir("Digits CNN", run_id)
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json"]  # all that ls/show need

    assert there.get(run_id, files=False).path == folder  # show, compare: metadata only
    assert not (folder / "model.safetensors").exists()
    bundle = there.get(run_id)  # package, serve, reproduce: the files come now
    assert artifact_bytes(bundle.path) == artifact_bytes(local)
    verify_files(bundle.path, bundle.metadata)


def test_every_command_takes_an_s3_store(team: str, tmp_path: Path) -> None:
    run_id = make_bundle(machine(tmp_path, "laptop"))
    env = {"MODELKB_CACHE": str(tmp_path / "cli-cache")}
    listed = run_cli("ls", "--store", TEAM, "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)] == [run_id]
    shown = run_cli("show", run_id[:8], env={**env, "MODELKB_HOME": TEAM})
    assert shown.returncode == 0 and run_id in shown.stdout, shown.stderr
    hits = run_cli("query", "val_accuracy > 0.7", "--store", TEAM, "--format", "json", env=env)
    assert hits.returncode == 0 and run_id in hits.stdout, hits.stderr
    # the cache folder sits where MODELKB_CACHE says, in the local store's layout
    assert (tmp_path / "cli-cache" / "stores" / "team" / "ml" / "digits-cnn" / run_id).is_dir()
    assert not Path("s3:").exists()


def test_refreshing_an_unchanged_store_costs_one_listing_and_no_get(
    team: str, tmp_path: Path
) -> None:
    laptop = machine(tmp_path, "laptop")
    ids = {make_bundle(laptop, seed=seed) for seed in range(3)}
    assert {run.id for run in machine(tmp_path, "cluster").search()} == ids  # first pull: 3 runs

    again = machine(tmp_path, "cluster")
    calls: list[str] = []
    again.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.append(model.name)
    )
    assert {run.id for run in again.search()} == ids
    assert calls == ["ListObjectsV2"]

    newer = make_bundle(laptop, seed=9)
    calls.clear()
    latest = machine(tmp_path, "cluster")
    latest._client = again.client  # the same counting client
    assert {run.id for run in latest.search()} == ids | {newer}
    # one listing, then only the new run: metadata.json and its small files (no weights)
    assert calls.count("ListObjectsV2") == 1
    assert calls == ["ListObjectsV2", "GetObject"]  # then the new run's metadata.json alone


def test_metadata_edits_are_conditional_and_a_lost_race_overwrites_nothing(
    team: str, s3, tmp_path: Path
) -> None:
    run_id = make_bundle(machine(tmp_path, "laptop"))
    alice, bob = machine(tmp_path, "alice"), machine(tmp_path, "bob")
    alice.refresh(), bob.refresh()
    alice.update_metadata(run_id, {"notes": "deployed by alice"})
    key = f"ml/digits-cnn/{run_id}/metadata.json"
    assert (
        json.loads(s3.get_object(Bucket="team", Key=key)["Body"].read())["notes"]
        == "deployed by alice"
    )

    with pytest.raises(RemoteConflictError, match="changed in s3://team/ml since it was read here"):
        bob.update_metadata(run_id, {"notes": "bob was here"})
    assert (
        json.loads(s3.get_object(Bucket="team", Key=key)["Body"].read())["notes"]
        == "deployed by alice"
    )
    assert (
        bob.get(run_id, files=False).metadata.get("notes") != "bob was here"
    )  # local copy restored

    bob_again = machine(tmp_path, "bob")  # the next command reads the new version first
    assert bob_again.get(run_id, files=False).metadata["notes"] == "deployed by alice"
    bob_again.update_metadata(run_id, {"tags": ["checked"]})
    remote = json.loads(s3.get_object(Bucket="team", Key=key)["Body"].read())
    assert remote["notes"] == "deployed by alice" and remote["tags"] == ["checked"]


def test_an_upload_never_overwrites_another_writers_bundle(team: str, s3, tmp_path: Path) -> None:
    here = machine(tmp_path, "laptop")
    run_id = make_bundle(here)
    folder = here.bundle_dir("Digits CNN", run_id)
    key = f"ml/digits-cnn/{run_id}/model.safetensors"
    s3.put_object(Bucket="team", Key=key, Body=b"someone else's weights")
    # the same id pushed again from a copy with other weights: refused, nothing replaced
    copy = tmp_path / "copy" / "digits-cnn" / run_id
    copy.parent.mkdir(parents=True)
    import shutil

    shutil.copytree(folder, copy)
    from modelkb.publishing.s3 import push_bundle

    with pytest.raises(RemoteConflictError, match="already holds other bytes"):
        push_bundle(Store(tmp_path / "copy").get(run_id), TEAM)
    assert s3.get_object(Bucket="team", Key=key)["Body"].read() == b"someone else's weights"


def test_metrics_go_up_while_the_run_trains(team: str, s3, tmp_path: Path) -> None:
    store = machine(tmp_path, "node")
    with Experiment("Live", "ada", store=store, capture_code=False) as exp:
        key = f"ml/live/{exp.id}/metrics.jsonl"
        for epoch in range(3):
            exp.log_metrics({"loss": 1.0 / (epoch + 1)}, epoch=epoch)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if key in keys(s3):
                    lines = s3.get_object(Bucket="team", Key=key)["Body"].read().splitlines()
                    if len(lines) == epoch + 1:
                        break
                time.sleep(0.05)
            else:
                pytest.fail(f"epoch {epoch} never reached S3")
        assert f"ml/live/{exp.id}/metadata.json" not in keys(s3)  # not complete: not a bundle yet
        assert [run.id for run in machine(tmp_path, "reader").search()] == []
    sealed = machine(tmp_path, "reader2").get(exp.id)
    verify_files(sealed.path, sealed.metadata)  # the sealed metrics.jsonl replaced the live copy


@pytest.fixture
def own_moto(s3, monkeypatch: pytest.MonkeyPatch):
    """A moto server this test may stop and start again (on the same port)."""
    port = free_port()
    command = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    servers: list[subprocess.Popen] = []

    def start() -> None:
        servers.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        wait_for_port(port, servers[-1])
        import boto3

        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket="team")

    def halt() -> None:
        stop(servers[-1])

    start()
    yield url, start, halt
    for server in servers:
        stop(server)


def test_the_network_drops_mid_upload_training_finishes_and_the_next_command_uploads(
    own_moto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, start, halt = own_moto
    store = machine(tmp_path, "node")
    puts: list[str] = []

    def drop_after_two(params, **_) -> None:
        puts.append(params["Key"])
        if len(puts) == 3:
            halt()  # the server goes away in the middle of the bundle's upload

    store.client.meta.events.register("before-parameter-build.s3.PutObject", drop_after_two)
    run_id = make_bundle(store)  # finishes: nothing raised to the training code
    folder = store.bundle_dir("Digits CNN", run_id)
    assert (folder / "metadata.json").is_file()
    assert "goes up with the next command" in caplog.text

    start()  # the network is back (an empty server: everything goes again)
    later = open_store(TEAM, cache_dir=store.root)  # the next command on that machine
    assert [run.id for run in later.search()] == [run_id]
    assert later.unsent == []
    fresh = machine(tmp_path, "elsewhere")
    bundle = fresh.get(run_id)
    verify_files(bundle.path, bundle.metadata)
    assert fresh.location.url() == TEAM and url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    ("program", "project"), [("torch_sealing.py", "sealing"), ("keras_sealing.py", "keras-sealing")]
)
def test_a_script_training_into_s3_is_uploaded_by_its_background_sealer(
    team: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, program: str, project: str
) -> None:
    pytest.importorskip("torch" if program.startswith("torch") else "keras")
    monkeypatch.setenv("MODELKB_CACHE", str(tmp_path / "node-cache"))
    written = run_program(program, TEAM, tmp_path)  # exits right after fit; sealing goes on
    run_id = written["ids"][0] if "ids" in written else written["id"]
    reader = machine(tmp_path, "reader")
    deadline = time.monotonic() + 120
    while run_id not in {run.id for run in reader.search()}:
        assert time.monotonic() < deadline, "the sealed run never reached S3"
        time.sleep(0.5)
        reader = machine(tmp_path, "reader")
    bundle = reader.get(run_id)
    verify_files(bundle.path, bundle.metadata)
    assert bundle.path.parent.name == project
    assert bundle.metadata["onnx"]["max_abs_diff"] < 1e-4  # exported and checked by the sealer
    assert (bundle.path / "model.onnx").is_file()


def test_hostile_keys_and_metadata_in_the_bucket_are_skipped_and_never_leave_the_cache(
    team: str, s3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = make_bundle(machine(tmp_path, "laptop"))
    good = json.loads(
        s3.get_object(Bucket="team", Key=f"ml/digits-cnn/{run_id}/metadata.json")["Body"].read()
    )
    other = "01m91h4qhgkpez1vmssemkte1v"
    escape = {"path": "../../../escaped.txt", "size": 5, "sha256": "0" * 64}
    evil = {**good, "id": other, "artifacts": [escape]}
    s3.put_object(Bucket="team", Key=f"ml/digits-cnn/{other}/metadata.json", Body=json.dumps(evil))
    s3.put_object(Bucket="team", Key=f"ml/digits-cnn/{other}/escaped.txt", Body=b"owned")
    s3.put_object(Bucket="team", Key=f"ml/../{other}/metadata.json", Body=json.dumps(evil))
    wrong_project = {**good, "id": "01m91h4qhgkpez1vmssemkte1w", "project": "Elsewhere"}
    s3.put_object(
        Bucket="team",
        Key="ml/digits-cnn/01m91h4qhgkpez1vmssemkte1w/metadata.json",
        Body=json.dumps(wrong_project),
    )
    s3.put_object(
        Bucket="team",
        Key="ml/digits-cnn/01m91h4qhgkpez1vmssemkte1x/metadata.json",
        Body=b"{not json",
    )

    reader = machine(tmp_path, "reader")
    listed = {run.id for run in reader.search()}
    assert run_id in listed and "01m91h4qhgkpez1vmssemkte1w" not in listed
    assert "belongs to another project folder" in caplog.text and "is not JSON" in caplog.text
    from modelkb.errors import IntegrityError

    with pytest.raises(IntegrityError, match="would leave the bundle folder"):
        reader.get(other)  # its metadata is read, its files are refused before any download
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (reader.root.parent / other).exists()


def test_project_settings_are_shared_through_s3_and_edited_conditionally(
    team: str, s3, tmp_path: Path
) -> None:
    from modelkb.project_settings import read_settings

    make_bundle(machine(tmp_path, "laptop"))
    env = {"MODELKB_CACHE": str(tmp_path / "alice-cache")}
    done = run_cli("project", "Digits CNN", "--primary-metric", "loss", "--store", TEAM, env=env)
    assert done.returncode == 0, done.stderr
    shared = s3.get_object(Bucket="team", Key="ml/digits-cnn/project.json")["Body"].read()
    assert json.loads(shared)["primary_metric"] == "loss"

    bob = machine(tmp_path, "bob")
    bob.sync()
    assert read_settings(bob.root, "Digits CNN")["primary_metric"] == "loss"
    carol = machine(tmp_path, "carol")
    carol.sync()
    bob.write_project_settings("Digits CNN", primary_metric="val_accuracy")
    with pytest.raises(RemoteConflictError, match="settings of 'Digits CNN' changed"):
        carol.write_project_settings("Digits CNN", primary_metric="f1")
    assert read_settings(carol.root, "Digits CNN")["primary_metric"] == "loss"  # restored
    remote = json.loads(
        s3.get_object(Bucket="team", Key="ml/digits-cnn/project.json")["Body"].read()
    )
    assert remote["primary_metric"] == "val_accuracy"


def test_an_archive_imported_into_the_team_store_is_shared(team: str, s3, tmp_path: Path) -> None:
    local = Store(tmp_path / "mine")
    run_id = make_bundle(local.root)
    archive = tmp_path / "run.zip"
    exported = run_cli("export", run_id, "--zip", "--out", str(archive), "--store", str(local.root))
    assert exported.returncode == 0, exported.stderr
    env = {"MODELKB_CACHE": str(tmp_path / "importer-cache")}
    imported = run_cli("import", str(archive), "--store", TEAM, env=env)
    assert imported.returncode == 0, imported.stderr
    assert f"ml/digits-cnn/{run_id}/metadata.json" in keys(s3)
    bundle = machine(tmp_path, "elsewhere").get(run_id)
    verify_files(bundle.path, bundle.metadata)


def test_a_catalog_built_from_the_team_store_offers_the_model_of_each_run(
    team: str, tmp_path: Path
) -> None:
    from support.runs import tiny_onnx_model

    from modelkb.site_builder.build import build_site

    model = tiny_onnx_model()
    if model is None:
        pytest.skip("needs the onnx package")
    run_id = make_bundle(machine(tmp_path, "laptop"), model=model)
    site = tmp_path / "site"
    report = build_site(machine(tmp_path, "builder"), site, zip_bundles=False)
    assert report.experiments == 1 and report.problems == []
    page = site / "experiments" / run_id
    assert (page / "model.onnx").read_bytes() == model  # fetched for the page, checked by sha256
    data = json.loads((page / "data.json").read_text())
    assert data["model"] is True  # the try-the-model panel and the Netron view are offered
    cache = machine(tmp_path, "builder").bundle_dir("Digits CNN", run_id)
    assert not (cache / "model.safetensors").exists()  # without zips, the weights stay in S3
    assert (cache / "requirements.lock").is_file()  # what the page's checklist reads is here


def test_with_the_endpoint_down_commands_use_the_cache_and_name_the_runs_waiting(
    own_moto, tmp_path: Path
) -> None:
    _url, _start, halt = own_moto
    halt()
    run_id = make_bundle(machine(tmp_path, "node"))  # sealed in the cache, its upload failed
    later = machine(tmp_path, "node")
    attempts: list[str] = []
    later.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: attempts.append(model.name)
    )
    assert [run.id for run in later.search()] == [run_id]  # the local copy answers
    assert later.unsent == [run_id]
    assert attempts == ["ListObjectsV2"]  # the listing failed: no upload is tried in vain
