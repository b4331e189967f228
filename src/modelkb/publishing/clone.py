"""``modelkb clone``: bring a published bundle (``s3://...`` or ``hf://...``) into the local store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelkb.errors import PublishError
from modelkb.ids import utc_now
from modelkb.publishing.integrity import SizeLimits
from modelkb.store import Store


@dataclass
class CloneResult:
    """A cloned bundle.

    Attributes:
        path: The bundle folder in the store.
        experiment_id: Its id.
        source: The address it came from.
    """

    path: Path
    experiment_id: str
    source: str


def clone(
    store: Store,
    address: str,
    *,
    endpoint_url: str | None = None,
    revision: str | None = None,
    limits: SizeLimits | None = None,
    on_file=None,
) -> CloneResult:  # type: ignore[no-untyped-def]
    """Download, verify and add the bundle at ``address`` to ``store``; records where it came from.

    Args:
        store: The local store.
        address: ``s3://bucket/prefix/<project>/<id>`` (what ``push`` printed) or ``hf://user/name[@revision]``.
        endpoint_url: S3 endpoint (S3 only; ``AWS_ENDPOINT_URL`` also works).
        revision: Hub branch, tag or commit (Hub only; same as ``@revision`` in the address).
        limits: Size limits for what is downloaded.
        on_file: Progress callback ``(path, bytes)``.

    Raises:
        PublishError: Unknown scheme or a remote failure (subclasses say which).
        IntegrityError: A file does not match metadata.json.
        BundleExistsError: The store already holds this experiment.
    """
    if address.startswith("s3://"):
        from modelkb.publishing.s3 import fetch_bundle

        folder = fetch_bundle(
            store, address, endpoint_url=endpoint_url, limits=limits, on_file=on_file
        )
        experiment_id = folder.name
        store.update_metadata(
            experiment_id, {"s3": {"global_id": address.rstrip("/"), "cloned": utc_now()}}
        )
    elif address.startswith("hf://"):
        from modelkb.publishing.hub import fetch_bundle as fetch_from_hub

        if revision and "@" not in address:
            address = f"{address.rstrip('/')}@{revision}"
        folder, url, commit = fetch_from_hub(store, address, limits=limits, on_file=on_file)
        experiment_id = folder.name
        store.update_metadata(
            experiment_id,
            {
                "hub": {
                    "url": url,
                    "repo_id": address[5:].split("@")[0].strip("/"),
                    "revision": commit,
                    "cloned": utc_now(),
                }
            },
        )
    else:
        raise PublishError(
            f"Expected an s3://... or hf://... address. Received: {address!r}",
            hint="Use the address `modelkb push` printed, or hf://user/name.",
        )
    return CloneResult(path=folder, experiment_id=experiment_id, source=address)
