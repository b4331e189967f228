"""Render a run's deployable inference package from the Jinja templates in ``modelkb/templates``.

``render_package`` writes a self-contained folder: ``handler.py``, ``predict.py``, ``Dockerfile``,
``template.yaml``, ``README.md``, ``requirements.txt`` (rendered), ``preprocess.py`` and
``inference.py`` (the framework-free runtime, copied verbatim), ``spec.json`` and ``model.onnx``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from modelkb.errors import PackageError
from modelkb.serverless.spec import build_spec

logger = logging.getLogger(__name__)

BASE_IMAGE = "public.ecr.aws/lambda/python:3.12"
PYTHON_VERSION = "3.12"
PLATFORM = "manylinux_2_28_x86_64"
# pip does not widen --platform to older manylinux tags; pure-C wheels tagged only manylinux2014
# (awslambdaric, some pydantic-core builds) need it too. The pins keep onnxruntime at 1.32.
PLATFORMS = (PLATFORM, "manylinux2014_x86_64")
RUNTIME_PINS = {
    "onnxruntime": "1.32.0",
    "numpy": "2.4.6",
    "pillow": "13.0.0",
    "aws-lambda-powertools[validation]": "3.37.0",
    "pydantic": "2.13.5",  # enable_validation needs it; the [validation] extra only brings fastjsonschema
}
"""What the image gets: onnxruntime, numpy, Pillow (image models only), powertools and pydantic."""

RENDERED = {
    "handler.py": "handler.py.j2",
    "predict.py": "predict.py.j2",
    "Dockerfile": "Dockerfile.j2",
    "template.yaml": "template.yaml.j2",
    "README.md": "README.md.j2",
    "requirements.txt": "requirements.txt.j2",
}
COPIED = {"preprocess.py": "preprocess_runtime.py", "inference.py": "inference_runtime.py"}
_SINGLE_FIELD = {"image": "image", "tabular": "features", "text": "text", "other": "inputs"}


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """The one Jinja environment: package templates, and a missing variable is an error."""
    # Generated files are Python, YAML and Markdown, never HTML: escaping would corrupt them.
    return Environment(
        loader=PackageLoader("modelkb", "templates"),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass
class PackageResult:
    """A rendered package.

    Attributes:
        path: The package folder.
        spec: The handler spec written as ``spec.json``.
        files: Names of the files written.
    """

    path: Path
    spec: dict[str, Any]
    files: list[str] = field(default_factory=list)


def find_model(bundle_path: Path, metadata: dict[str, Any]) -> Path:
    """The bundle's ONNX file (``onnx.path`` or ``model.onnx``)."""
    relative = (metadata.get("onnx") or {}).get("path") or "model.onnx"
    path = bundle_path / relative
    if path.is_file():
        return path
    failure = next(
        (
            str(w.get("message"))
            for w in metadata.get("warnings") or []
            if isinstance(w, dict) and w.get("source") == "onnx"
        ),
        None,
    )
    if failure is None:
        raise PackageError(
            f"run {metadata.get('id')} has no ONNX model ({path} is missing)",
            hint="Train with a ModelKB callback or exp.log_model(model, example_input) (ONNX export is on by default).",
        )
    hint = (
        f"See {bundle_path / 'onnx_export.log'} for the converter's own report."
        if (bundle_path / "onnx_export.log").is_file()
        else f"See the run's warnings: modelkb show {metadata.get('id')}."
    )
    raise PackageError(
        f"run {metadata.get('id')} has no ONNX model: its export failed during training ({failure})",
        hint=hint,
    )


