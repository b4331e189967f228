"""Team scale: eight processes write into one ``s3://`` store at once; nothing is lost or merged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import run_cli
from support.runs import make_bundle

from modelkb.publishing.integrity import verify_files
from modelkb.site_builder.build import build_site
from modelkb.store import Store, open_store

TEAM = "s3://team/ml"
WRITERS, RUNS_EACH = 8, 20

WRITER = """
import os, sys
from modelkb.experiment import Experiment

writer = int(sys.argv[1])
for n in range(int(sys.argv[2])):
    with Experiment(f"Team {writer % 3}", f"w{writer}-run{n}", store=os.environ["TEAM"],
                    capture_code=False, seed=n) as exp:
        exp.log_params({"epochs": 2, "writer": writer, "learning_rate": 0.001 * (n + 1)})
        for epoch in range(2):
            exp.log_metrics({"loss": 1 / (epoch + n + 1), "accuracy": 0.5 + epoch / 10}, epoch=epoch)
        exp.artifact_path("model.safetensors").write_bytes(os.urandom(2000 + n))
    print(exp.id)
"""


@pytest.fixture
def team(moto: str, s3, monkeypatch: pytest.MonkeyPatch) -> str:
    s3.create_bucket(Bucket="team")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    return TEAM


def test_eight_writers_and_pushes_at_once_then_one_catalog_shows_them_all(
    team: str, tmp_path: Path
) -> None:
    local = Store(tmp_path / "old-store")  # runs made before the team store, pushed meanwhile
    pushed = [make_bundle(local.root, seed=seed) for seed in range(3)]

    writers = []
    for writer in range(WRITERS):
        # writers 0-3 are machines of their own; 4-7 share two caches (two processes per node)
        cache = tmp_path / "nodes" / (f"n{writer}" if writer < 4 else f"shared{writer % 2}")
        env = {**os.environ, "TEAM": TEAM, "MODELKB_CACHE": str(cache)}
        env.pop("MODELKB_SEAL", None)
        writers.append(
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(writer), str(RUNS_EACH)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        )  # fmt: skip
    pushes = [run_cli("push", run_id, TEAM, "--store", str(local.root)) for run_id in pushed]
    written = []
    for process in writers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        written += out.split()
    assert all(push.returncode == 0 for push in pushes), [p.stderr for p in pushes]
    assert len(written) == len(set(written)) == WRITERS * RUNS_EACH

    reader = open_store(TEAM, cache_dir=tmp_path / "reader")
    listed = [run.id for run in reader.search()]
    assert sorted(listed) == sorted(written + pushed)  # none lost, none merged
    assert reader.unsent == [] and reader.problems == []
    for run_id in listed:
        bundle = reader.get(run_id)  # downloads every file, each checked by its sha256
        verify_files(bundle.path, bundle.metadata)
        assert bundle.metadata["status"] == "completed"

    report = build_site(reader, tmp_path / "site", zip_bundles=False)
    assert report.experiments == len(listed) and report.problems == []
    for run_id in listed:
        assert (tmp_path / "site" / "experiments" / run_id / "index.html").is_file()

    # one more run lands; the next build fetches and renders only that one
    newest = make_bundle(open_store(TEAM, cache_dir=tmp_path / "nodes" / "n0"), seed=99)
    again = build_site(
        open_store(TEAM, cache_dir=tmp_path / "reader"), tmp_path / "site", zip_bundles=False
    )
    assert again.experiments == len(listed) + 1 and again.rendered == 1
    assert (tmp_path / "site" / "experiments" / newest / "index.html").is_file()
