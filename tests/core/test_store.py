"""The store: concurrent writers, killed runs, corrupt bundles, id prefixes, rebuildable index."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelkb.bundle import METADATA_FILE
from modelkb.errors import AmbiguousIdError, BundleNotFoundError, StoreError
from modelkb.experiment import Experiment
from modelkb.store import Store

WORKER = textwrap.dedent(
    """
    import sys
    from modelkb.experiment import Experiment
    store, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for j in range(count):
        with Experiment("Shared", f"w{worker}", seed=j, store=store, capture_code=False,
                        capture_environment=False) as exp:
            exp.log_params(worker=worker, job=j)
            exp.log_metrics({"loss": 1.0 / (j + 1)}, epoch=0)
    """
)


def test_eight_processes_twenty_runs_each_none_lost_or_merged(tmp_path: Path) -> None:
    root = tmp_path / "store"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(root), str(w), "20"], stderr=subprocess.PIPE
        )
        for w in range(8)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    store = Store(root)
    runs = store.search(refresh=False)  # what the writers indexed themselves
    assert len(runs) == 160
    pairs = {
        (r.flat["hyperparameters.params.worker"], r.flat["hyperparameters.params.job"])
        for r in runs
    }
    assert pairs == {(w, j) for w in range(8) for j in range(20)}
    assert len({r.id for r in runs}) == 160
    for run in runs:
        meta = json.loads((Path(run.path) / METADATA_FILE).read_text())
        assert meta["user"] == f"w{meta['hyperparameters']['params']['worker']}"
    count, problems = store.reindex()
    assert count == 160 and problems == []


KILLED = textwrap.dedent(
    """
    import sys, time
    from modelkb.experiment import Experiment
    exp = Experiment("Killed", "bob", seed=7, store=sys.argv[1], capture_code=False)
    exp.start()
    exp.log_params(epochs=100)
    for epoch in range(3):
        exp.log_metrics({"loss": 1.0 - epoch / 10, "val_loss": 1.2 - epoch / 10}, epoch=epoch)
    print(exp.id, flush=True)
    time.sleep(600)
    """
)


def test_sigkilled_run_shows_as_interrupted_with_every_finished_epoch(tmp_path: Path) -> None:
    root = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(root)], stdout=subprocess.PIPE)
    experiment_id = proc.stdout.readline().decode().strip()
    store = Store(root)
    assert store.get(experiment_id).status == "running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    bundle = store.get(experiment_id)
    assert bundle.status == "interrupted" and not bundle.sealed
    assert [e["epoch"] for e in bundle.metadata["metrics"]["history"]] == [0, 1, 2]
    assert bundle.metadata["metrics"]["final"]["val_loss"] == pytest.approx(1.0)
    assert store.search("status = interrupted")[0].id == experiment_id
    store.reindex()  # seals it
    sealed = store.get(experiment_id)
    assert sealed.sealed and sealed.status == "interrupted"
    assert len(sealed.metadata["metrics"]["history"]) == 3
    assert sealed.metadata["hyperparameters"]["epochs"] == 100


def test_killed_run_keeps_its_source_lockfile_and_context(tmp_path: Path) -> None:
    """Read when the experiment is created, written when it starts: a kill loses none of it."""
    script = tmp_path / "project" / "train.py"
    script.parent.mkdir()
    script.write_text(
        "import sys, time\n"
        "from modelkb.experiment import Experiment\n"
        "API_TOKEN = 'hunter2-not-for-bundles'\n"
        "exp = Experiment('Killed', 'bob', seed=1, store=sys.argv[1])\n"
        "exp.start()\n"
        "exp.log_metrics({'loss': 0.5}, epoch=0)\n"
        "print(exp.id, flush=True)\n"
        "time.sleep(600)\n"
    )
    root = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, str(script), str(root)], stdout=subprocess.PIPE)
    experiment_id = proc.stdout.readline().decode().strip()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    bundle = Store(root).get(experiment_id)
    assert bundle.status == "interrupted"
    copied = (bundle.path / "code" / "train.py").read_text()
    assert "time.sleep(600)" in copied and "hunter2" not in copied
    assert bundle.metadata["code"]["entry"] == "train.py"
    lock = (bundle.path / "requirements.lock").read_text()
    assert any(line.startswith("numpy==") for line in lock.splitlines())
    assert bundle.metadata["context"]["python"] == platform.python_version()
    assert [e["epoch"] for e in bundle.metadata["metrics"]["history"]] == [0]


def test_files_staged_at_creation_land_in_the_bundle_or_nowhere(tmp_path: Path) -> None:
    """The source and lockfile are written when the experiment is created, into a hidden folder
    that ``start()`` renames into the bundle; an experiment that never starts leaves nothing."""
    root = tmp_path / "store"
    started = Experiment("Staged", "bob", seed=1, store=root)
    staging = started.writer.staging
    assert (staging / "requirements.lock").is_file() and not started.path.exists()
    assert Store(root).refresh() == []  # the store skips the hidden staging folder
    started.start()
    assert not staging.exists()
    assert (started.path / "requirements.lock").is_file() and (started.path / "run.json").is_file()
    started.finish()
    assert "requirements.lock" in {a["path"] for a in started.metadata["artifacts"]}

    script = (
        "import sys\nfrom modelkb.experiment import Experiment\n"
        "Experiment('Never', 'bob', seed=1, store=sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", script, str(root)], check=True, timeout=120)
    assert not (root / "never").exists() or list((root / "never").iterdir()) == []
    assert [run.id for run in Store(root).search()] == [started.id]


FORKED = """
import os, sys
from modelkb.experiment import Experiment
exp = Experiment("Forked", "bob", seed=1, store=sys.argv[1])
pid = os.fork()
if pid == 0:
    sys.exit(0)  # a normal exit: the child runs the atexit handlers it inherited
