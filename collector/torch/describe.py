"""JSON-safe descriptions of the objects a PyTorch run exposes.

The optimizer (class, ``param_groups``), the criterion, the module (leaf layers with their config
parsed from ``extra_repr()``, parameter counts, output shapes seen by :class:`ShapeProbe` on the
first batch, what rebuilds it from the captured code) and a ``DataLoader`` (sample count, loader
settings, torchvision transforms). Reading only: recording is the job of
:class:`~modelkb.collector.torch.capture.TorchCapture`.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkb.collector.torch.tensors import batchless_shape, dtype_name, is_tensor, plain, torch

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ShapeProbe",
    "current_lr",
    "describe_architecture",
    "describe_loader",
    "describe_tensors",
    "loss_summary",
    "module_reference",
    "optimizer_summary",
    "parse_extra_repr",
]

logger = logging.getLogger(__name__)


def describe_tensors(value: Any, name: str) -> list[dict[str, Any]]:
    """``[{name, shape (batch None), dtype}]`` for a tensor, a tuple/list of tensors or a dict of them."""
    if is_tensor(value):
        return [{"name": name, "shape": batchless_shape(value), "dtype": dtype_name(value.dtype)}]
    if isinstance(value, Mapping):
        return [d for key, item in value.items() for d in describe_tensors(item, str(key))]
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return describe_tensors(value[0], name)
        return [d for i, item in enumerate(value) for d in describe_tensors(item, f"{name}_{i}")]
    return []


def optimizer_summary(optimizer: Any) -> dict[str, Any]:
    """``{"name", "config"}``: the class name and ``param_groups[0]`` without its parameters."""
    groups = getattr(optimizer, "param_groups", None) or [{}]
    config = {k: plain(v) for k, v in groups[0].items() if k != "params"}
    summary: dict[str, Any] = {"name": type(optimizer).__name__, "config": config}
    if len(groups) > 1:
        summary["param_groups"] = len(groups)
    return summary


def current_lr(optimizer: Any) -> float | None:
    """The learning rate the optimizer uses now (schedulers write it into ``param_groups``)."""
    try:
        value = plain(optimizer.param_groups[0]["lr"])
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def loss_summary(criterion: Any) -> tuple[str | None, dict[str, Any]]:
    """The criterion's name (class name, or function name) and its configuration."""
    if criterion is None:
        return None, {}
    if inspect.isfunction(criterion) or inspect.isbuiltin(criterion):
        return criterion.__name__, {}
    config: dict[str, Any] = {}
    extra = getattr(criterion, "extra_repr", None)
    if callable(extra):
        with contextlib.suppress(Exception):
            config = parse_extra_repr(extra(), type(criterion))
    for attr in ("reduction", "ignore_index", "label_smoothing", "pos_weight", "weight"):
        value = getattr(criterion, attr, None)
        if value is not None and attr not in config:
            config[attr] = plain(value)
    return type(criterion).__name__, config


