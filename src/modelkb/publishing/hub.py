"""Bundles on the Hugging Face Hub: publish a run as a model repo, clone it back.

The repo holds the bundle as it is (README.md model card, model.onnx, weights, code/,
requirements.lock, metrics.jsonl, metadata.json) plus ``serving/`` when the inference package can be
generated. ``metadata.json`` lists every file's sha256, so a clone rebuilds the bundle byte for byte.

The token comes from ``HF_TOKEN`` or ``hf auth login`` (huggingface_hub's own lookup). ModelKB
passes it to huggingface_hub in memory and never writes it anywhere.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkb.bundle import CARD_FILE, Bundle
from modelkb.errors import (
    IntegrityError,
    ModelKBError,
    PublishError,
    RemoteAccessError,
    RemoteConflictError,
    RemoteNotFoundError,
    RemoteUnavailableError,
)
from modelkb.extras import require
from modelkb.publishing.intake import (
    ensure_absent,
    install_bundle,
    read_metadata_file,
    staging_area,
)
from modelkb.publishing.integrity import (
    METADATA_FILE,
    SizeLimits,
    check_limits,
    check_relpath,
    verify_files,
)
from modelkb.publishing.serving import SERVING_DIR, render_serving
from modelkb.store import Store

logger = logging.getLogger(__name__)

_TOKEN_HINT = "Set HF_TOKEN or run `hf auth login` with a token that has write access."


@dataclass
class HubPublishResult:
    """A published run.

    Attributes:
        url: The repo's web address.
        repo_id: ``user/name``.
        revision: The commit id on the Hub.
        files: Paths uploaded (or already identical there).
        serving_note: Why ``serving/`` is missing, or ``None``.
    """

    url: str
    repo_id: str
    revision: str
    files: list[str]
    serving_note: str | None


def parse_hf_url(url: str) -> tuple[str, str | None]:
    """``hf://user/name[@revision]`` -> ``(repo_id, revision)``.

    Raises:
        PublishError: Not an ``hf://user/name`` address.
    """
    rest = url.removeprefix("hf://") if url.startswith("hf://") else None
    if rest is None:
        raise PublishError(f"Expected an hf://user/name address. Received: {url!r}")
    repo_id, _, revision = rest.strip("/").partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PublishError(f"Expected an hf://user/name address. Received: {url!r}")
    return repo_id, revision or None


def _hub() -> Any:
    return require("huggingface_hub", "hub")


def translate_error(err: Exception, *, remote: str, action: str) -> PublishError:
    """One clear :class:`PublishError` subclass for a huggingface_hub / HTTP failure."""
    hub = _hub()
    errors = hub.errors
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    if (
        isinstance(
            err,
            (
                errors.RepositoryNotFoundError,
                errors.RevisionNotFoundError,
                errors.RemoteEntryNotFoundError,
            ),
        )
        or status == 404
    ):
        what = "revision" if isinstance(err, errors.RevisionNotFoundError) else "repository or file"
        return RemoteNotFoundError(
            f"cannot {action} {remote}: {what} not found (or private and your token cannot see it)",
            remote=remote,
            hint="Check the name, and HF_TOKEN for private repos.",
        )
    if status == 401:
        return RemoteAccessError(
            f"cannot {action} {remote}: the Hub refused the token (HTTP 401)",
            remote=remote,
            hint=_TOKEN_HINT,
        )
    if status == 403:
        return RemoteAccessError(
            f"cannot {action} {remote}: permission denied (HTTP 403)",
            remote=remote,
            hint="Use a namespace you own (your user name or an org you can write to) and a write token.",
        )
    if status == 409:
        return RemoteConflictError(f"cannot {action} {remote}: conflict (HTTP 409)", remote=remote)
    if isinstance(err, errors.HfHubHTTPError) and status is not None:
        first = str(err).splitlines()[0] if str(err) else ""
        return PublishError(f"cannot {action} {remote}: HTTP {status} {first}", remote=remote)
    return RemoteUnavailableError(
        f"cannot {action} {remote}: the Hub cannot be reached ({type(err).__name__}: {err})",
        remote=remote,
        hint="Check the network and HF_ENDPOINT.",
    )


def _remote_errors() -> tuple[type[Exception], ...]:
    hub = _hub()
    import httpx2  # huggingface_hub's HTTP client

    return (
        hub.errors.HfHubHTTPError,
        hub.errors.LocalEntryNotFoundError,
        httpx2.HTTPError,
        ConnectionError,
        TimeoutError,
    )


def check_card(text: str) -> Any:
    """Parse the model card with huggingface_hub's ModelCard (YAML and ``model-index`` checked).

    Raises:
        PublishError: The front matter is not valid for the Hub.
    """
    hub = _hub()
    try:
        card = hub.ModelCard(text, ignore_metadata_errors=False)
    except (ValueError, TypeError, KeyError) as err:
        raise PublishError(
            f"README.md front matter is not valid for the Hub: {err}",
            hint="Re-render the card: `modelkb reindex` keeps the bundle but the card comes from metadata.",
        ) from err
    return card


def _same_run_files(api: Any, repo_id: str, experiment_id: str, *, replace: bool) -> list[str]:
    """Paths ModelKB put in the repo before (to delete stale ones); refuses another run's repo."""
    if not api.file_exists(repo_id, METADATA_FILE):
        return []
    with tempfile.TemporaryDirectory(prefix="modelkb-hub-") as tmp:
        path = api.hf_hub_download(repo_id, METADATA_FILE, local_dir=tmp)
        try:
            previous = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            previous = {}
    if not isinstance(previous, dict):
        previous = {}
    if previous.get("id") not in (None, experiment_id) and not replace:
        raise RemoteConflictError(
            f"{repo_id} already holds another run ({previous.get('id')}, {previous.get('name')})",
            remote=f"hf://{repo_id}",
            hint="Pass --replace to publish this run over it (the Hub keeps the old one in its "
            "git history), or choose another --repo.",
        )
    old = [a.get("path") for a in previous.get("artifacts") or [] if isinstance(a, dict)]
    listed = set(api.list_repo_files(repo_id))
    return sorted(p for p in listed if p in old or p.startswith(SERVING_DIR + "/"))