os.waitpid(pid, 0)
print(exp.writer.staging.is_dir())
exp.start()
exp.finish()
print(exp.id)
"""


def test_a_forked_child_exiting_leaves_the_parents_run_alone(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", FORKED, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out[0] == "True"
    bundle = Store(tmp_path / "store").get(out[1])
    assert bundle.status == "completed" and (bundle.path / "requirements.lock").is_file()


def test_other_ranks_of_a_distributed_launch_stage_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "3")
    exp = Experiment("Ranks", "bob", seed=1, store=tmp_path / "store")
    assert not exp.writer.staging.exists()
    exp.start()  # a rank that does start writes its files directly
    assert (exp.path / "requirements.lock").is_file()
    exp.finish()


def test_torn_last_metrics_line_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(root)], stdout=subprocess.PIPE)
    experiment_id = proc.stdout.readline().decode().strip()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    store = Store(root)
    folder = store.get(experiment_id).path
    with open(folder / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 3, "train": {"lo')
    bundle = store.get(experiment_id)
    assert len(bundle.metadata["metrics"]["history"]) == 3
    assert any("torn" in w for w in bundle.warnings)


def test_corrupt_bundles_are_reported_and_skipped(tmp_path: Path, make_run) -> None:
    root = tmp_path / "store"
    good = make_run(root, "Digits", epochs=1)
    bad_json = root / "digits" / "01jdx0000000000000000bad01"
    bad_json.mkdir(parents=True)
    (bad_json / METADATA_FILE).write_text("{not json")
    bad_schema = root / "digits" / "01jdx0000000000000000bad02"
    bad_schema.mkdir()
    (bad_schema / METADATA_FILE).write_text(
        json.dumps({"schema_version": 1, "id": "nope", "project": "Digits"})
    )
    empty = root / "digits" / "01jdx0000000000000000bad03"
    empty.mkdir()
    store = Store(root)
    runs = store.search()
    assert [r.id for r in runs] == [good.id]
    reasons = {Path(p.path).name: p.reason for p in store.problems}
    assert set(reasons) == {bad_json.name, bad_schema.name, empty.name}
    assert "not valid JSON" in reasons[bad_json.name]
    assert "required property" in reasons[bad_schema.name]
    assert "not a bundle" in reasons[empty.name]
    count, problems = store.reindex()
    assert count == 1 and len(problems) == 3
    # a bundle that was fine and then got corrupted by hand drops out at the next reindex
    (good.path / METADATA_FILE).write_text("[]")
    count, problems = store.reindex()
    assert count == 0 and len(problems) == 4
    assert store.search() == []


def test_id_prefix_and_name_resolution(tmp_path: Path, make_run) -> None:
    root = tmp_path / "store"
    runs = [make_run(root, epochs=1) for _ in range(3)]
    store = Store(root)
    target = runs[1]
    assert store.resolve(target.id[:20]) == target.id
    assert store.resolve(target.id.upper()) == target.id
    assert store.resolve(target.name) == target.id
    with pytest.raises(AmbiguousIdError, match="matches 3 experiments"):
        store.resolve(target.id[:3])
    with pytest.raises(BundleNotFoundError, match="no experiment"):
        store.resolve("zzzz")


def test_index_is_rebuildable_from_bundles(tmp_path: Path, make_run) -> None:
    root = tmp_path / "store"
    made = {make_run(root, "A", epochs=1).id, make_run(root, "B", epochs=2).id}
    store = Store(root)
    store.close()
    (root / ".modelkb" / "index.sqlite").unlink()
    for extra in (root / ".modelkb").glob("index.sqlite-*"):
        extra.unlink()
    store = Store(root)
    assert {r.id for r in store.search()} == made
    assert {r.id for r in store.search("epochs > 1")} == {r.id for r in store.search("project = B")}


def test_update_metadata_keeps_unknown_keys_and_reindexes(tmp_path: Path, make_run) -> None:
    run = make_run(tmp_path / "store", epochs=1)
    store = Store(tmp_path / "store")
    store.update_metadata(run.id, {"x_custom": {"kept": True}})
    store.update_metadata(run.id[:8], {"notes": "published"})
    meta = store.get(run.id).metadata
    assert meta["x_custom"] == {"kept": True} and meta["notes"] == "published"
    assert [r.id for r in store.search("notes ~ published")] == [run.id]


def test_remove_deletes_bundle_and_entry(tmp_path: Path, make_run) -> None:
    root = tmp_path / "store"
    keep, gone = make_run(root, epochs=1), make_run(root, epochs=1)
    store = Store(root)
    store.remove(gone.id[:12])
    assert not gone.path.exists() and keep.path.exists()
    assert [r.id for r in store.search()] == [keep.id]


def _read_only_mount_works(folder: Path) -> bool:
    probe = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f"mount --bind '{folder}' '{folder}' && "
            f"mount -o remount,bind,ro '{folder}' && ! touch '{folder}/.probe' 2>/dev/null",
        ],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0


def test_a_read_only_store_is_listed_shown_and_queried(tmp_path: Path) -> None:
    """A store on a read-only mount (a share, a CD, a container layer): readable, with one warning."""
    import shutil

    from modelkb.experiment import Experiment

    written = tmp_path / "written"
    for optimizer in ("Adam", "SGD"):
        with Experiment("RO", "u", store=written, capture_code=False) as exp:
            exp.log_params(optimizer=optimizer, epochs=3)
            exp.log_metrics({"loss": 0.5}, epoch=0)
    store = tmp_path / "store"  # as a share or a CD holds it: no -wal/-shm files beside the index
    shutil.copytree(written, store, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    if not _read_only_mount_works(store):
        pytest.skip("no read-only bind mount here (needs unshare -m and mount)")
    before = sorted(p.relative_to(store).as_posix() for p in store.rglob("*"))
    python = sys.executable
    commands = [
        f"{python} -m modelkb ls --store {store}",
        f"{python} -m modelkb show {exp.id} --store {store}",
        f"{python} -m modelkb query 'optimizer = SGD' --store {store} --format json",
    ]
    script = (
        f"mount --bind '{store}' '{store}' && mount -o remount,bind,ro '{store}' && "
        + " && ".join(f'{command}; echo "rc=$?"' for command in commands)
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert "Traceback" not in out and out.count("rc=0") == 3, out
    assert (exp.id[:10] in out and '"optimizer": "SGD"' in done.stdout) or exp.id in done.stdout
    assert out.count("read-only") == 3  # said once per command: the index is not saved
    assert sorted(p.relative_to(store).as_posix() for p in store.rglob("*")) == before


def test_a_kill_mid_export_leaves_no_temp_file_among_the_artifacts(tmp_path: Path) -> None:
    """A Keras run killed inside model.export leaves ``.model-XXXXXXXX.onnx`` (0 bytes): never the model."""
    from modelkb.bundle import read_bundle
    from modelkb.site_builder.build import build_site

    store = tmp_path / "store"
    program = textwrap.dedent(f"""
        import os, signal
        from modelkb.experiment import Experiment
        exp = Experiment("Killed", "u", store={str(store)!r}, capture_code=False)
        exp.log_metrics({{"loss": 0.5}}, epoch=0)
        (exp.path / ".model-k3x9_2ab.onnx").write_bytes(b"")  # model.export's temp file, as a kill leaves it
        (exp.path / ".model.safetensors.a1b2c3d4.tmp").write_bytes(b"")
        os.chmod(exp.path / "metrics.jsonl", 0o600)  # as files written through mkstemp are
        print(exp.path, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    exp = read_bundle(Path(done.stdout.strip()), validate=False)
    Store(store).reindex()  # seals the dead run as interrupted
    meta = read_bundle(exp.path).metadata
    assert meta["status"] == "interrupted" and len(meta["metrics"]["history"]) == 1
    assert [a["path"] for a in meta["artifacts"] if a["path"].startswith(".")] == []
    assert (
        exp.path / "metrics.jsonl"
    ).stat().st_mode & 0o044 == 0o044  # readable like any other file
    build_site(Store(store), tmp_path / "site")
    import zipfile

    with zipfile.ZipFile(tmp_path / "site" / "experiments" / exp.id / "bundle.zip") as archive:
        assert not [n for n in archive.namelist() if "/." in n]


@pytest.mark.parametrize("how", ["env", "option"])
def test_a_url_other_than_s3_is_refused_not_made_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """MODELKB_HOME=s3://bucket/team used to write runs into ./s3:/bucket/team without a word; s3://
    is now a team store (tests/publishing/test_team_store.py), other schemes are refused."""
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "MODELKB_HOME": "gs://bucket/team"} if how == "env" else dict(os.environ)
    args = ["ls"] if how == "env" else ["ls", "--store", "gs://bucket/team"]
    done = subprocess.run(
        [sys.executable, "-m", "modelkb", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "is a URL; a store is a local folder or an s3://bucket/prefix team store" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "gs:").exists()
    with pytest.raises(StoreError, match="a store is a local folder or an s3://"):
        Experiment("P", "u", store="gs://bucket/team")
