"""Training scripts run as a user runs them: the repository's examples and a framework-free toy."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# A training script that needs no framework: "metrics" from Python's random generator, so an
# unseeded run differs from its reproduction while a seeded one matches exactly.
TOY_SCRIPT = textwrap.dedent("""
    import argparse, random
    from modelkb import Experiment

    parser = argparse.ArgumentParser()
    parser.add_argument("--store")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    exp = Experiment("Toy", "tester", seed=args.seed, store=args.store)
    with exp:
        exp.log_params(epochs=args.epochs, learning_rate=0.1)
        for epoch in range(args.epochs):
            exp.log_metrics({"loss": 1.0 / (epoch + 1) + random.random(), "val_loss": random.random()}, epoch=epoch)
    print(exp.id)
""")


def run_script(script: Path, store: Path, *args: str, cwd: Path | None = None) -> str:
    """Run a training script that prints or records one run; returns the new run's id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELKB_")}
    before = {p.name for p in store.glob("*/*")}
    done = subprocess.run(
        [sys.executable, str(script), "--store", str(store), *args],
        cwd=cwd or script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    from modelkb.bundle import wait_sealed

    created = [p for p in store.glob("*/*") if p.name not in before and p.is_dir()]
    for folder in created:  # a PyTorch run is sealed by its background sealer, just after exit
        wait_sealed(folder)
    new = [p.name for p in created if (p / "metadata.json").is_file()]
    assert len(new) == 1, new
    return new[0]