def publish_bundle(
    bundle: Bundle,
    repo_id: str,
    *,
    private: bool = False,
    replace: bool = False,
    include_serving: bool = True,
    token: str | None = None,
    endpoint: str | None = None,
) -> HubPublishResult:
    """Create or update the model repo ``repo_id`` with the bundle's files.

    An existing repo is updated when it is empty, not a ModelKB repo, or holds this same run; one
    holding another run is refused unless ``replace``. Files ModelKB uploaded before and that the
    run no longer has are deleted in the same commit. ``private`` applies when the repo is created.

    Raises:
        RemoteAccessError: No token, or the Hub refuses it.
        RemoteConflictError: The repo holds another run and ``replace`` is false.
        IntegrityError: The local bundle no longer matches its metadata.json.
        PublishError: Any other Hub failure, or an invalid model card.
    """
    hub = _hub()
    if not bundle.sealed:
        raise IntegrityError(f"{bundle.id} is still running; only finished runs can be published")
    entries = verify_files(bundle.path, bundle.metadata)
    remote = f"hf://{repo_id}"
    card_path = bundle.path / CARD_FILE
    if card_path.is_file():
        check_card(card_path.read_text(encoding="utf-8"))
    token = token or hub.get_token()
    if not token:
        raise RemoteAccessError(
            f"cannot publish to {remote}: no Hugging Face token", remote=remote, hint=_TOKEN_HINT
        )
    api = hub.HfApi(endpoint=endpoint, token=token)
    try:
        api.whoami()
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        stale = _same_run_files(api, repo_id, bundle.id, replace=replace)
        with tempfile.TemporaryDirectory(prefix="modelkb-serving-") as tmp:
            serving_files: list[str] = []
            note: str | None = "not requested"
            if include_serving:
                serving_files, note = render_serving(
                    bundle.path, bundle.metadata, Path(tmp) / SERVING_DIR
                )
            files = [(entry["path"], bundle.path / entry["path"]) for entry in entries]
            files += [
                (f"{SERVING_DIR}/{name}", Path(tmp) / SERVING_DIR / name) for name in serving_files
            ]
            files.append((METADATA_FILE, bundle.path / METADATA_FILE))
            wanted = {path for path, _ in files}
            operations: list[Any] = [
                hub.CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(source))
                for path, source in files
            ]
            operations += [
                hub.CommitOperationDelete(path_in_repo=path) for path in stale if path not in wanted
            ]
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=f"ModelKB: run {bundle.id} ({bundle.metadata.get('name', '')})",
                commit_description=f"Published by ModelKB from project {bundle.project}.",
            )
    except ModelKBError:
        raise
    except _remote_errors() as err:
        raise translate_error(err, remote=remote, action="publish to") from err
    url = f"{api.endpoint.rstrip('/')}/{repo_id}"
    return HubPublishResult(
        url=url,
        repo_id=repo_id,
        revision=str(info.oid),
        files=sorted(wanted),
        serving_note=None if serving_files else note,
    )


