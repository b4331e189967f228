"""publish hf / clone hf:// against a local Hub (tests/publishing/hub_server.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.hub_server import OTHER_TOKEN, TOKEN, USER
from support.processes import free_port, run_cli
from support.runs import artifact_bytes, make_bundle, store_snapshot, tiny_onnx_model

from modelkb.errors import BundleExistsError, RemoteConflictError
from modelkb.store import Store

pytest.importorskip("huggingface_hub")


def _env(hub, token: str | None = TOKEN) -> dict[str, str]:
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1"}
    if token:
        env["HF_TOKEN"] = token
    return env


def test_card_round_trips_through_modelcard_with_eval_results(store: Store, bundle_id: str) -> None:
    from huggingface_hub import ModelCard, ModelCardData

    text = (store.get(bundle_id).path / "README.md").read_text(encoding="utf-8")
    card = ModelCard(text)
    assert card.data.library_name == "onnx" or card.data.library_name
    assert "modelkb" in card.data.tags and card.data.datasets == ["iris"]
    results = card.data.eval_results
    assert results and {r.metric_type for r in results} >= {"accuracy", "loss"}
    assert {r.dataset_split for r in results} == {"train", "validation"}
    again = ModelCardData(**card.data.to_dict())
    assert [(r.metric_type, r.metric_value, r.dataset_split) for r in again.eval_results] == [
        (r.metric_type, r.metric_value, r.dataset_split) for r in results
    ]


def test_publish_delete_clone_round_trip_and_token_never_stored(
    hub, store: Store, tmp_path: Path
) -> None:
    model = tiny_onnx_model()
    bundle_id = make_bundle(store.root, model=model, weights_size=20_000)
    bundle = store.get(bundle_id)
    original = artifact_bytes(bundle.path)

    done = run_cli(
        "publish",
        "hf",
        bundle_id,
        "--repo",
        f"{USER}/digits",
        "--store",
        str(store.root),
        env=_env(hub),
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip().splitlines()[-1]
    assert url == f"{hub.url}/{USER}/digits"
    hub_meta = store.get(bundle_id).metadata["hub"]
    assert (
        hub_meta["url"] == url
        and hub_meta["repo_id"] == f"{USER}/digits"
        and len(hub_meta["revision"]) == 40
    )

    files = hub.files(f"{USER}/digits")
    for path, data in original.items():
        assert files[path] == data, path
    assert "metadata.json" in files and files["README.md"].startswith(b"---\n")
    lfs = {path for path, f in hub.repos[f"{USER}/digits"].commits[-1][1].items() if f.lfs}
    assert {"model.safetensors"} <= lfs  # large files went through LFS batch + PUT
    if model is not None and "serving/handler.py" not in files:
        pytest.fail("serving/ was not uploaded although the run has a real ONNX model")

    # the round trip: delete locally, clone, byte-identical, found by search
    shutil.rmtree(bundle.path)
    store.refresh()
    assert store.search() == []
    done = run_cli(
        "clone", f"hf://{USER}/digits", "--store", str(store.root), env=_env(hub, token=None)
    )
    assert done.returncode == 0, done.stderr
    folder = store.bundle_dir("Digits CNN", bundle_id)
    assert artifact_bytes(folder) == original
    assert [run.id for run in store.search()] == [bundle_id]
    assert store.get(bundle_id).metadata["hub"]["url"] == url
    assert not (folder / "serving").exists() and not (folder / ".cache").exists()

    # the token is nowhere: not in the store, not in anything uploaded, not in the Hub's blobs
    secret = TOKEN.encode()
    for root in (store.root, hub.root, tmp_path / "hf-home"):
        for path in root.rglob("*") if root.exists() else []:
            if path.is_file():
                assert secret not in path.read_bytes(), f"token written to {path}"


def test_republish_same_run_updates_and_other_run_conflicts(
    hub, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelkb.publishing.hub import publish_bundle

    first = make_bundle(store.root)
    second = make_bundle(store.root, "Other project", seed=2)
    repo = f"{USER}/model"
    one = publish_bundle(
        store.get(first), repo, token=TOKEN, endpoint=hub.url, include_serving=False
    )
    again = publish_bundle(
        store.get(first), repo, token=TOKEN, endpoint=hub.url, include_serving=False
    )
    assert again.revision == one.revision  # nothing changed: no empty commit
    with pytest.raises(RemoteConflictError, match="already holds another run"):
        publish_bundle(
            store.get(second), repo, token=TOKEN, endpoint=hub.url, include_serving=False
        )
    done = run_cli(
        "publish", "hf", second, "--repo", repo, "--store", str(store.root), env=_env(hub)
    )
    assert done.returncode == 1 and "--replace" in done.stderr and done.stderr.startswith("Error: ")
    replaced = publish_bundle(
        store.get(second), repo, token=TOKEN, endpoint=hub.url, include_serving=False, replace=True
    )
    assert replaced.revision != one.revision
    meta = json.loads(hub.files(repo)["metadata.json"])
    assert meta["id"] == second
    # the first run's files that the second one lacks are gone; git history still has them
    assert set(hub.files(repo)) == {
        ".gitattributes",
        "metadata.json",
        *[a["path"] for a in meta["artifacts"]],
    }
    assert json.loads(hub.files(repo, one.revision)["metadata.json"])["id"] == first


def test_hub_failures_are_one_line_and_store_untouched(hub, store: Store, bundle_id: str) -> None:
    snapshot = store_snapshot(store)
    repo = f"{USER}/failures"
    cases = [
        (
            ["publish", "hf", bundle_id, "--repo", repo],
            _env(hub, token="hf_wrongwrongwrongwrongwrongwrongwrong"),
            "refused the token (HTTP 401)",
        ),
        (
            ["publish", "hf", bundle_id, "--repo", repo],
            _env(hub, token=None),
            "no Hugging Face token",
        ),
        (
            ["publish", "hf", bundle_id, "--repo", "bob/theirs"],
            _env(hub),
            "permission denied (HTTP 403)",
        ),
        (["clone", "hf://ada/does-not-exist"], _env(hub), "not found"),
        (
            ["clone", f"hf://{USER}/x"],
            {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
            "cannot be reached",
        ),
        (
            ["publish", "hf", bundle_id, "--repo", repo],
            {**_env(hub), "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
            "cannot be reached",
        ),
    ]
    for args, env, message in cases:
        done = run_cli(*args, "--store", str(store.root), env=env)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        first = done.stderr.splitlines()[0]
        assert first.startswith("Error: ") and message in first, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert store_snapshot(store) == snapshot


def test_clone_of_private_repo_needs_the_token(
    hub, store: Store, bundle_id: str, tmp_path: Path
) -> None:
    done = run_cli(
        "publish",
        "hf",
        bundle_id,
        "--repo",
        f"{USER}/secret",
        "--private",
        "--no-serving",
        "--store",
        str(store.root),
        env=_env(hub),
    )
    assert done.returncode == 0, done.stderr
    other = tmp_path / "other"
    done = run_cli(
        "clone", f"hf://{USER}/secret", "--store", str(other), env=_env(hub, token=OTHER_TOKEN)
    )
    assert done.returncode == 1 and "not found" in done.stderr
    done = run_cli("clone", f"hf://{USER}/secret", "--store", str(other), env=_env(hub))
    assert done.returncode == 0, done.stderr


def test_clone_existing_and_tampered(hub, store: Store, bundle_id: str, tmp_path: Path) -> None:
    from modelkb.errors import IntegrityError
    from modelkb.publishing.hub import fetch_bundle, publish_bundle

    publish_bundle(
        store.get(bundle_id), f"{USER}/m", token=TOKEN, endpoint=hub.url, include_serving=False
    )
    with pytest.raises(BundleExistsError):
        fetch_bundle(store, f"hf://{USER}/m", endpoint=hub.url)
    # somebody rewrites code/train.py on the Hub without updating metadata.json
    from huggingface_hub import CommitOperationAdd, HfApi

    HfApi(endpoint=hub.url, token=TOKEN).create_commit(
        f"{USER}/m",
        [CommitOperationAdd("code/train.py", b"print('changed')\n")],
        commit_message="edit",
    )
    other = Store(tmp_path / "other")
    with pytest.raises(IntegrityError, match=r"code/train\.py"):
        fetch_bundle(other, f"hf://{USER}/m", endpoint=hub.url)
    assert not list(other.iter_bundle_dirs())


def test_clone_refuses_a_swapped_file_from_the_listed_size_before_downloading_it(
    hub, store: Store, bundle_id: str, tmp_path: Path
) -> None:
    from huggingface_hub import CommitOperationAdd, HfApi

    from modelkb.errors import IntegrityError
    from modelkb.publishing.hub import fetch_bundle, publish_bundle

    publish_bundle(
        store.get(bundle_id), f"{USER}/big", token=TOKEN, endpoint=hub.url, include_serving=False
    )
    # the weights are replaced on the Hub by something far larger than metadata.json declares
    HfApi(endpoint=hub.url, token=TOKEN).create_commit(
        f"{USER}/big",
        [CommitOperationAdd("model.safetensors", b"\0" * 3_000_000)],
        commit_message="swap",
    )
    hub.requests.clear()
    other = Store(tmp_path / "other")
    with pytest.raises(
        IntegrityError, match=r"model.safetensors is 3000000 bytes; .*refused before downloading"
    ):
        fetch_bundle(other, f"hf://{USER}/big", endpoint=hub.url)
    downloads = [path for method, path in hub.requests if method == "GET" and "/resolve/" in path]
    assert downloads and all(path.endswith("/metadata.json") for path in downloads)
    assert not list(other.iter_bundle_dirs())