def inspect_model(model_path: Path) -> tuple[list[dict[str, Any]], Any]:
    """The ONNX model's inputs (``[{name, shape, dtype}]``) and an onnxruntime session."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    except Exception as err:
        raise PackageError(f"onnxruntime cannot load {model_path}: {err}") from err
    inputs = []
    for graph_input in session.get_inputs():
        dtype = graph_input.type.removeprefix("tensor(").removesuffix(")")
        dtype = {"float": "float32", "double": "float64"}.get(dtype, dtype)
        shape = [d if isinstance(d, int) else None for d in graph_input.shape]
        inputs.append({"name": graph_input.name, "shape": shape, "dtype": dtype})
    return inputs, session


def choose_postprocess(session: Any, spec: dict[str, Any]) -> str:
    """How to turn the model's output into probabilities, found by running it on probe inputs.

    Rows already in [0, 1] summing to 1 are probabilities (Keras softmax heads); other multi-class
    outputs are logits (PyTorch heads) and get a softmax; a single output column is a probability,
    a logit (two classes) or a regression value. A regression loss (``run_task``) wins.
    """
    import numpy as np

    from modelkb.serverless.preprocess_runtime import numpy_dtype

    if spec.get("task") == "regression":  # the recorded loss says so: values, whatever their number
        return "regression"
    rng = np.random.default_rng(0)
    feed = {}
    for model_input in spec.get("named_inputs") or [spec["input"]]:
        shape = [4, *[d if d is not None else 8 for d in model_input["shape"][1:]]]
        dtype = numpy_dtype(model_input["dtype"])
        if dtype is np.object_:  # a looked-up text input: its choices, else unseen texts
            choices = model_input.get("choices") or [""]
            probe = np.resize(np.asarray(choices, dtype=object), shape)
        elif np.issubdtype(dtype, np.integer):
            high = int((spec.get("text") or {}).get("vocab_size") or 2)
            probe = rng.integers(0, max(high, 1), size=shape).astype(dtype)
        else:
            probe = rng.random(shape).astype(dtype)
        feed[model_input["name"]] = probe
    try:
        (out,) = session.run([session.get_outputs()[0].name], feed)
    except Exception as err:
        raise PackageError(
            f"the ONNX model does not run on probe inputs {sorted(feed)}: {err}"
        ) from err
    rows = np.asarray(out, dtype=np.float64).reshape(out.shape[0], -1)
    in_unit = bool(((rows >= -1e-6) & (rows <= 1 + 1e-6)).all())
    two_classes = bool(spec.get("classes")) and len(spec["classes"]) == 2
    if rows.shape[1] == 1:
        if not two_classes and not spec.get("classes") and spec.get("task") != "classification":
            return "regression"
        return "binary" if in_unit else "sigmoid"
    if in_unit and np.allclose(rows.sum(axis=1), 1.0, atol=1e-4):
        return "none"
    return "softmax"


def render_package(
    bundle_path: str | os.PathLike[str],
    metadata: dict[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    memory_size: int = 1024,
    timeout: int = 30,
    image_uri: str = "",
    base_image: str = BASE_IMAGE,
    overwrite: bool = True,
) -> PackageResult:
    """Write the deployable package of one run.

    Args:
        bundle_path: The run's bundle folder.
        metadata: Its ``metadata.json``.
        out_dir: Where to write the package (created; replaced when ``overwrite``).
        memory_size: Lambda memory in MB (128..10240).
        timeout: Lambda timeout in seconds (1..900).
        image_uri: Default ``ImageUri`` of the SAM template (``deploy`` passes the pushed one).
        base_image: Default ``BASE_IMAGE`` of the Dockerfile.
        overwrite: Replace an existing package folder.

    Raises:
        PackageError: No ONNX model, unsupported preprocessing, bad limits, or the folder exists.
    """
    if not 128 <= memory_size <= 10240:
        raise PackageError(
            f"Expected memory_size between 128 and 10240 MB. Received: memory_size={memory_size}"
        )
    if not 1 <= timeout <= 900:
        raise PackageError(f"Expected timeout between 1 and 900 s. Received: timeout={timeout}")
    bundle = Path(bundle_path)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise PackageError(f"{out} already exists", hint="Pass another --out or remove the folder.")
    model_path = find_model(bundle, metadata)
    graph_inputs, session = inspect_model(model_path)
    spec = build_spec(metadata, bundle_path=bundle, graph_inputs=graph_inputs)
    spec["postprocess"] = choose_postprocess(session, spec)
    spec["example_request"], spec["example_answer"] = _example(model_path, spec)
    context = _context(
        spec, memory_size=memory_size, timeout=timeout, image_uri=image_uri, base_image=base_image
    )

    env = template_environment()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for target, template in RENDERED.items():
            (staging / target).write_text(
                env.get_template(template).render(**context), encoding="utf-8"
            )
        here = Path(__file__).resolve().parent
        for target, source in COPIED.items():
            shutil.copyfile(here / source, staging / target)
        shutil.copyfile(model_path, staging / "model.onnx")
        (staging / "spec.json").write_text(
            json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = sorted(p.name for p in out.iterdir())
    logger.info("packaged run %s into %s", spec["experiment"]["id"], out)
    return PackageResult(path=out, spec=spec, files=files)


def _example(model_path: Path, spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The example body and the packaged model's answer to it (refused at package time if it fails)."""
    from modelkb.serverless.example_request import example_request, request_samples
    from modelkb.serverless.inference_runtime import Predictor
    from modelkb.serverless.preprocess_runtime import InputError

    body = example_request(spec)
    samples, batch = request_samples(body)
    try:
        answers = Predictor(model_path, spec).predict(samples)
    except InputError as err:
        raise PackageError(
            f"the generated handler refuses its own example request {body}: {err}",
            hint="Record the model's input (exp.set_dataset(features=..., kind=...)) and package again.",
        ) from err
    return body, {"results": answers} if batch else answers[0]