def _split_top_level(text: str) -> list[str]:
    """Split ``"1, 8, kernel_size=(3, 3)"`` on commas outside brackets and quotes."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


_CONSTANTS = {"True": True, "False": False, "None": None}


def _literal(text: str) -> Any:
    if text.isdigit():  # the common case (channels, features), without literal_eval's parse
        return int(text)
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    try:
        return plain(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_extra_repr(text: str, cls: type | None = None) -> dict[str, Any]:
    """Best-effort config from a module's ``extra_repr()``.

    ``"1, 8, kernel_size=(3, 3), stride=(1, 1)"`` on ``Conv2d`` gives ``{"in_channels": 1,
    "out_channels": 8, "kernel_size": [3, 3], "stride": [1, 1]}``: positional values are named after
    the class's ``__init__`` parameters when they can be, else kept under ``args``.
    """
    config: dict[str, Any] = {}
    args: list[Any] = []
    for part in _split_top_level(text.replace("\n", " ")):
        key, sep, value = part.partition("=")
        if sep and key.strip().isidentifier():
            config[key.strip()] = _literal(value.strip())
        else:
            args.append(_literal(part))
    if args:
        names = _positional_names(cls)
        if len(names) >= len(args):
            for name, value in zip(names, args, strict=False):
                config.setdefault(name, value)
        else:
            config["args"] = args
    return config


@lru_cache(maxsize=512)  # inspect.signature costs ~20 us; layer classes recur
def _positional_names(cls: type | None) -> tuple[str, ...]:
    if cls is None:
        return ()
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in params if p.kind in kinds)


def _leaf_modules(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """Named leaf modules; a loss kept as an attribute (``self.loss_fn``) is not a layer."""
    loss = torch.nn.modules.loss._Loss
    leaves = [
        (name, m)
        for name, m in module.named_modules()
        if name and next(m.children(), None) is None and not isinstance(m, loss)
    ]
    return leaves or [(type(module).__name__, module)]


def _numel(param: Any) -> int:
    try:
        return int(param.numel())
    except (RuntimeError, ValueError):  # lazy modules before their first forward
        return 0


def describe_architecture(module: nn.Module, *, probe: ShapeProbe | None = None) -> dict[str, Any]:
    """Leaf layers (name, type, config, params, output_shape) and parameter counts of ``module``."""
    layers = []
    for name, leaf in _leaf_modules(module):
        config: dict[str, Any] = {}
        with contextlib.suppress(Exception):  # extra_repr is user code for custom layers
            config = parse_extra_repr(leaf.extra_repr(), type(leaf))
        layers.append(
            {
                "name": name,
                "type": type(leaf).__name__,
                "config": config,
                "params": sum(_numel(p) for p in leaf.parameters(recurse=False)),
                "output_shape": probe.layer_shapes.get(name) if probe else None,
            }
        )
    params = list(module.parameters())
    arch: dict[str, Any] = {
        "layers": layers,
        "parameter_count": sum(_numel(p) for p in params),
        "trainable_parameter_count": sum(_numel(p) for p in params if p.requires_grad),
    }
    if probe is not None and probe.inputs:
        arch["inputs"] = probe.inputs
    if probe is not None and probe.outputs:
        arch["outputs"] = probe.outputs
    return arch


class ShapeProbe:
    """Forward hooks that note each leaf's output shape and the model's inputs/outputs once.

    Each hook removes itself after its first call, so the probe costs nothing after the first
    batch and never needs an extra forward pass (which could draw random numbers or update
    BatchNorm statistics and so change training).
    """

    def __init__(self, module: nn.Module) -> None:
        self.layer_shapes: dict[str, list[int | None] | None] = {}
        self.inputs: list[dict[str, Any]] = []
        self.outputs: list[dict[str, Any]] = []
        self.fired = False
        self._handles: dict[str, Any] = {}
        for name, leaf in _leaf_modules(module):
            if leaf is not module:
                self._handles[name] = leaf.register_forward_hook(self._leaf_hook(name))
        self._handles[""] = module.register_forward_hook(self._root_hook)

    def _leaf_hook(self, name: str) -> Callable[..., None]:
        def hook(_module: Any, _args: Any, output: Any) -> None:
            try:
                self.layer_shapes.setdefault(name, batchless_shape(output))
                self._drop(name)
            except Exception as err:
                logger.debug("shape probe on %s failed: %s", name, err)

        return hook

    def _root_hook(self, module: Any, args: Any, output: Any) -> None:
        try:
            self.inputs = describe_tensors(tuple(args), "input")
            self.outputs = describe_tensors(output, "output")
            self.fired = True
            if len(self._handles) == 1:  # the root is its own only leaf
                self.layer_shapes.setdefault(_leaf_modules(module)[0][0], batchless_shape(output))
            self._drop("")
        except Exception as err:
            logger.debug("shape probe on the model failed: %s", err)

    def _drop(self, name: str) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.remove()

    def remove(self) -> None:
        """Remove the hooks that have not fired."""
        for name in list(self._handles):
            self._drop(name)


def module_reference(
    module: nn.Module, code: Mapping[str, Any] | None, init_args: Any = None
) -> dict[str, Any]:
    """What rebuilds ``module`` from the captured code: class, defining module, file, init args."""
    cls = type(module)
    ref: dict[str, Any] = {"class": cls.__qualname__, "module": cls.__module__}
    source = _class_source(cls)
    if source:
        rel = _captured_relpath(source, list((code or {}).get("files") or []))
        if rel:
            ref["file"] = rel
    args = init_args if init_args is not None else _stored_init_args(module)
    if args is not None:
        ref["init_args"] = plain(args)
    return ref


@lru_cache(maxsize=256)  # file lookups and a resolve(): ~50 us, asked at the start and the end
def _class_source(cls: type) -> str | None:
    """The resolved POSIX path of the file defining ``cls``, if it has one."""
    try:
        source = inspect.getsourcefile(cls)
    except (TypeError, OSError):
        return None
    return Path(source).resolve().as_posix() if source else None


def _captured_relpath(path: str, files: list[str]) -> str | None:
    matches = [rel for rel in files if path == rel or path.endswith("/" + rel.lstrip("/"))]
    return max(matches, key=len) if matches else None


def _stored_init_args(module: nn.Module) -> Any:
    for attr in ("init_args", "_init_args", "hparams", "config"):
        value = getattr(module, attr, None)
        if isinstance(value, Mapping):
            return dict(value)
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict):
            with contextlib.suppress(Exception):
                return to_dict()
    return None


def describe_loader(loader: Any, split: str) -> dict[str, Any]:
    """Dataset fields of a ``DataLoader``: sample count, loader settings, ``transforms`` if present."""
    from modelkb.collector.dataset_info import describe_arrays

    dataset = getattr(loader, "dataset", None)
    info: dict[str, Any] = {}
    tensors = getattr(dataset, "tensors", None)  # TensorDataset: describe the arrays themselves
    if isinstance(tensors, tuple) and tensors:
        info = describe_arrays(tensors[0], tensors[1] if len(tensors) > 1 else None, split=split)
    with contextlib.suppress(TypeError, NotImplementedError, AttributeError):
        info.setdefault("samples", {})[split] = len(dataset)  # type: ignore[arg-type]
    if split == "train":
        call = {"call": type(loader).__name__, "dataset": type(dataset).__name__}
        for attr in ("batch_size", "num_workers", "drop_last"):
            if getattr(loader, attr, None) is not None:
                call[attr] = plain(getattr(loader, attr))
        info["loading"] = [call]
        transforms = getattr(dataset, "transforms", None) or getattr(dataset, "transform", None)
        if transforms is not None:
            info["transforms"] = repr(transforms)
            info["preprocessing"] = _transform_steps(transforms)
    return info


def _transform_steps(transforms: Any) -> list[dict[str, Any]]:
    """torchvision-style ``Compose([...])`` as ``[{"op": "Normalize", "mean": [...], ...}]``."""
    steps = getattr(transforms, "transforms", None)
    steps = steps if isinstance(steps, (list, tuple)) else [transforms]
    out = []
    for step in steps:
        text = repr(step)
        inner = (
            text[text.find("(") + 1 : text.rfind(")")] if "(" in text and text.endswith(")") else ""
        )
        entry: dict[str, Any] = {"op": type(step).__name__, "source": "transforms"}
        with contextlib.suppress(Exception):
            entry.update(parse_extra_repr(inner))
        entry.pop("args", None)
        out.append(entry)
    return out
