"""Tensor plumbing shared by the PyTorch collector: JSON-safe values, shapes, devices, module calls.

Nothing here records anything; :mod:`~modelkb.collector.torch.describe`,
:mod:`~modelkb.collector.torch.export` and :mod:`~modelkb.collector.torch.trainer` build on it.
Torch is imported if it is installed; without it only the framework-free helpers (``plain``,
``is_array``) are usable, and the objects that need torch fail at construction.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

try:
    import torch
except ImportError:  # the [torch] extra is missing: objects fail at construction
    torch = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from torch import nn


def plain(value: Any) -> Any:
    """A JSON-friendly copy: tensors/numpy scalars to numbers, tuples to lists, the rest to ``str``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if hasattr(value, "numel") and callable(value.numel):
        try:
            return plain(value.item()) if value.numel() == 1 else f"tensor{list(value.shape)}"
        except (RuntimeError, ValueError):
            return str(value)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return plain(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def is_tensor(value: Any) -> bool:
    return torch is not None and isinstance(value, torch.Tensor)


def batchless_shape(value: Any) -> list[int | None] | None:
    """Shape of the first tensor in ``value`` with the batch axis as ``None``."""
    tensor = first_tensor(value)
    if tensor is None:
        return None
    return [None, *(int(d) for d in tensor.shape[1:])] if tensor.dim() else []


def first_tensor(value: Any) -> Any:
    if is_tensor(value):
        return value
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def is_array(value: Any) -> bool:
    """numpy arrays and tensors (anything with a shape and a dtype), not loaders or datasets."""
    return hasattr(value, "shape") and hasattr(value, "dtype") and not callable(value.shape)


def as_tensor(value: Any) -> Any:
    """Tensors pass through; numpy float64 becomes float32 (the dtype of a default torch module)."""
    if is_tensor(value) or value is None:
        return value
    if isinstance(value, (tuple, list)) and value and not isinstance(value[0], (int, float, bool)):
        return type(value)(as_tensor(v) for v in value)
    if isinstance(value, Mapping):
        return {k: as_tensor(v) for k, v in value.items()}
    tensor = torch.as_tensor(value)
    if tensor.dtype == torch.float64:
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


def head_rows(value: Any, rows: int) -> Any:
    """The first ``rows`` rows, detached, on the CPU (a tuple/dict of inputs keeps its structure)."""
    if isinstance(value, Mapping):
        return {k: head_rows(v, rows) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(head_rows(v, rows) for v in value)
    value = as_tensor(value)
    return value[:rows].detach().to("cpu").clone()


@contextlib.contextmanager
def preserved_modes(module: nn.Module) -> Iterator[None]:
    """Restore every submodule's train/eval flag afterwards (a frozen BatchNorm stays frozen)."""
    modes = [(m, m.training) for m in module.modules()]
    try:
        yield
    finally:
        for sub, training in modes:
            sub.training = training


def module_device(module: nn.Module) -> Any:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def to_device(value: Any, device: Any) -> Any:
    if is_tensor(value):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(v, device) for v in value)
    return value


def call_module(module: Any, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return module(**inputs)
    if isinstance(inputs, (tuple, list)):
        return module(*inputs)
    return module(inputs)