def fetch_bundle(
    store: Store,
    address: str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    limits: SizeLimits | None = None,
    on_file: Callable[[str, int], None] | None = None,
) -> tuple[Path, str, str]:
    """Download the bundle in ``hf://user/name[@revision]``, verify it, add it to ``store``.

    Returns:
        ``(bundle folder, repo web address, commit id)``.

    Raises:
        RemoteNotFoundError: No such repo or revision, or it holds no ModelKB bundle.
        IntegrityError: A file differs from metadata.json or breaks a limit.
        BundleExistsError: The store already has this experiment.
    """
    hub = _hub()
    repo_id, revision = parse_hf_url(address)
    limits = limits or SizeLimits()
    api = hub.HfApi(endpoint=endpoint, token=token or hub.get_token() or False)
    remote = f"hf://{repo_id}"
    try:
        info = api.model_info(
            repo_id, revision=revision, files_metadata=True
        )  # sizes, checked before any download
        commit = str(info.sha)
        sizes = {
            sibling.rfilename: getattr(sibling, "size", None) for sibling in (info.siblings or [])
        }
        if (sizes.get(METADATA_FILE) or 0) > limits.max_file_bytes:
            raise IntegrityError(
                f"{remote}/{METADATA_FILE} is {sizes[METADATA_FILE]} bytes, over the "
                f"{limits.max_file_bytes}-byte limit (refused before downloading it)",
                path=METADATA_FILE,
            )
        with staging_area(store) as staging:
            raw = staging / "raw"
            raw.mkdir()
            try:
                api.hf_hub_download(repo_id, METADATA_FILE, revision=commit, local_dir=raw)
            except hub.errors.RemoteEntryNotFoundError as err:
                raise RemoteNotFoundError(
                    f"{remote} is not a ModelKB repo (it has no metadata.json)",
                    remote=remote,
                    hint="Publish a run to it with `modelkb publish hf ID --repo NAME`.",
                ) from err
            metadata = read_metadata_file(raw / METADATA_FILE)
            ensure_absent(store, metadata)
            check_limits(metadata, limits, source=remote)
            relpaths = [check_relpath(entry["path"]) for entry in metadata["artifacts"]]
            # Every size is checked before any download.
            for relpath, entry in zip(relpaths, metadata["artifacts"], strict=True):
                if sizes.get(relpath) is not None and sizes[relpath] != entry["size"]:
                    raise IntegrityError(
                        f"{remote}/{relpath} is {sizes[relpath]} bytes; metadata.json says {entry['size']} "
                        "(refused before downloading it)",
                        path=relpath,
                    )
            for relpath, entry in zip(relpaths, metadata["artifacts"], strict=True):
                api.hf_hub_download(repo_id, relpath, revision=commit, local_dir=raw)
                if on_file:
                    on_file(relpath, entry["size"])
            folder = install_bundle(store, raw, staging)
    except ModelKBError:
        raise
    except _remote_errors() as err:
        raise translate_error(err, remote=remote, action="clone") from err
    return folder, f"{api.endpoint.rstrip('/')}/{repo_id}", commit
