"""Read values out of Python source without running it: literals, constants, imported names.

:class:`StaticReader` is the base of the training-source scanner
(:mod:`modelkb.collector.source_analysis`). Visiting a module in source order, it tracks import
aliases (``np`` -> ``numpy``, ``load_digits`` -> ``sklearn.datasets.load_digits``) and simple
constants (``SCALE = 255.0``; ``MEAN, STD = (0.5,), (0.5,)``) so later expressions resolve.
Everything here is best effort and never executes code: what cannot be resolved stays unresolved.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

SOURCE_CHARS = 200
"""Longest source segment kept in a record."""

_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


class StaticReader(ast.NodeVisitor):
    """An ``ast`` visitor that knows the import aliases and constants seen so far.

    Attributes:
        text: The module source.
        aliases: Local name -> dotted name it was imported as.
        constants: Name -> JSON-able literal value of its last simple assignment.
        frameworks: Top-level packages the module imports (``{"numpy", "keras"}``).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.aliases: dict[str, str] = {}
        self.constants: dict[str, Any] = {}
        self.frameworks: set[str] = set()

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            self.aliases[alias.asname or top] = alias.name if alias.asname else top
            self.frameworks.add(top)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self.frameworks.add(module.split(".")[0])
        for alias in node.names:
            if alias.name != "*":
                full = f"{module}.{alias.name}" if module else alias.name
                self.aliases[alias.asname or alias.name] = full

    def remember(self, target: ast.AST, value: ast.AST) -> None:
        """Record ``target = value`` as a constant when the value is a literal, else forget it."""
        if isinstance(target, ast.Name):
            ok, literal = self.value(value)
            if ok:
                self.constants[target.id] = literal
            else:
                self.constants.pop(target.id, None)

    def segment(self, node: ast.AST) -> str:
        """The exact source of ``node``, cut to :data:`SOURCE_CHARS` characters."""
        return (ast.get_source_segment(self.text, node) or "")[:SOURCE_CHARS]

    def dotted(self, node: ast.AST) -> str | None:
        """``self.x_train`` -> ``"self.x_train"``; ``x[0]`` -> ``"x"``; ``None`` for other nodes."""
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else node.attr
        if isinstance(node, ast.Subscript):
            return self.dotted(node.value)
        return None

    def qualname(self, node: ast.AST) -> str | None:
        """Fully qualified dotted name through imports: ``np.load`` -> ``"numpy.load"``."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(self.aliases.get(node.id, node.id))
        return ".".join(reversed(parts))

    def value(self, node: ast.AST) -> tuple[bool, Any]:
        """``(True, value)`` for literals, known constants and arithmetic on them.

        Tuples come back as lists (JSON); anything else gives ``(False, None)``.
        """
        try:
            return True, jsonable(ast.literal_eval(node))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        if isinstance(node, ast.Name) and node.id in self.constants:
            return True, self.constants[node.id]
        if isinstance(node, (ast.Tuple, ast.List)):
            values = [self.value(e) for e in node.elts]
            if all(ok for ok, _ in values):
                return True, [v for _, v in values]
            return False, None
        number = self.number(node)
        return (True, number) if number is not None else (False, None)

    def number(self, node: ast.AST) -> float | None:
        """The number an expression of literals and constants gives (``1. / 255``), or ``None``."""
        if isinstance(node, ast.Constant):
            return _real(node.value)
        if isinstance(node, ast.Name):
            return _real(self.constants.get(node.id))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.number(node.operand)
            return None if value is None else (-value if isinstance(node.op, ast.USub) else value)
        if (
            isinstance(node, ast.Call)
            and len(node.args) == 1
            and not node.keywords
            and self.qualname(node.func) in ("float", "int")
        ):
            return self.number(node.args[0])
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            left, right = self.number(node.left), self.number(node.right)
            if left is not None and right is not None:
                try:
                    return _real(_ARITHMETIC[type(node.op)](left, right))
                except (ZeroDivisionError, OverflowError):
                    return None
        return None

    def arg(self, node: ast.AST) -> Any:
        """An argument's literal value when it has one, else its source text."""
        ok, value = self.value(node)
        return value if ok else self.segment(node)

    def kwargs(self, node: ast.Call) -> dict[str, Any]:
        """Keyword arguments of a call as :meth:`arg` values (``**spread`` under ``"**"``)."""
        return {k.arg or "**": self.arg(k.value) for k in node.keywords}

    def param(self, node: ast.Call, index: int | None, name: str, default: Any = None) -> Any:
        """A call's argument given by keyword ``name`` or at position ``index``."""
        for kw in node.keywords:
            if kw.arg == name:
                return self.arg(kw.value)
        if index is not None and len(node.args) > index:
            return self.arg(node.args[index])
        return default


def jsonable(value: Any) -> Any:
    """Literal values as JSON types: tuples become lists; sets, bytes and complex their ``repr``."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset, complex, bytes)):
        return repr(value)
    return value


def _real(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None
