"""FLOPs of one forward pass, estimated from an ONNX graph with ONNX shape inference.

Counted: ``Conv``, ``ConvTranspose``, ``Gemm`` and ``MatMul`` (the multiply-accumulates that dominate
CNNs, MLPs and transformers); one multiply-accumulate is 2 FLOPs. Element-wise ops, pooling and
activations are ignored. Dynamic axes (the batch) are set to 1, so the figure is per sample.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

from modelkb.extras import require

logger = logging.getLogger(__name__)

COUNTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _dims(type_proto: Any) -> list[int | None] | None:
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
        for d in tensor.shape.dim
    ]


def _fix_dynamic_inputs(model: Any) -> None:
    """Give every symbolic or unknown input dimension the size 1 (batch of one)."""
    initializers = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        for dim in value.type.tensor_type.shape.dim:
            if not (dim.HasField("dim_value") and dim.dim_value > 0):
                dim.Clear()
                dim.dim_value = 1


def _shapes(model: Any) -> dict[str, list[int | None] | None]:
    graph = model.graph
    shapes: dict[str, list[int | None] | None] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        shapes[value.name] = _dims(value.type)
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _attr(node: Any, name: str, default: Any) -> Any:
    for attribute in node.attribute:
        if attribute.name == name:
            from onnx import helper

            return helper.get_attribute_value(attribute)
    return default


def _known(shape: list[int | None] | None) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def _node_macs(node: Any, shapes: dict[str, list[int | None] | None]) -> int | None:
    """Multiply-accumulates of one node, or ``None`` when a needed shape is unknown."""

    def get(names: Any, i: int) -> list[int | None] | None:
        return shapes.get(names[i]) if len(names) > i else None

    inp, out = get(node.input, 0), get(node.output, 0)
    if node.op_type in ("Conv", "ConvTranspose"):
        weight = get(node.input, 1)
        if not (_known(weight) and _known(out) and _known(inp)):
            return None
        kernel = math.prod(weight[2:])
        if node.op_type == "Conv":  # weight: [C_out, C_in/group, k...]
            return out[0] * out[1] * math.prod(out[2:]) * weight[1] * kernel
        # ConvTranspose weight: [C_in, C_out/group, k...]; every input pixel scatters a kernel
        return inp[0] * inp[1] * math.prod(inp[2:]) * weight[1] * kernel
    if node.op_type == "Gemm":
        a, b = inp, get(node.input, 1)
        if not (_known(a) and _known(b)) or len(a) != 2 or len(b) != 2:
            return None
        m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
        n = b[0] if _attr(node, "transB", 0) else b[1]
        return m * k * n
    if node.op_type == "MatMul":
        a, b = inp, get(node.input, 1)
        if not (_known(a) and _known(b)):
            return None
        k = a[-1]
        if _known(out) and out:
            return math.prod(out) * k
        m = a[-2] if len(a) > 1 else 1
        n = b[-1] if len(b) > 1 else 1
        batch = math.prod(a[:-2]) if len(a) > 2 else (math.prod(b[:-2]) if len(b) > 2 else 1)
        return batch * m * k * n
    return 0


def estimate_flops(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Estimate the FLOPs of one forward pass of one sample through an ONNX model.

    Args:
        path: A ``model.onnx``.

    Returns:
        ``{"flops", "macs", "by_op": {op: flops}, "nodes_counted", "nodes_uncounted": [names],
        "complete": bool, "method"}``. ``complete`` is false when some Conv/Gemm/MatMul shapes
        could not be inferred; ``flops`` then counts only the others.
    """
    require("onnx", "torch")
    import onnx

    model = onnx.load(str(Path(path)), load_external_data=False)
    _fix_dynamic_inputs(model)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as err:
        logger.warning("ONNX shape inference failed on %s: %s", path, err)
    shapes = _shapes(model)
    by_op: Counter[str] = Counter()
    counted = 0
    uncounted: list[str] = []
    for node in model.graph.node:
        if node.op_type not in COUNTED_OPS:
            continue
        macs = _node_macs(node, shapes)
        if macs is None:
            uncounted.append(node.name or node.op_type)
            continue
        counted += 1
        by_op[node.op_type] += 2 * macs
    total = sum(by_op.values())
    return {
        "flops": total,
        "macs": total // 2,
        "by_op": dict(by_op),
        "nodes_counted": counted,
        "nodes_uncounted": uncounted,
        "complete": not uncounted,
        "method": "ONNX shape inference, batch 1; Conv/ConvTranspose/Gemm/MatMul, 2 FLOPs per multiply-accumulate",
    }
