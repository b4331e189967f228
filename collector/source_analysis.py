"""Find how a training script loaded and preprocessed its data, by reading its source (``ast``).

Nothing is imported or executed. :func:`analyze_training_source` returns the ``loading`` calls and
the ``preprocessing`` steps (vocabulary and replay rule: ``modelkb.preprocessing``).

Which array arithmetic counts as preprocessing (scale, normalize, cast, reshape, expand_dims): the
innermost operand is split into name tokens (``x_train`` -> ``x``, ``train``). A token such as
``loss``, ``acc``, ``lr``, ``y``, ``label``, ``total``, ``model`` rejects it; a token such as ``x``,
``images``, ``data``, ``inputs``, ``features``, ``batch`` accepts it; a neutral operand counts when
the assignment target is data-like (``x = raw / 255``). Arithmetic inside ``forward`` / ``call`` /
``build`` (the model itself, exported with it) is ignored. Names are resolved through the file's
imports (``np.load`` -> ``numpy.load``) and constants through earlier simple assignments
(``SCALE = 255.0``; ``MEAN, STD = (0.5,), (0.5,)``), in source order.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelkb.collector.preprocessing_steps import (
    DTYPES,
    data_like,
    dtype_name,
    library_family,
    library_steps,
    merge_repeats,
)
from modelkb.collector.static_values import StaticReader

logger = logging.getLogger(__name__)

__all__ = [
    "analyze_experiment_code",
    "analyze_source_texts",
    "analyze_training_source",
]

# fmt: off
_FILE_EXTS = (
    ".csv", ".tsv", ".txt", ".json", ".jsonl", ".npy", ".npz", ".parquet", ".pkl", ".pickle",
    ".h5", ".hdf5", ".tfrecord", ".arrow", ".feather", ".xlsx", ".gz", ".zip"
)
"""Suffixes that make ``open(path)`` a data-loading call."""
_SKLEARN_LOADERS = frozenset({
    "load_digits", "load_iris", "load_wine", "load_breast_cancer", "load_diabetes",
    "load_linnerud", "fetch_openml", "fetch_california_housing", "fetch_20newsgroups"
})
_LOADER_NAMES = frozenset({
    "image_dataset_from_directory", "text_dataset_from_directory",
    "audio_dataset_from_directory", "timeseries_dataset_from_array", "flow_from_directory",
    "flow_from_dataframe", "DataLoader", "ImageFolder", "DatasetFolder", "TFRecordDataset",
    "TextLineDataset", "make_csv_dataset", "loadmat", "load_dataset"
})
_NUMPY_LOADERS = frozenset({
    "numpy.load", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile", "numpy.memmap"
})
_FUNCTIONAL_DATA_OPS = frozenset({"pad", "resize"})  # library calls whose first argument is the data
_MODEL_FUNCS = frozenset(("forward", "call", "__call__", "build", "compute_output_shape"))
_METHOD_CASTS = {"float": "float32", "double": "float64", "half": "float16", "long": "int64"}
_TRANSPARENT = frozenset({
    "numpy.array", "numpy.asarray", "torch.tensor", "torch.as_tensor", "torch.from_numpy",
    "tensorflow.convert_to_tensor", "tensorflow.constant"
})
_TRANSPARENT_METHODS = frozenset({
    "to", "cuda", "cpu", "copy", "clone", "contiguous", "numpy", "to_numpy"
})
_AXIS_FUNCS = frozenset({
    "numpy.reshape", "tensorflow.reshape", "torch.reshape", "numpy.expand_dims",
    "tensorflow.expand_dims", "torch.unsqueeze", "tensorflow.cast"
})
# fmt: on


def analyze_training_source(paths: Iterable[Path | str]) -> dict[str, list[dict[str, Any]]]:
    """Read training source files and report how they load and preprocess data.

    Never raises: a file that cannot be read or parsed gets an entry in ``problems``.

    Args:
        paths: Python files (``.py``) or notebooks (``.ipynb``), in the order to report them.

    Returns:
        ``{"loading": [{call, args, kwargs, line, file}], "preprocessing": [step, ...],
        "problems": [{file, line, message}]}``; the steps are described in
        :mod:`modelkb.collector.preprocessing_steps`.
    """
    files = [Path(p) for p in paths]
    sources: list[tuple[str, str | BaseException]] = []
    for path, name in zip(files, _display_names(files), strict=True):
        try:
            sources.append((name, _read_source(path)))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            sources.append((name, err))
    return _analyze(sources)


def analyze_source_texts(sources: Iterable[tuple[str, str]]) -> dict[str, list[dict[str, Any]]]:
    """:func:`analyze_training_source` for Python sources already in memory: ``(name, text)`` pairs.

    Only ``.py`` names are read (e.g. an :class:`~modelkb.code_capture.CodeSnapshot`'s files).
    """
    return _analyze([(name, text) for name, text in sources if name.endswith(".py")])


def analyze_experiment_code(experiment: Any) -> dict[str, list[dict[str, Any]]]:
    """Analyze the training source an :class:`~modelkb.experiment.Experiment` captured; never raises.

    Called when a callback is created, so the parse is not charged to training.
    """
    snapshot = getattr(experiment, "code_snapshot", None)
    if snapshot is None:
        return {}
    try:
        return analyze_source_texts(snapshot.files)
    except Exception:
        logger.debug("source analysis failed", exc_info=True)
        return {}


def _analyze(sources: list[tuple[str, str | BaseException]]) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {"loading": [], "preprocessing": [], "problems": []}
    for name, text in sources:
        if isinstance(text, BaseException):
            result["problems"].append(
                {"file": name, "line": None, "message": f"{type(text).__name__}: {text}"}
            )
            continue
        try:
            tree = ast.parse(text, filename=name)
        except SyntaxError as err:
            result["problems"].append(
                {"file": name, "line": err.lineno, "message": f"SyntaxError: {err.msg}"}
            )
            continue
        except ValueError as err:  # e.g. a NUL byte
            result["problems"].append(
                {"file": name, "line": None, "message": f"{type(err).__name__}: {err}"}
            )
            continue
        scanner = _Scanner(text, name)
        try:
            scanner.visit(tree)
        except Exception as err:  # analysis is best effort: a finished run must survive it
            logger.debug("source analysis of %s stopped", name, exc_info=True)
            result["problems"].append(
                {"file": name, "line": None, "message": f"{type(err).__name__}: {err}"}
            )
        result["loading"].extend(scanner.loading)
        result["preprocessing"].extend(scanner.steps)
    result["preprocessing"] = merge_repeats(result["preprocessing"])
    return result


def _display_names(files: list[Path]) -> list[str]:
    if len(files) < 2:
        return [p.name for p in files]
    try:
        parents = [p.absolute().parent for p in files]
        common = parents[0]
        while not all(p.is_relative_to(common) for p in parents):
            common = common.parent
        return [p.absolute().relative_to(common).as_posix() for p in files]
    except ValueError:
        return [p.as_posix() for p in files]


def _read_source(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text
    cells = json.loads(text).get("cells", [])
    code = ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code"]
    # IPython magics and shell escapes are not Python; keep their lines so line numbers stay useful.
    return "\n".join(re.sub(r"(?m)^(\s*)[%!].*$", r"\1pass", cell) for cell in code)


class _Scanner(StaticReader):
    """Walks one module in source order, collecting loading calls and preprocessing steps."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name
        self.loading: list[dict[str, Any]] = []
        self.steps: list[dict[str, Any]] = []
        self.functions: list[str] = []
        self.target: str | None = None
        self.keyword: str | None = None
        self.container: dict[str, Any] | None = None
        self.applied: set[int] = set()

    # -- bookkeeping ------------------------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Assign(self, node: ast.Assign) -> None:
        target = node.targets[-1]
        if (
            isinstance(target, ast.Tuple)
            and isinstance(node.value, ast.Tuple)
            and len(target.elts) == len(node.value.elts)
        ):
            pairs = list(zip(target.elts, node.value.elts, strict=True))
        else:
            pairs = [(target, node.value)]
        for tgt, value in pairs:
            self._visit_with_target(self.dotted(tgt), value)
            self.remember(tgt, value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit_Assign(
                ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno)
            )

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        # ``x /= 255.0`` is ``x = x / 255.0``; the BinOp borrows the statement's span for ``source``
        fake = ast.copy_location(ast.BinOp(left=node.target, op=node.op, right=node.value), node)
        fake.end_lineno, fake.end_col_offset = node.end_lineno, node.end_col_offset
        self._visit_with_target(self.dotted(node.target), fake)
        if isinstance(node.target, ast.Name):
            self.constants.pop(node.target.id, None)

    def visit_keyword(self, node: ast.keyword) -> None:
        saved, self.keyword = self.keyword, node.arg
        self.visit(node.value)
        self.keyword = saved

    def _visit_with_target(self, name: str | None, value: ast.AST) -> None:
        saved, self.target = self.target, name
        self.visit(value)
        self.target = saved

    # -- expressions ------------------------------------------------------------------------------
    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._array_chain(node) or self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._array_chain(node) or self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        qual = self.qualname(node.func) or ""
        last = qual.rsplit(".", 1)[-1]
        if isinstance(node.func, ast.Call):
            self.applied.add(id(node.func))  # Keras functional API: Layer(...)(tensor)
        if self._is_loading(qual, last, node):
            self.loading.append(
                {
                    "call": qual,
                    "args": [self.arg(a) for a in node.args],
                    "kwargs": self.kwargs(node),
                    "line": node.lineno,
                    "file": self.name,
                }
            )
        for step in self._library_steps(node, qual, last):
            self._emit(node, step)
        if self._array_chain(node):
            return
        if last in ("Sequential", "Compose") or (
            last == "add" and isinstance(node.func, ast.Attribute)
        ):
            saved = self.container
            pipeline = self.target or (
                f"{self.keyword}@{node.lineno}" if self.keyword else f"{last.lower()}@{node.lineno}"
            )
            self.container = {
                "pipeline": pipeline if last != "add" else None,
                "in_model": last != "Compose",
            }
            self.generic_visit(node)
            self.container = saved
            return
        self.generic_visit(node)

    # -- helpers ----------------------------------------------------------------------------------
    def _emit(self, node: ast.AST, step: dict[str, Any]) -> None:
        step.update(line=getattr(node, "lineno", None), file=self.name, source=self.segment(node))
        self.steps.append(step)

    def _is_loading(self, qual: str, last: str, node: ast.Call) -> bool:
        if qual.startswith("sklearn.datasets.") or qual in _SKLEARN_LOADERS:
            return last.startswith(("load_", "fetch_", "make_"))
        if last == "load_data" and ".datasets." in qual:
            return True
        if qual.startswith(("torchvision.datasets.", "pandas.read_", "tensorflow_datasets.load")):
            return True
        if qual in _NUMPY_LOADERS or qual.startswith("datasets.load_") or last in _LOADER_NAMES:
            return True
        if qual == "open" and node.args:
            ok, path = self.value(node.args[0])
            mode = self.param(node, 1, "mode", "r")
            writing = isinstance(mode, str) and any(c in mode for c in "wax")
            return (
                ok and isinstance(path, str) and path.lower().endswith(_FILE_EXTS) and not writing
            )
        return False

    # -- layers, transforms, scalers, tokenizers --------------------------------------------------
    def _library_steps(self, node: ast.Call, qual: str, last: str) -> list[dict[str, Any]]:
        family = library_family(qual, self.frameworks)
        steps = library_steps(qual, family, [self.arg(a) for a in node.args], self.kwargs(node))
        data_arg = (
            node.args[0]
            if node.args and isinstance(node.args[0], (ast.Name, ast.Attribute))
            else None
        )
        for step in steps:
            if step["op"] in _FUNCTIONAL_DATA_OPS and data_arg is not None:
                step["applies_to"] = [
                    ast.unparse(data_arg)
                ]  # pad_sequences(x_train) and (x_test): one step
            if family == "keras" and last[:1].isupper() and step["op"] != "tokenize":
                step["in_model"] = self._in_model(node)
            if self.container and self.container["pipeline"]:
                step["pipeline"] = self.container["pipeline"]
        return steps

    def _in_model(self, node: ast.Call) -> bool:
        """A Keras layer inside ``Sequential``/``add``, applied to a tensor or kept on ``self``."""
        if self.container and self.container["in_model"]:
            return True
        return id(node) in self.applied or bool(self.target and self.target.startswith("self."))

    # -- array arithmetic -------------------------------------------------------------------------
    def _array_chain(self, node: ast.AST) -> bool:
        """Record the steps of an array expression applied to data; False when it is not one."""
        steps, leaf = self._chain(node)
        if not steps or (self.functions and self.functions[-1] in _MODEL_FUNCS):
            return False
        names = [n for n in re.split(r"\.", self._leaf_name(leaf) or "") if n]
        verdict = data_like(names)
        if verdict is None and self.target is not None and not self.target.startswith("self."):
            verdict = data_like([self.target])
        if not verdict:
            return False
        leaf_name = ".".join(names)
        applies_to = self.target if self.target and data_like([self.target]) else leaf_name
        for step_node, step in steps:
            step["applies_to"] = [applies_to]
            if leaf_name and leaf_name != applies_to and data_like(names):
                step["input"] = leaf_name  # x = RAW / 16: the data it was computed from
            self._emit(step_node, step)
        self.visit(leaf)
        return True

    def _leaf_name(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Call):
            return self._leaf_name(node.func)
        if isinstance(node, ast.Attribute) and not isinstance(
            node.value, (ast.Name, ast.Attribute, ast.Subscript)
        ):
            return f"{self._leaf_name(node.value) or ''}.{node.attr}"
        return self.dotted(node)

    def _chain(self, node: ast.AST) -> tuple[list[tuple[ast.AST, dict[str, Any]]], ast.AST]:
        """(steps in evaluation order, innermost operand) of an array expression."""
        own, operand = self._own_step(node)
        if operand is None:
            return [], node
        inner, leaf = self._chain(operand)
        return inner + ([(node, own)] if own else []), leaf

    def _own_step(self, node: ast.AST) -> tuple[dict[str, Any] | None, ast.AST | None]:
        if isinstance(node, ast.BinOp):
            return self._binop_step(node)
        if isinstance(node, ast.Subscript):
            index = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            new = [i for i, e in enumerate(index) if _is_newaxis(e)]
            if len(new) != 1:
                return None, None
            ellipsis = next(
                (
                    i
                    for i, e in enumerate(index)
                    if isinstance(e, ast.Constant) and e.value is Ellipsis
                ),
                None,
            )
            axis = new[0] - len(index) if ellipsis is not None and new[0] > ellipsis else new[0]
            return {"op": "expand_dims", "axis": axis}, node.value
        if not isinstance(node, ast.Call):
            return None, None
        qual = self.qualname(node.func) or ""
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        obj = node.func.value if isinstance(node.func, ast.Attribute) else None
        dtype = (
            dtype_name(self.param(node, None, "dtype"))
            if any(k.arg == "dtype" for k in node.keywords)
            else None
        )
        if qual in _TRANSPARENT or qual in _AXIS_FUNCS:
            if not node.args:
                return None, None
            last = qual.rsplit(".", 1)[-1]
            if last == "reshape":
                return {
                    "op": "reshape",
                    "shape": self._shape(
                        node.args[1:2]
                        or [k.value for k in node.keywords if k.arg in ("newshape", "shape")]
                    ),
                }, node.args[0]
            if last in ("expand_dims", "unsqueeze"):
                return {
                    "op": "expand_dims",
                    "axis": self.param(node, 1, "axis" if last == "expand_dims" else "dim"),
                }, node.args[0]
            if last == "cast":
                return {
                    "op": "cast",
                    "dtype": dtype_name(self.param(node, 1, "dtype")),
                }, node.args[0]
            return ({"op": "cast", "dtype": dtype} if dtype else None), node.args[0]
        if obj is None or qual.startswith(("numpy.", "torch.", "tensorflow.", "pandas.")):
            return None, None
        if method == "astype" and (node.args or node.keywords):
            return {"op": "cast", "dtype": dtype_name(self.param(node, 0, "dtype"))}, obj
        if method in _METHOD_CASTS and not node.args:
            return {"op": "cast", "dtype": _METHOD_CASTS[method]}, obj
        if method in ("reshape", "view") and node.args:
            return {"op": "reshape", "shape": self._shape(node.args)}, obj
        if method == "unsqueeze" and (node.args or node.keywords):
            return {"op": "expand_dims", "axis": self.param(node, 0, "dim")}, obj
        if method in _TRANSPARENT_METHODS:
            found = [
                dtype_name(self.arg(a)) for a in [*node.args, *(k.value for k in node.keywords)]
            ]
            found = [d for d in found if d in DTYPES.values()]
            return ({"op": "cast", "dtype": found[0]} if found else None), obj
        return None, None

    def _binop_step(self, node: ast.BinOp) -> tuple[dict[str, Any] | None, ast.AST | None]:
        left, right, op = node.left, node.right, node.op
        if isinstance(op, ast.Div) and isinstance(left, ast.BinOp) and isinstance(left.op, ast.Sub):
            mean, std = self.value(left.right), self.value(right)
            if self.number(left.left) is None:
                step: dict[str, Any] = {
                    "op": "normalize",
                    "mean": mean[1] if mean[0] else None,
                    "std": std[1] if std[0] else None,
                }
                if not (mean[0] and std[0]):
                    step.update(
                        mean_expr=self.segment(left.right),
                        std_expr=self.segment(right),
                        fitted=True,
                    )
                return step, left.left
        if isinstance(op, ast.Div) and self.number(left) is None:
            divisor = self.number(right)
            if divisor:
                return {"op": "scale", "factor": 1 / divisor}, left
            if isinstance(right, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)):
                return {
                    "op": "scale",
                    "factor": None,
                    "expr": f"1 / ({self.segment(right)})",
                    "fitted": True,
                }, left
        if isinstance(op, ast.Mult):
            for factor, operand in ((self.number(right), left), (self.number(left), right)):
                if factor is not None and self.number(operand) is None:
                    return {"op": "scale", "factor": factor}, operand
        if isinstance(op, ast.Sub) and self.number(left) is None:
            ok, mean = self.value(right)
            if ok and isinstance(mean, (int, float, list)):
                return {"op": "normalize", "mean": mean, "std": 1.0}, left
        return None, None

    def _shape(self, nodes: list[ast.AST]) -> list[int | None]:
        if len(nodes) == 1 and isinstance(nodes[0], (ast.Tuple, ast.List)):
            nodes = list(nodes[0].elts)
        dims = [self.number(n) for n in nodes]
        dims = [int(d) if isinstance(d, (int, float)) else None for d in dims]
        if dims and dims[0] is None and -1 not in dims and all(d is not None for d in dims[1:]):
            dims[0] = -1  # reshape(len(x), 8, 8, 1): the first axis is the batch
        return dims


def _is_newaxis(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and node.value is None) or (
        isinstance(node, (ast.Attribute, ast.Name))
        and getattr(node, "attr", getattr(node, "id", "")) == "newaxis"
    )
