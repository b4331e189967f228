"""Benchmark the generated Lambda handler of a small CNN (not a test; prints a table).

Measures: raw onnxruntime ``session.run``; the handler in-process (API Gateway v2 event ->
``lambda_handler``); the handler through ``modelkb serve``'s HTTP front (keep-alive connection);
cold start (fresh process: ``import handler`` = imports + ONNX session); installed size of the
image's Python dependencies vs a torch-based handler's.

Usage: .venv/bin/python bench/serverless/bench_handler.py [--calls 2000] [--skip-size]
Goals: in-process handler within 100 us of raw onnxruntime, cold start < 1 s, deps < 250 MB.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "serverless"))


def _small_cnn_bundle(root: Path):
    """The examples' digits CNN (2 conv + 2 dense), untrained weights, as a bundle."""
    import torch
    from bundles import write_bundle
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    ).eval()

    def export(path: Path) -> None:
        torch.onnx.export(
            net,
            (torch.zeros(2, 1, 8, 8),),
            str(path),
            dynamo=True,
            external_data=False,
            input_names=["x"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            verbose=False,
        )

    steps = [
        {"op": "scale", "factor": 0.0625},
        {"op": "reshape", "shape": [-1, 1, 8, 8]},
        {"op": "cast", "dtype": "float32"},
    ]
    return write_bundle(
        root,
        project="bench cnn",
        framework="pytorch",
        dataset={"kind": "image", "classes": [str(i) for i in range(10)], "preprocessing": steps},
        inputs=[{"name": "x", "shape": [None, 1, 8, 8], "dtype": "float32"}],
        write_onnx=export,
    )


def _timed(fn, calls: int) -> list[float]:
    for _ in range(min(200, calls)):
        fn()
    out = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"median {statistics.median(samples):8.1f} us   p99 {p99:8.1f} us"


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _dist_closure(names: list[str]) -> set[str]:
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for spec in dist.requires or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def _installed_size(names: set[str]) -> int:
    total = 0
    for name in names:
        dist = metadata.distribution(name)
        for file in dist.files or []:
            path = Path(dist.locate_file(file))
            if path.is_file():
                total += path.stat().st_size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument(
        "--skip-size", action="store_true", help="skip vendoring the Lambda deps (needs PyPI)"
    )
    args = parser.parse_args()
    from modelkb.serve_loop import start_in_thread
    from modelkb.serverless.local_server import (
        LambdaContext,
        http_event,
        load_handler,
        serve_package,
    )
    from modelkb.serverless.render import render_package

    work = Path(tempfile.mkdtemp(prefix="modelkb-bench-"))
    folder, meta = _small_cnn_bundle(work / "store")
    package = render_package(folder, meta, work / "package").path
    rows: list[tuple[str, str]] = []

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(package / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
    )
    x = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)
    raw = _timed(lambda: session.run(None, {"x": x}), args.calls)
    rows.append(("raw onnxruntime session.run (batch 1)", _summary(raw)))

    handler = load_handler(package)
    pixels = (np.random.default_rng(1).random((8, 8)) * 16).round().tolist()
    event = http_event(
        "POST",
        "/predict",
        json.dumps({"inputs": pixels}).encode(),
        {"content-type": "application/json"},
    )
    context = LambdaContext()
    assert handler.lambda_handler(event, context)["statusCode"] == 200
    in_process = _timed(lambda: handler.lambda_handler(event, context), args.calls)
    rows.append(("handler in-process (POST /predict event)", _summary(in_process)))
    rows.append(
        (
            "  -> overhead over raw onnxruntime",
            f"median {statistics.median(in_process) - statistics.median(raw):8.1f} us",
        )
    )
    health = http_event("GET", "/health")
    rows.append(
        (
            "handler in-process (GET /health)",
            _summary(_timed(lambda: handler.lambda_handler(health, context), args.calls)),
        )
    )

    server = serve_package(package, port=0)
    start_in_thread(server)
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
    body = json.dumps({"inputs": pixels})

    def over_http() -> None:
        connection.request(
            "POST", "/predict", body=body, headers={"content-type": "application/json"}
        )
        response = connection.getresponse()
        response.read()

    rows.append(
        (
            "through `modelkb serve` (HTTP keep-alive)",
            _summary(_timed(over_http, max(200, args.calls // 4))),
        )
    )
    server.shutdown()

    code = "import time; t=time.perf_counter(); import handler; print(time.perf_counter()-t)"
    colds = []
    for _ in range(5):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=package,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(package)},
            check=True,
        )
        colds.append(float(result.stdout.strip().splitlines()[-1]))
    rows.append(
        (
            "cold start: import handler + ONNX session (5 fresh processes)",
            f"median {statistics.median(colds) * 1000:8.0f} ms   max {max(colds) * 1000:6.0f} ms",
        )
    )

    if not args.skip_size:
        from modelkb.serverless.container import vendor_dependencies

        deps = vendor_dependencies(package)
        rows.append(
            (
                "image Python deps (vendored, CPython 3.12 manylinux_2_28)",
                f"{_dir_size(deps) / 1e6:8.1f} MB",
            )
        )
    torch_names = _dist_closure(["torch", "numpy", "pillow", "aws-lambda-powertools", "pydantic"])
    rows.append(
        (
            f"torch-based handler deps (this venv: {len(torch_names)} dists incl. torch CPU)",
            f"{_installed_size(torch_names) / 1e6:8.1f} MB",
        )
    )
    print(
        f"\nServerless handler benchmark ({args.calls} calls; {os.cpu_count()} CPUs; Python {sys.version.split()[0]})"
    )
    for label, value in rows:
        print(f"  {label:<62} {value}")


if __name__ == "__main__":
    main()
