"""The "Use this model" section of an experiment page: how to run, fetch or call the model.

Every part comes from what the bundle records, and a part for something that did not happen is
left out: the Python snippet needs ``model.onnx``; ``modelkb clone`` a push (``s3.global_id``);
the Hub link a publish (``hub.url``); the ``curl`` line a deploy (``serverless.url`` and its
recorded example body). The snippet feeds the bundle's ``onnx.inputs`` (every input, named; text
as numpy object arrays) and lists, as comments, the recorded preprocessing steps the served
handler replays (:func:`modelkb.preprocessing.inference_steps`). User text reaches the snippet only
as a Python literal (``repr``) or inside a one-line comment, and the page only through Jinja's
autoescape.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

from modelkb.preprocessing import (
    REPLAYED_OPS,
    canonical_step,
    inference_steps,
    lookup_choices,
    lookups_by_input,
)
from modelkb.site_builder.catalog import nested

__all__ = ["curl_command", "link_url", "python_snippet", "usage"]

NUMPY_DTYPES = frozenset(
    {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"}
)
TEXT_DTYPES = frozenset({"str", "string"})
COMMENT_CHARS = 160
"""A step's comment is cut here (the whole step is in the bundle's metadata.json)."""

_HEAD = """import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
"""
_TAIL = """outputs = session.run(None, feed)
print(outputs[0])
"""
_ANY_INPUTS = """feed = {
    i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], dtype=np.float32)
    for i in session.get_inputs()
}
"""


def usage(metadata: Mapping[str, Any], *, has_model: bool) -> dict[str, str]:
    """The section's parts; a part that does not apply is ``""`` (and the page leaves it out)."""
    global_id = nested(metadata, "s3", "global_id")
    pushed = isinstance(global_id, str) and global_id.startswith("s3://")
    endpoint = link_url(nested(metadata, "serverless", "url"))
    return {
        "python": python_snippet(metadata) if has_model else "",
        "clone": f"modelkb clone {shlex.quote(global_id)}" if pushed else "",
        "hub_url": link_url(nested(metadata, "hub", "url")),
        "endpoint": endpoint,
        "curl": curl_command(endpoint, nested(metadata, "serverless", "example_request")),
    }


def python_snippet(metadata: Mapping[str, Any]) -> str:
    """A script that runs ``model.onnx`` with onnxruntime on one input of the recorded shape."""
    steps = nested(metadata, "dataset", "preprocessing")
    steps = [s for s in steps if isinstance(s, Mapping)] if isinstance(steps, list) else []
    replayed = inference_steps(steps)
    lines = [_HEAD]
    if replayed:
        lines.append(
            "# Prepare raw inputs as the run did (the recorded steps the served handler replays\n"
            "# on a batch x, in order):\n"
        )
        lines += [f"#   {_step_comment(step)}\n" for step in replayed]
    inputs = nested(metadata, "onnx", "inputs")
    specs = [i for i in inputs if isinstance(i, Mapping)] if isinstance(inputs, list) else []
    known = specs and all(
        isinstance(s.get("name"), str) and str(s.get("dtype")) in NUMPY_DTYPES | TEXT_DTYPES
        for s in specs
    )
    if known:
        lookups = lookups_by_input(steps)
        lines.append("# A batch of one; replace the values with your data.\nfeed = {\n")
        lines += [f"    {s['name']!r}: {_array(s, lookups.get(s['name']))},\n" for s in specs]
        lines.append("}\n")
    else:
        lines.append("# A batch of one per model input; replace the zeros with your data.\n")
        lines.append(_ANY_INPUTS)
    lines.append(_TAIL)
    return "".join(lines)


def _array(spec: Mapping[str, Any], lookup: Mapping[str, Any] | None) -> str:
    """``np.zeros((1, 8), dtype=np.float32)``; a text input is filled with a value it knows."""
    shape = spec.get("shape") if isinstance(spec.get("shape"), list) else [None]
    dims = tuple(d if isinstance(d, int) and d > 0 else 1 for d in shape)
    dtype = str(spec["dtype"])
    if dtype in TEXT_DTYPES:
        choices = lookup_choices(lookup) or [""]
        return f"np.full({dims!r}, {str(choices[0])!r}, dtype=object)"
    return f"np.zeros({dims!r}, dtype=np.{dtype})"


