"""The hub's catalog builder on a burst of runs: one build for N notifications, then one run, then a cold start.

Usage: ``python bench/serverless/bench_hub_builder.py [--runs 50] [--projects 3]``. Starts a moto S3
server on 127.0.0.1, pushes N real framework-free runs (``tests/support/runs.make_bundle``: metrics,
a 5 KB model, 6 KB weights, code) into a team store bucket with ``modelkb push``, and calls the
handler in-process with one SQS batch naming them all (what the queue's batching window delivers),
then with one more run, then once more after emptying its work folder (a cold start).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

TEAM, CATALOG = "bench-team", "bench-catalog"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--projects", type=int, default=3)
    args = parser.parse_args()

    from support import s3_events
    from support.processes import free_port, wait_for_port

    port = free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    work = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    try:
        wait_for_port(port, moto)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=endpoint,
            MODELKB_TEAM_STORE=f"s3://{TEAM}/team",
            MODELKB_CATALOG_BUCKET=CATALOG,
            MODELKB_HUB_WORK_DIR=str(work / "lambda-tmp"),
        )
        import boto3
        from click.testing import CliRunner
        from support.runs import make_bundle

        from modelkb.cli import cli
        from modelkb.serverless import hub_builder

        s3 = boto3.client("s3", endpoint_url=endpoint)
        for bucket in (TEAM, CATALOG):
            s3.create_bucket(Bucket=bucket)

        def push(seed: int) -> str:
            run_id = make_bundle(work / "laptop", f"Project {seed % args.projects}", seed=seed)
            argv = ["push", run_id, f"s3://{TEAM}/team", "--store", str(work / "laptop")]
            result = CliRunner().invoke(cli, argv, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return run_id

        def event_for(run_ids: list[str]) -> dict:
            keys = [k for k in s3_events.run_keys(TEAM, s3, "team") if k.split("/")[-2] in run_ids]
            return s3_events.sqs_event(
                [s3_events.s3_event([s3_events.s3_record(TEAM, k, s3=s3)]) for k in keys]
            )

        started = time.perf_counter()
        burst = [push(seed) for seed in range(args.runs)]
        print(f"pushed {args.runs} runs in {time.perf_counter() - started:.1f} s")
        print("| invocation | seconds | pages rendered | objects uploaded | unchanged |")
        print("| --- | --- | --- | --- | --- |")

        def invoke(label: str, event: dict) -> None:
            begin = time.perf_counter()
            report = hub_builder.lambda_handler(event, None)
            seconds = time.perf_counter() - begin
            assert report["built"] and not report["problems"], report
            print(
                f"| {label} | {seconds:.1f} | {report['pages_rendered']} | "
                f"{report['objects_uploaded']} | {report['objects_unchanged']} |"
            )

        invoke(f"burst: one batch of {args.runs} notifications", event_for(burst))
        later = push(args.runs)
        invoke("one more run (warm)", event_for([later]))
        shutil.rmtree(work / "lambda-tmp")
        invoke("the same run again after a cold start (empty /tmp)", event_for([later]))
    finally:
        moto.terminate()
        moto.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
