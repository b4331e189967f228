"""push / clone and publish site against a real moto S3 server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.catalog_site import tiny_catalog
from support.processes import VENV_BIN, free_port, local_server, run_cli
from support.runs import artifact_bytes, make_bundle, store_snapshot

from modelkb.errors import (
    BundleExistsError,
    IntegrityError,
    RemoteAccessError,
    RemoteNotFoundError,
    RemoteUnavailableError,
)
from modelkb.publishing.clone import clone
from modelkb.publishing.s3 import push_bundle
from modelkb.publishing.s3_client import content_type
from modelkb.publishing.s3_site import cache_control, publish_site
from modelkb.store import Store

pytest.importorskip("boto3")


# -- push / clone ------------------------------------------------------------------------------------
def test_push_delete_clone_round_trip(moto: str, s3, store: Store, bundle_id: str) -> None:
    s3.create_bucket(Bucket="models")
    bundle = store.get(bundle_id)
    original = artifact_bytes(bundle.path)
    done = run_cli(
        "push",
        bundle_id,
        "s3://models/team/runs",
        "--endpoint-url",
        moto,
        "--store",
        str(store.root),
    )
    assert done.returncode == 0, done.stderr
    gid = done.stdout.strip().splitlines()[-1]
    assert gid == f"s3://models/team/runs/digits-cnn/{bundle_id}"
    assert store.get(bundle_id).metadata["s3"]["global_id"] == gid
    head = s3.head_object(Bucket="models", Key=f"team/runs/digits-cnn/{bundle_id}/model.onnx")
    assert head["Metadata"]["sha256"] == next(
        a["sha256"] for a in bundle.metadata["artifacts"] if a["path"] == "model.onnx"
    )

    shutil.rmtree(store.bundle_dir("Digits CNN", bundle_id))
    store.refresh()
    assert store.search() == []
    done = run_cli(
        "clone", gid, "--store", str(store.root), env={"AWS_ENDPOINT_URL": moto}
    )  # boto3 reads it
    assert done.returncode == 0, done.stderr
    folder = store.bundle_dir("Digits CNN", bundle_id)
    assert artifact_bytes(folder) == original
    assert [run.id for run in store.search()] == [bundle_id]
    assert store.get(bundle_id).metadata["s3"]["global_id"] == gid

    with pytest.raises(BundleExistsError):
        clone(store, gid, endpoint_url=moto)


def test_push_again_sends_only_what_differs(moto: str, s3, store: Store, bundle_id: str) -> None:
    from modelkb.publishing.s3 import make_client

    s3.create_bucket(Bucket="models")
    client = make_client(moto)
    sent: list[str] = []
    client.meta.events.register(
        "before-parameter-build.s3.PutObject", lambda params, **_: sent.append(params["Key"])
    )
    bundle = store.get(bundle_id)
    prefix = f"digits-cnn/{bundle_id}/"
    files = {a["path"] for a in bundle.metadata["artifacts"]} | {"metadata.json"}

    push_bundle(bundle, "s3://models", client=client)
    assert {key.removeprefix(prefix) for key in sent} == files and sent[
        -1
    ] == prefix + "metadata.json"
    sent.clear()
    push_bundle(bundle, "s3://models", client=client)
    assert sent == []
    # a push cut short (no metadata.json yet) or an object changed remotely: only those go again
    s3.delete_object(Bucket="models", Key=prefix + "metadata.json")
    s3.put_object(Bucket="models", Key=prefix + "model.onnx", Body=b"x" * 10)
    push_bundle(bundle, "s3://models", client=client)
    assert sent == [prefix + "model.onnx", prefix + "metadata.json"]
    onnx = next(a for a in bundle.metadata["artifacts"] if a["path"] == "model.onnx")
    assert (
        s3.head_object(Bucket="models", Key=prefix + "model.onnx")["Metadata"]["sha256"]
        == onnx["sha256"]
    )


def test_clone_of_tampered_object_leaves_store_untouched(
    moto: str, s3, store: Store, bundle_id: str, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket="models")
    gid = push_bundle(store.get(bundle_id), "s3://models", endpoint_url=moto)
    s3.put_object(
        Bucket="models",
        Key=f"digits-cnn/{bundle_id}/code/train.py",
        Body=b"print('evil')\n#padding!!!!!!",
    )
    other = Store(tmp_path / "other")
    make_bundle(other.root, "Other")
    snapshot = store_snapshot(other)
    with pytest.raises(IntegrityError, match=r"code/train\.py"):
        clone(other, gid, endpoint_url=moto)
    assert store_snapshot(other) == snapshot


def test_clone_errors_are_one_line_and_store_untouched(
    moto: str, s3, store: Store, bundle_id: str
) -> None:
    snapshot = store_snapshot(store)
    cases = [
        (
            ["clone", "s3://no-such-bucket/x/y", "--endpoint-url", moto],
            "bucket 'no-such-bucket' does not exist",
        ),
        (
            ["push", bundle_id, "s3://no-such-bucket/x", "--endpoint-url", moto],
            "bucket 'no-such-bucket' does not exist",
        ),
        (
            ["clone", "s3://models/nothing/here", "--endpoint-url", moto],
            "no ModelKB bundle at s3://models/nothing/here",
        ),
        (
            ["clone", "s3://models/x", "--endpoint-url", f"http://127.0.0.1:{free_port()}"],
            "cannot be reached",
        ),
        (
            [
                "push",
                bundle_id,
                "s3://models/x",
                "--endpoint-url",
                f"http://127.0.0.1:{free_port()}",
            ],
            "cannot be reached",
        ),
    ]
    s3.create_bucket(Bucket="models")
    for args, message in cases:
        done = run_cli(*args, "--store", str(store.root))
        assert done.returncode == 1, (args, done.stdout)
        first = done.stderr.splitlines()[0]
        assert first.startswith("Error: ") and message in first, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert store_snapshot(store) == snapshot


@pytest.fixture(scope="module")
def moto_with_auth() -> str:
    """A moto server that checks credentials (IAM auth on from the first request)."""
    port = free_port()
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "0", "PATH": "/usr/bin:/bin"}
    command = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with local_server(command, port, env=env) as url:
        yield url


def test_access_denied(moto_with_auth: str, store: Store, bundle_id: str) -> None:
    snapshot = store_snapshot(store)
    with pytest.raises(RemoteAccessError, match="access denied"):
        push_bundle(store.get(bundle_id), "s3://models/x", endpoint_url=moto_with_auth)
    with pytest.raises(RemoteAccessError, match="access denied"):
        clone(store, f"s3://models/x/digits-cnn/{bundle_id}", endpoint_url=moto_with_auth)
    done = run_cli(
        "publish",
        "site",
        str(tiny_catalog(store.root.parent / "site")),
        "s3://models/site",
        "--endpoint-url",
        moto_with_auth,
    )
    assert (
        done.returncode == 1
        and done.stderr.startswith("Error: ")
        and "access denied" in done.stderr.splitlines()[0]
    )
    assert store_snapshot(store) == snapshot


def test_errors_map_to_builtin_families(moto: str, store: Store, bundle_id: str) -> None:
    with pytest.raises(FileNotFoundError):
        push_bundle(store.get(bundle_id), "s3://missing-bucket", endpoint_url=moto)
    with pytest.raises(ConnectionError):
        push_bundle(store.get(bundle_id), "s3://b", endpoint_url=f"http://127.0.0.1:{free_port()}")
    assert issubclass(RemoteNotFoundError, FileNotFoundError) and issubclass(
        RemoteUnavailableError, ConnectionError
    )


# -- publish site ----------------------------------------------------------------------------------------
def test_content_types_and_cache_control() -> None:
    assert content_type("a/index.html") == "text/html; charset=utf-8"
    assert content_type("x.wasm") == "application/wasm"
    assert content_type("m.onnx") == "application/octet-stream"
    assert content_type("s.json") == "application/json"
    assert content_type("app.js").startswith("text/javascript")
    assert content_type("i.png") == "image/png"
    assert content_type("unknown.zzz") == "application/octet-stream"
    assert cache_control("index.html") == "no-cache"
    assert cache_control("assets/main.6f8fc17f.min.js") == "public, max-age=31536000, immutable"
    assert cache_control("assets/app-3f9c2b7e1a.css") == "public, max-age=31536000, immutable"
    assert cache_control("search.json").startswith("public, max-age=300")
    assert cache_control("assets/style.css").startswith("public, max-age=300")


def test_publish_site_changed_only_delete_and_private_by_default(
    moto: str, s3, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket="www")
    site = tiny_catalog(tmp_path / "site")
    s3.put_object(Bucket="www", Key="other/keep.txt", Body=b"not ours")
    s3.put_object(Bucket="www", Key="cat/stale.html", Body=b"old")

    done = run_cli("publish", "site", str(site), "s3://www/cat", "--endpoint-url", moto)
    assert done.returncode == 0, done.stderr
    assert "uploaded 7, unchanged 0, deleted 0" in done.stdout
    head = s3.head_object(Bucket="www", Key="cat/index.html")
    assert head["ContentType"] == "text/html; charset=utf-8" and head["CacheControl"] == "no-cache"
    head = s3.head_object(Bucket="www", Key="cat/assets/app.3f9c2b7e.js")
    assert head["ContentType"].startswith("text/javascript") and "immutable" in head["CacheControl"]
    assert (
        s3.head_object(Bucket="www", Key="cat/assets/ort.wasm")["ContentType"] == "application/wasm"
    )
    assert (
        s3.head_object(Bucket="www", Key="cat/runs/model.onnx")["ContentType"]
        == "application/octet-stream"
    )
    # nothing public without --public
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket="www")
    grants = s3.get_object_acl(Bucket="www", Key="cat/index.html")["Grants"]
    assert not any("AllUsers" in str(grant.get("Grantee")) for grant in grants)

    # second run: nothing changed -> nothing uploaded
    result = publish_site(site, "s3://www/cat", endpoint_url=moto)
    assert result.uploaded == [] and len(result.unchanged) == 7

    # change one file, remove one, --delete
    (site / "assets" / "style.css").write_text("body{color:red}", encoding="utf-8")
    (site / "search.json").unlink()
    result = publish_site(site, "s3://www/cat", delete=True, endpoint_url=moto)
    assert result.uploaded == ["cat/assets/style.css"]
    assert sorted(result.deleted) == ["cat/search.json", "cat/stale.html"]
    keys = {obj["Key"] for obj in s3.list_objects_v2(Bucket="www")["Contents"]}
    assert (
        "other/keep.txt" in keys and "cat/search.json" not in keys and "cat/stale.html" not in keys
    )
    assert (
        s3.get_object(Bucket="www", Key="cat/assets/style.css")["Body"].read() == b"body{color:red}"
    )


def test_publish_site_multipart_file_compared_by_sha256(moto: str, s3, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="www")
    site = tiny_catalog(tmp_path / "site")
    (site / "runs" / "big.onnx").write_bytes(
        b"\1" * (9 << 20)
    )  # over boto3's 8 MiB multipart threshold
    publish_site(site, "s3://www", endpoint_url=moto)
    etag = s3.head_object(Bucket="www", Key="runs/big.onnx")["ETag"]
    assert "-" in etag  # multipart: the ETag is not an MD5
    result = publish_site(site, "s3://www", endpoint_url=moto)
    assert result.uploaded == []


def test_publish_site_public_and_website(moto: str, s3, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="www")
    site = tiny_catalog(tmp_path / "site")
    done = run_cli(
        "publish",
        "site",
        str(site),
        "s3://www/catalog",
        "--public",
        "--website",
        "--endpoint-url",
        moto,
    )
    assert done.returncode == 0, done.stderr
    assert "website: http://www.s3-website-us-east-1.amazonaws.com/catalog/" in done.stdout
    policy = json.loads(s3.get_bucket_policy(Bucket="www")["Policy"])
    statements = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert statements == [
        {
            "Sid": "ModelKBPublicReadcatalog",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::www/catalog/*",
        }
    ]
    website = s3.get_bucket_website(Bucket="www")
    assert website["IndexDocument"] == {"Suffix": "index.html"}
    assert website["ErrorDocument"] == {"Key": "catalog/404.html"}
    # publishing again keeps one statement, not two
    publish_site(site, "s3://www/catalog", public=True, endpoint_url=moto)
    policy = json.loads(s3.get_bucket_policy(Bucket="www")["Policy"])
    assert len(policy["Statement"]) == 1


def test_publish_site_refuses_a_folder_that_is_not_a_catalog(moto: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = run_cli("publish", "site", str(tmp_path / "empty"), "s3://www", "--endpoint-url", moto)
    assert (
        done.returncode == 1
        and "has no index.html" in done.stderr
        and "modelkb build" in done.stderr
    )


def test_publish_site_never_uploads_build_state_or_dotfiles(moto: str, s3, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="www")
    site = tiny_catalog(tmp_path / "site")
    (site / ".modelkb-build").mkdir()
    (site / ".modelkb-build" / "manifest.json").write_text(
        '{"summaries": {"path": "/home/alice/store"}}'
    )
    (site / ".env").write_text("AWS_SECRET_ACCESS_KEY=planted\n")
    (site / "assets" / ".secret").write_text("planted\n")
    result = publish_site(site, "s3://www/cat", endpoint_url=moto)
    keys = {obj["Key"] for obj in s3.list_objects_v2(Bucket="www")["Contents"]}
    assert keys == set(result.uploaded) and "cat/index.html" in keys
    assert not [key for key in keys if "/." in key]


@pytest.mark.parametrize("flag", ["--public", "--delete"])
def test_publish_site_refuses_a_prefix_holding_pushed_bundles(
    moto: str, s3, store: Store, bundle_id: str, tmp_path: Path, flag: str
) -> None:
    s3.create_bucket(Bucket="www")
    pushed = push_bundle(
        store.get(bundle_id), "s3://www", endpoint_url=moto
    )  # a private bundle at the bucket root
    site = tiny_catalog(tmp_path / "site")
    done = run_cli("publish", "site", str(site), "s3://www", flag, "--endpoint-url", moto)
    assert (
        done.returncode == 1 and "pushed bundle" in done.stderr and "s3://www/site" in done.stderr
    )
    assert "Traceback" not in done.stderr
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket="www")
    keys = {obj["Key"] for obj in s3.list_objects_v2(Bucket="www")["Contents"]}
    assert any(key.endswith("/metadata.json") for key in keys), pushed  # the bundle is still there
    # a prefix of its own is fine, and the message says exactly what became public
    done = run_cli(
        "publish", "site", str(site), "s3://www/site", "--public", "--endpoint-url", moto
    )
    assert done.returncode == 0, done.stderr
    assert "anyone can now read s3://www/site/*" in done.stdout
    policy = json.loads(s3.get_bucket_policy(Bucket="www")["Policy"])
    assert [s["Resource"] for s in policy["Statement"]] == ["arn:aws:s3:::www/site/*"]