def _step_comment(step: Mapping[str, Any]) -> str:
    """One recorded step as the line of numpy it stands for (or words, for what numpy lacks)."""
    step = canonical_step(step)
    op = str(step.get("op"))
    text = _STEP_TEXT.get(op, _generic)(step)
    if op not in REPLAYED_OPS:
        text += "  [not replayed by the handler: apply it as in training]"
    source = " ".join(str(step.get("source") or "").split())
    if source:
        text += f"  # in training: {source}"
    text = " ".join(text.split())  # a comment stays one line, whatever the bundle holds
    return text if len(text) <= COMMENT_CHARS else text[: COMMENT_CHARS - 1] + "…"


def _generic(step: Mapping[str, Any]) -> str:
    args = ", ".join(
        f"{k}={v!r}" for k, v in step.items() if k not in ("op", "source", "line", "file")
    )
    return f"{step.get('op')}({args})"


def _resize(step: Mapping[str, Any]) -> str:
    if step.get("height") is not None and step.get("width") is not None:
        size = f"{step['height']}x{step['width']}"
    else:
        size = f"a shorter side of {step.get('size')!r}"
    how = f" ({step['interpolation']})" if step.get("interpolation") else ""
    return f"resize each image to {size}{how}"


def _tokenize(step: Mapping[str, Any]) -> str:
    vocabulary = step.get("vocabulary")
    known = (
        f", its {len(vocabulary)}-token vocabulary recorded" if isinstance(vocabulary, list) else ""
    )
    return f"tokenize with {step.get('tokenizer') or 'the recorded tokenizer'}{known}"


_STEP_TEXT = {
    "scale": lambda s: f"x = x * {s.get('factor')!r}",
    "rescale": lambda s: f"x = x * {s.get('scale', 1.0)!r} + {s.get('offset', 0.0)!r}",
    "normalize": lambda s: f"x = (x - {s.get('mean', 0.0)!r}) / {s.get('std', 1.0)!r}",
    "standardize": lambda s: f"x = (x - {s.get('mean', 0.0)!r}) / {s.get('std', 1.0)!r}",
    "minmax": lambda s: f"x = (x - {s.get('min')!r}) / ({s.get('max')!r} - {s.get('min')!r})",
    "clip": lambda s: f"x = np.clip(x, {s.get('min')!r}, {s.get('max')!r})",
    "cast": lambda s: f"x = x.astype({s.get('dtype')!r})",
    "reshape": lambda s: (
        f"x = x.reshape({[-1 if d is None else d for d in s.get('shape') or []]!r})"
    ),
    "flatten": lambda s: "x = x.reshape(len(x), -1)",
    "expand_dims": lambda s: f"x = np.expand_dims(x, {s.get('axis', -1)!r})",
    "transpose": lambda s: f"x = x.transpose({s.get('axes')!r})",
    "resize": _resize,
    "tokenize": _tokenize,
    "pad": lambda s: (
        f"pad or cut each sequence to {s.get('maxlen')!r} tokens ({s.get('padding', 'pre')})"
    ),
}


def curl_command(url: str, body: object) -> str:
    """A ready-to-paste ``curl`` call of a deployed model's ``/predict`` with its recorded example body."""
    if not url or not isinstance(body, Mapping):
        return ""
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).replace("'", "'\\''")
    endpoint = shlex.quote(url.rstrip("/") + "/predict")
    return f"curl -s -X POST {endpoint} -H 'content-type: application/json' -d '{payload}'"


def link_url(value: object) -> str:
    """Only http(s) links are rendered as links (never ``javascript:``)."""
    if isinstance(value, str) and value.lower().startswith(("https://", "http://")):
        return value
    return ""
