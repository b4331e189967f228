"""Benchmark the S3 team store: pulls, refreshes and catalog builds against a local S3 server.

Usage: ``.venv/bin/python bench/team_store_bench.py [--count 10000] [--projects 20] [--workdir DIR]``

Starts ``moto_server`` on 127.0.0.1, uploads ``--count`` synthetic sealed runs under
``s3://team/ml`` (``tests/support/synthetic_store.py``: ~5 KB ``metadata.json``, ``metrics.jsonl``,
``README.md``), then measures, each with its S3 request counts:

1. the first pull into an empty cache (what a new machine pays once);
2. a refresh with nothing changed (what every command pays);
3. a full catalog build from the team store (``build_site``, no zips);
4. one new run uploaded, then a refresh and an incremental build (what the hub's builder pays).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.processes import free_port, stop, wait_for_port
from support.synthetic_store import make_store

from modelkb.fsutil import sha256_file
from modelkb.site_builder.build import build_site
from modelkb.team_store import TeamStore

TEAM = "s3://team/ml"


def sealed_for_real(folder: Path) -> None:
    """List the synthetic run's files with their true sizes and sha256 sums (what a seal does)."""
    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["artifacts"] = [
        {"path": name, "size": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)}
        for name in ("metrics.jsonl", "README.md")
    ]
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def upload(client, folders: list[Path], root: Path) -> None:
    def put(folder: Path) -> None:
        for name in ("metrics.jsonl", "README.md", "metadata.json"):
            key = "ml/" + str((folder / name).relative_to(root))
            digest = sha256_file(folder / name)
            client.put_object(
                Bucket="team",
                Key=key,
                Body=(folder / name).read_bytes(),
                Metadata={"sha256": digest},
            )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, folders))


def counted(store: TeamStore) -> Counter:
    calls: Counter = Counter()
    store.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.update([model.name])
    )
    return calls


def timed(label: str, action, calls: Counter, rows: list[tuple[str, str, str]]):
    t0 = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - t0
    requests = ", ".join(f"{n} {name}" for name, n in sorted(calls.items())) or "none"
    rows.append((label, f"{seconds:.2f} s", requests))
    print(f"{label}: {seconds:.2f} s ({requests})", flush=True)
    calls.clear()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="modelkb-team-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    port = free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        wait_for_port(port, moto)
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket="team")
        source = work / "source"
        t0 = time.perf_counter()
        folders = make_store(source, count=args.count + 1, projects=args.projects)
        for folder in folders:
            sealed_for_real(folder)
        upload(client, folders[:-1], source)
        print(f"uploaded {args.count} runs in {time.perf_counter() - t0:.1f} s", flush=True)

        rows: list[tuple[str, str, str]] = []
        cache, site = work / "cache", work / "site"
        store = TeamStore(TEAM, cache_dir=cache)
        calls = counted(store)
        timed(f"first pull, {args.count} runs, empty cache", store.refresh, calls, rows)

        store = TeamStore(TEAM, cache_dir=cache)
        calls = counted(store)
        timed("refresh, nothing changed", store.refresh, calls, rows)

        def list_only() -> None:  # the S3 server's and botocore's share of that refresh
            list(client.get_paginator("list_objects_v2").paginate(Bucket="team", Prefix="ml/"))

        timed("(the listing alone, boto3's own paginator)", list_only, Counter(), rows)

        store = TeamStore(TEAM, cache_dir=cache)
        calls = counted(store)
        report = timed(
            "full catalog build from the team store (no zips)",
            lambda: build_site(store, site, zip_bundles=False),
            calls,
            rows,
        )
        assert report.experiments == args.count, report

        upload(client, folders[-1:], source)
        store = TeamStore(TEAM, cache_dir=cache)
        calls = counted(store)
        report = timed(
            "one new run: refresh + incremental build",
            lambda: build_site(store, site, zip_bundles=False),
            calls,
            rows,
        )
        assert report.rendered == 1 and report.experiments == args.count + 1, report

        print("\n| what | time | S3 requests |\n| --- | --- | --- |")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(f"\nload average {os.getloadavg()[0]:.1f}; work folder {work}")
    finally:
        stop(moto)


if __name__ == "__main__":
    main()