def runtime_pins(kind: str) -> dict[str, str]:
    """Pinned runtime requirements for a data kind (Pillow only for images)."""
    return {
        name: version
        for name, version in RUNTIME_PINS.items()
        if name != "pillow" or kind == "image"
    }


def _context(
    spec: dict[str, Any], *, memory_size: int, timeout: int, image_uri: str, base_image: str
) -> dict[str, Any]:
    experiment = {key: str(value or "") for key, value in spec["experiment"].items()}
    short = experiment["id"][-8:] or "model"
    kind = spec["kind"]
    image = spec.get("image") or {}
    text = spec.get("text") or {}
    tokenizer = any(step["op"] == "tokenize" for step in spec.get("preprocessing") or [])
    sample = next(iter(spec["example_request"].values()))
    example = (
        "digit.png"
        if kind == "image"
        else shlex.quote(sample if isinstance(sample, str) else json.dumps(sample))
    )
    if len(example) > 200:
        example = "input.json"
    request = json.dumps(spec["example_request"])
    help_text = {
        "image": "a PNG/JPEG file, a .npy array or a JSON array of raw pixel values",
        "tabular": "a JSON object of named features, a JSON array of values, or a .json/.npy file",
        "text": "the text itself, a .txt file, or a JSON array of token ids"
        if tokenizer
        else "a JSON array of token ids",
    }.get(kind, "a JSON array or a .json/.npy file")
    return {
        "experiment": experiment,
        "kind": kind,
        "modelkb_version": _modelkb_version(),
        "single_field": _SINGLE_FIELD[kind],
        "service_name": f"modelkb-{short}",
        "image_tag": f"modelkb-{short}",
        "image_uri": image_uri or "PLACEHOLDER.dkr.ecr.us-east-1.amazonaws.com/modelkb:latest",
        "base_image": base_image,
        "python_version": PYTHON_VERSION,
        "platform_flags": " ".join(f"--platform {p}" for p in PLATFORMS),
        "pins": runtime_pins(kind),
        "memory_size": memory_size,
        "timeout": timeout,
        "input_name": spec["input"]["name"],
        "input_shape": spec["input"]["shape"],
        "input_dtype": spec["input"]["dtype"],
        "features": spec.get("features") or [],
        "channels": image.get("channels", 1),
        "height": image.get("height"),
        "width": image.get("width"),
        "pixel_range": image.get("pixel_range"),
        "maxlen": text.get("maxlen"),
        "max_batch": spec["limits"]["max_batch"],
        "steps": ", ".join(step["op"] for step in spec.get("preprocessing") or []),
        "example_input": example,
        "example_request": shlex.quote(request)
        if len(request) <= 2000
        else None,  # an image's zeros: GET /metadata
        "example_answer": json.dumps(spec["example_answer"]),
        "regression": spec.get("postprocess") == "regression",
        "tokenizer": tokenizer,
        "text_values": any(
            entry["dtype"] in ("string", "str") for entry in spec.get("named_inputs") or []
        ),
        "input_help": help_text,
    }


def _modelkb_version() -> str:
    try:
        return importlib_metadata.version("modelkb")
    except importlib_metadata.PackageNotFoundError:
        return "0+dev"
