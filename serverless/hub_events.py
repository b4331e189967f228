"""Which runs landed: the run keys in the notifications the hub's catalog builder receives.

Three shapes arrive, all reduced to the same :class:`RunKey` list: S3 event notifications wrapped in
SQS messages (the hub's path: S3 -> SQS -> Lambda), S3 event notifications delivered directly, and
EventBridge "Object Created" events. Only ``<prefix>/<project>/<id>/metadata.json`` in the team
store's bucket counts as a run (the metadata file is written last, so it marks a complete bundle),
and ``<prefix>/<project>/project.json`` as a project's changed settings (its primary metric); anything
else -- S3's ``s3:TestEvent``, other keys, other buckets, malformed JSON -- is skipped with a reason,
never raised, so one bad message cannot make the queue redeliver a batch forever. Keys are
URL-decoded as S3 sends them (run keys are slugs and ids, so the encoding never matters for them).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from modelkb.bundle import METADATA_FILE
from modelkb.ids import is_id, slugify
from modelkb.project_settings import SETTINGS_FILE

logger = logging.getLogger(__name__)

_SETTINGS = "settings"  # what _refusal answers for a project's settings file


@dataclass(frozen=True, order=True)
class RunKey:
    """One run's ``metadata.json`` in the team store."""

    bucket: str
    key: str

    @property
    def experiment_id(self) -> str:
        return self.key.rsplit("/", 2)[-2]

    @property
    def project(self) -> str:
        return self.key.rsplit("/", 3)[-3]


@dataclass
class Notifications:
    """The run keys found in one invocation's event, de-duplicated, and what was skipped."""

    runs: list[RunKey] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)  # project slugs whose project.json changed
    records: int = 0
    skipped: list[str] = field(default_factory=list)


def _s3_records(body: Any) -> list[tuple[str, str, str]]:
    """``(event name, bucket, raw key)`` of each record of an S3 notification (or EventBridge event)."""
    if isinstance(body, dict) and body.get("detail-type") == "Object Created":
        detail = body.get("detail") or {}
        return [
            (
                "ObjectCreated:" + str(detail.get("reason", "")),
                str((detail.get("bucket") or {}).get("name", "")),
                str((detail.get("object") or {}).get("key", "")),
            )
        ]
    if not isinstance(body, dict) or not isinstance(body.get("Records"), list):
        raise ValueError("neither an S3 event notification nor an EventBridge Object Created event")
    found = []
    for record in body["Records"]:
        s3 = record.get("s3") if isinstance(record, dict) else None
        if not isinstance(s3, dict):
            raise ValueError("an S3 record without its s3 section")
        found.append(
            (
                str(record.get("eventName", "")),
                str((s3.get("bucket") or {}).get("name", "")),
                str((s3.get("object") or {}).get("key", "")),
            )
        )
    return found


def _unwrap(event: Any) -> list[tuple[str, Any]]:
    """``(where, notification)`` pairs: SQS messages' bodies parsed, other events as they are."""
    records = event.get("Records") if isinstance(event, dict) else None
    if (
        isinstance(records, list)
        and records
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    ):
        out: list[tuple[str, Any]] = []
        for record in records:
            where = f"SQS message {record.get('messageId', '?')}"
            try:
                out.append((where, json.loads(record.get("body") or "")))
            except (TypeError, ValueError) as err:
                out.append((where, ValueError(f"body is not JSON ({err})")))
        return out
    return [("event", event)]


def run_keys(event: Any, *, bucket: str, prefix: str = "") -> Notifications:
    """The team store runs an event announces, in order, each once.

    Args:
        event: What Lambda passed to the handler.
        bucket: The team store's bucket; keys elsewhere are skipped.
        prefix: The team store's prefix (no slashes at either end).
    """
    result = Notifications()
    seen: set[RunKey] = set()
    depth = len([p for p in prefix.split("/") if p]) + 3
    for where, notification in _unwrap(event):
        if isinstance(notification, dict) and notification.get("Event") == "s3:TestEvent":
            result.skipped.append(f"{where}: S3's test event")
            continue
        try:
            if isinstance(notification, Exception):
                raise notification
            records = _s3_records(notification)
        except ValueError as err:
            result.skipped.append(f"{where}: {err}")
            continue
        for name, record_bucket, raw_key in records:
            result.records += 1
            key = unquote_plus(raw_key)
            reason = _refusal(name, record_bucket, key, bucket=bucket, prefix=prefix, depth=depth)
            if reason == _SETTINGS:
                slug = key.rsplit("/", 2)[-2]
                if slug not in result.settings:
                    result.settings.append(slug)
                continue
            if reason:
                result.skipped.append(f"{where}: {reason}")
                continue
            run = RunKey(record_bucket, key)
            if run not in seen:
                seen.add(run)
                result.runs.append(run)
    for reason in result.skipped:
        logger.info("skipped %s", reason)
    return result


def _refusal(
    name: str, record_bucket: str, key: str, *, bucket: str, prefix: str, depth: int
) -> str:
    """Why a record is not a new run of this team store (empty when it is one, ``_SETTINGS`` when
    it is a project's settings file)."""
    if not name.startswith("ObjectCreated"):
        return f"{name or 'an event without a name'} is not an object creation"
    if record_bucket != bucket:
        return f"bucket {record_bucket!r} is not the team store's ({bucket!r})"
    parts = key.split("/")
    if prefix and not key.startswith(prefix.strip("/") + "/"):
        return f"{key!r} is outside the team store prefix {prefix!r}"
    if len(parts) == depth - 1 and parts[-1] == SETTINGS_FILE and slugify(parts[-2]) == parts[-2]:
        return _SETTINGS
    if len(parts) != depth or parts[-1] != METADATA_FILE or not is_id(parts[-2]) or not parts[-3]:
        return f"{key!r} is neither <prefix>/<project>/<id>/{METADATA_FILE} nor <project>/{SETTINGS_FILE}"
    return ""
