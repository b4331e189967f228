"""The hub's catalog builder: a Lambda handler that rebuilds the catalog when runs land in the team store.

S3 notifies the build queue of every new ``<prefix>/<project>/<id>/metadata.json``; Lambda hands the
builder up to a thousand of those at once (the queue's batching window is the debounce). One
invocation makes one build, however many runs it announces:

1. the notifications are reduced to run keys and changed project settings
   (:mod:`modelkb.serverless.hub_events`): bad records are logged and skipped, and a batch that
   names neither builds nothing;
2. the team store (``$MODELKB_TEAM_STORE``) is opened with its cache in ``$MODELKB_HUB_WORK_DIR``
   (default ``/tmp/modelkb-hub``) and refreshed: one listing, only new or changed metadata fetched;
3. ``build_site`` renders the catalog into the same folder, incrementally: only runs new since the
   last build are fetched in full and rendered;
4. ``publish_site`` mirrors it to ``$MODELKB_CATALOG_BUCKET`` (``bucket`` or ``s3://bucket/prefix``),
   uploading only objects whose bytes changed.

The cache (with what the store last saw of S3) and the built catalog stay in ``/tmp`` between warm
invocations. A cold start begins empty: it fetches every run and renders every page again, but
still uploads only the objects whose bytes differ from the published ones. Persisting a part of
the work folder is left out on purpose (the build reads other runs' files for a project's
checklist, so a partial cache would publish wrong checklists), and persisting all of it needs EFS,
hence a VPC (docs/team-store.md). Failures of S3 itself raise, so the queue redelivers the batch
(at most ten receives, then the dead-letter queue has it): never a crash loop.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelkb.errors import DeployError
from modelkb.publishing.s3_client import S3Location
from modelkb.serverless.hub_events import Notifications, run_keys

logger = logging.getLogger(__name__)

TEAM_STORE_ENV = "MODELKB_TEAM_STORE"
CATALOG_ENV = "MODELKB_CATALOG_BUCKET"
WORK_DIR_ENV = "MODELKB_HUB_WORK_DIR"
DEFAULT_WORK_DIR = "/tmp/modelkb-hub"
_REASONS_SHOWN = 10  # skip reasons in the report (every one is logged)


@dataclass
class HubBuildReport:
    """What one invocation did (the handler returns it as JSON).

    Attributes:
        runs_seen: Distinct runs the event announced.
        settings_seen: Projects whose settings (``project.json``) the event announced changed.
        records: S3 records read (before de-duplication and filtering).
        skipped: Records or messages skipped.
        skip_reasons: Why, for the first few (every one is logged).
        built: Whether a build ran (not when the event announced no run).
        experiments: Experiments in the catalog after the build.
        pages_rendered: Experiment pages (re)rendered by this build.
        objects_uploaded: Catalog objects written to the catalog bucket.
        objects_unchanged: Catalog objects already up to date there.
        problems: Bundles the build skipped, with the reason.
        seconds: Wall time of the invocation.
    """

    runs_seen: int = 0
    settings_seen: int = 0
    records: int = 0
    skipped: int = 0
    skip_reasons: list[str] = field(default_factory=list)
    built: bool = False
    experiments: int = 0
    pages_rendered: int = 0
    objects_uploaded: int = 0
    objects_unchanged: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HubConfig:
    """Where the builder reads and writes, from the function's environment."""

    team_store: str
    catalog: str
    work_dir: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> HubConfig:
        """Read ``MODELKB_TEAM_STORE``, ``MODELKB_CATALOG_BUCKET`` and ``MODELKB_HUB_WORK_DIR``.

        Raises:
            DeployError: A variable is missing or not an S3 address (the template sets them).
        """
        env = os.environ if environ is None else environ
        team, catalog = env.get(TEAM_STORE_ENV, ""), env.get(CATALOG_ENV, "")
        if not team.startswith("s3://"):
            raise DeployError(
                f"Expected {TEAM_STORE_ENV}=s3://bucket/prefix. Received: {team!r}",
                hint="The hub template sets it; check the function's environment.",
            )
        if not catalog:
            raise DeployError(
                f"Expected {CATALOG_ENV}=bucket or s3://bucket/prefix. Received: {catalog!r}",
                hint="The hub template sets it; check the function's environment.",
            )
        catalog = catalog if catalog.startswith("s3://") else f"s3://{catalog}"
        return cls(team, catalog, Path(env.get(WORK_DIR_ENV) or DEFAULT_WORK_DIR))


def _team_store(config: HubConfig) -> Any:
    """The team store, opened anew for each build: a store syncs once per instance, and what it
    last saw of S3 (the ETags) lives in its cache folder, which stays."""
    from modelkb.store import open_store

    cache = config.work_dir / "store"
    cache.mkdir(parents=True, exist_ok=True)
    return open_store(config.team_store, cache_dir=cache)


def build_and_publish(notifications: Notifications, config: HubConfig) -> HubBuildReport:
    """One build for the runs and project settings a batch of notifications announced (none:
    nothing is built)."""
    started = time.perf_counter()
    report = HubBuildReport(
        runs_seen=len(notifications.runs),
        settings_seen=len(notifications.settings),
        records=notifications.records,
        skipped=len(notifications.skipped),
        skip_reasons=notifications.skipped[:_REASONS_SHOWN],
    )
    if notifications.runs or notifications.settings:
        from modelkb.publishing.s3_site import publish_site
        from modelkb.site_builder.build import build_site

        store = _team_store(config)
        try:
            store.refresh()
            site = config.work_dir / "site"
            built = build_site(store, site)
        finally:
            store.close()
        synced = publish_site(site, config.catalog)
        report.built = True
        report.experiments = built.experiments
        report.pages_rendered = built.rendered
        report.problems = [str(problem) for problem in built.problems]
        report.objects_uploaded = len(synced.uploaded)
        report.objects_unchanged = len(synced.unchanged)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point: SQS-wrapped or direct S3 notifications, or EventBridge Object Created events."""
    logging.getLogger("modelkb").setLevel(os.environ.get("MODELKB_LOG_LEVEL", "INFO"))
    config = HubConfig.from_env()
    location = S3Location.parse(config.team_store)
    notifications = run_keys(event, bucket=location.bucket, prefix=location.prefix)
    report = build_and_publish(notifications, config)
    logger.info("catalog build: %s", json.dumps(report.to_json(), sort_keys=True))
    return report.to_json()
