"""Whole-process wall time of the same training script with and without a tracker, interleaved.

Each round runs every (script, tracker) once, in a shuffled order, as a fresh ``python`` process
(interpreter start to exit: what a user waits for). Reports per script and tracker the median and
spread of the wall times, the ratio of medians to the untracked run, and for ModelKB how long after
the process exited its bundle was sealed (``metadata.json`` with a verified ``model.onnx``).

Also lists what each tracker left on disk: a model file, an ONNX export, the training code, a
lockfile (the peers do unequal work, and the table says so).

Usage: python bench/peers/run.py [--rounds 5] [--scripts torch,keras] [--trackers none,modelkb]
       [--python .bench-venv/bin/python]   (peers: mlflow, tensorboard, dvclive, wandb, aim)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = {"torch": HERE / "torch_mnist.py", "keras": HERE / "keras_mnist.py"}


CAPTURES = {
    "model": ("*.keras", "*.pt", "*.pth", "*.safetensors", "*.h5", "MLmodel"),
    "onnx": ("*.onnx",),
    "code": ("*.py",),
    "lockfile": ("requirements.lock", "requirements.txt", "conda.yaml", "python_env.yaml"),
}
"""What a tracker's output folder is searched for (recursively), by what it stands for."""


def captured(store: Path) -> list[str]:
    """The kinds of :data:`CAPTURES` found under a tracker's output folder."""
    return [
        kind for kind, globs in CAPTURES.items() if any(next(store.rglob(g), None) for g in globs)
    ]


def run_once(python: str, script: Path, tracker: str, store: Path) -> tuple[float, float | None]:
    """(wall seconds of the process, seconds from its exit until the bundle was sealed)."""
    started = time.perf_counter()
    subprocess.run(
        [python, str(script), "--tracker", tracker, "--store", str(store)],
        cwd=store.parent,  # DVCLive writes dvc.yaml (and a .dvc folder) in the working directory
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ended = time.perf_counter()
    if tracker != "modelkb":
        return ended - started, None
    while not list(store.glob("*/*/metadata.json")):
        if time.perf_counter() - ended > 60:
            raise RuntimeError(f"{script.name}: no sealed bundle 60 s after exit")
        time.sleep(0.02)
    sealed = time.perf_counter() - ended
    metadata = json.loads(next(store.glob("*/*/metadata.json")).read_text())
    if not (metadata.get("onnx") or {}).get("max_abs_diff") is not None:
        raise RuntimeError(f"{script.name}: sealed without a verified model.onnx")
    return ended - started, sealed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scripts", default="torch,keras")
    parser.add_argument("--trackers", default="none,modelkb")
    parser.add_argument("--python", default=sys.executable, help="the venv to run the scripts in")
    args = parser.parse_args()
    python = str(Path(args.python).absolute()) if "/" in args.python else args.python
    jobs = [(s, t) for s in args.scripts.split(",") for t in args.trackers.split(",")]
    times: dict[tuple[str, str], list[float]] = {job: [] for job in jobs}
    sealed: dict[str, list[float]] = {}
    kinds: dict[tuple[str, str], list[str]] = {}
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds + 1):  # round 0 warms the disk cache, not counted
            rng.shuffle(jobs)
            for script, tracker in jobs:
                store = Path(tmp) / f"{script}-{tracker}-{round_no}"
                wall, seal = run_once(python, SCRIPTS[script], tracker, store)
                kinds[(script, tracker)] = captured(store)
                if round_no:
                    times[(script, tracker)].append(wall)
                    if seal is not None:
                        sealed.setdefault(script, []).append(seal)
    print(
        "| script | tracker | median s | min-max s | ratio to none | sealed after exit s | left on disk |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for script in args.scripts.split(","):
        base = statistics.median(times[(script, "none")])
        for tracker in args.trackers.split(","):
            runs = times[(script, tracker)]
            seal = sealed.get(script) if tracker == "modelkb" else None
            print(
                f"| {script} | {tracker} | {statistics.median(runs):.2f} | "
                f"{min(runs):.2f}-{max(runs):.2f} | {statistics.median(runs) / base:.3f} | "
                f"{f'{statistics.median(seal):.2f} (max {max(seal):.2f})' if seal else ''} | "
                f"{', '.join(kinds[(script, tracker)]) or '-'} |"
            )


if __name__ == "__main__":
    main()
