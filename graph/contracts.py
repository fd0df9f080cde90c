"""Pipeline contracts: boolean expressions over task configs, checked before a pipeline graph is built.

A contract such as ``isr.do_flat == calibrate.do_flat or not isr.do_flat`` is parsed with `ast` and
interpreted over a small whitelist of constructs; nothing is ever passed to ``eval`` or ``exec``.
Names at the root of an attribute chain are task labels and stand for that task's config; attributes
are config fields (sub-configs and sub-task fields included: ``isr.background.bin_size``,
``calibrate.detection.name``).
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from .config import SubtaskValue
from .errors import ContractError

__all__ = ["ALLOWED_FUNCTIONS", "Contract", "check_contracts"]


ALLOWED_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "all": all,
    "any": any,
    "sum": sum,
}
"""The only functions a contract may call (positional arguments only)."""

_COMPARISONS: Mapping[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

_ARITHMETIC: Mapping[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


@dataclass(frozen=True)
class Contract:
    """One pipeline contract: an expression that must be true for the pipeline's configs.

    Build with `Contract.parse`, which checks the syntax and the allowed constructs at once.
    """

    expression: str
    """The expression text as written in the pipeline file."""
    msg: str | None = None
    """Optional explanation shown when the contract fails."""
    source: str = ""
    """Where the contract was declared (a file name), for error messages."""
    labels: frozenset[str] = frozenset()
    """Task labels the expression refers to (roots of attribute chains and bare names)."""

    @classmethod
    def parse(cls, expression: str, msg: str | None = None, source: str = "") -> Contract:
        """Parse ``expression``; `ContractError` for bad syntax or a construct outside the whitelist."""
        if not isinstance(expression, str) or not expression.strip():
            raise ContractError(f"{_where(source)}contract must be a non-empty string, got {expression!r}.")
        if msg is not None and not isinstance(msg, str):
            raise ContractError(
                f"{_where(source)}contract {expression!r}: msg must be a string, got {msg!r}."
            )
        tree = _parse(expression, source)
        labels = frozenset(_check_tree(tree, expression, source))
        return cls(expression=expression, msg=msg, source=source, labels=labels)

    def evaluate(self, configs: Mapping[str, Any]) -> bool:
        """Whether the contract holds for ``configs`` (task label -> config).

        Raises `ContractError` if the expression names an unknown label or field, or cannot be
        evaluated (e.g. comparing incompatible types).
        """
        value, _ = self._evaluate(configs)
        return value

    def check(self, configs: Mapping[str, Any]) -> None:
        """Raise `ContractError` showing the expression, its message and the values it read if false."""
        value, seen = self._evaluate(configs)
        if not value:
            raise ContractError(self._failure_message(seen))

    def _evaluate(self, configs: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        tree = _parse(self.expression, self.source)
        interpreter = _Interpreter(configs, self.expression, self.source)
        try:
            value = interpreter.visit(tree.body)
        except ContractError:
            raise
        except Exception as err:  # e.g. TypeError comparing str and int: a user error in the contract.
            raise ContractError(
                f"{_where(self.source)}contract {self.expression!r} cannot be evaluated: "
                f"{type(err).__name__}: {err}"
            ) from err
        return bool(value), interpreter.seen

    def _failure_message(self, seen: Mapping[str, Any]) -> str:
        text = f"Contract failed: {self.expression}"
        if self.msg:
            text += f" ({self.msg})"
        if seen:
            text += "; values: " + ", ".join(f"{name}={value!r}" for name, value in seen.items())
        if self.source:
            text += f"; declared in {self.source}"
        return text


def check_contracts(contracts: Iterable[Contract], configs: Mapping[str, Any]) -> None:
    """Check every contract; one `ContractError` listing every failure (one per line)."""
    failures = []
    for contract in contracts:
        value, seen = contract._evaluate(configs)
        if not value:
            failures.append(contract._failure_message(seen))
    if failures:
        raise ContractError("\n".join(failures))


def _where(source: str) -> str:
    return f"{source}: " if source else ""


def _parse(expression: str, source: str) -> ast.Expression:
    try:
        return ast.parse(expression.strip(), mode="eval")
    except SyntaxError as err:
        raise ContractError(
            f"{_where(source)}contract {expression!r} is not a valid expression: {err.msg}."
        ) from None


def _construct_name(node: ast.AST) -> str:
    descriptions = {
        ast.Lambda: "lambda",
        ast.ListComp: "list comprehension",
        ast.SetComp: "set comprehension",
        ast.DictComp: "dict comprehension",
        ast.GeneratorExp: "generator expression",
        ast.NamedExpr: "assignment expression (:=)",
        ast.JoinedStr: "f-string",
        ast.Await: "await",
        ast.Starred: "starred expression",
        ast.Slice: "slice",
    }
    for node_type, text in descriptions.items():
        if isinstance(node, node_type):
            return text
    if isinstance(node, ast.Call):
        return f"a call to {ast.unparse(node.func)}()"
    if isinstance(node, ast.BinOp):
        return f"operator {type(node.op).__name__}"
    if isinstance(node, ast.UnaryOp):
        return f"unary operator {type(node.op).__name__}"
    return type(node).__name__


def _check_tree(tree: ast.Expression, expression: str, source: str) -> set[str]:
    """Check every node is allowed; return the root names (task labels) the expression uses."""
    labels: set[str] = set()

    def refuse(node: ast.AST, why: str = "") -> ContractError:
        return ContractError(
            f"{_where(source)}contract {expression!r} uses {_construct_name(node)}, which contracts do not "
            f"allow{why}; allowed: and/or/not, comparisons (incl. in, is None), + - * / // %, "
            f"label.field attribute chains, constants, lists, tuples, subscripts, "
            f"{'/'.join(ALLOWED_FUNCTIONS)}() and x if c else y."
        )

    pending: list[ast.AST] = [tree.body]
    while pending:
        node = pending.pop()
        match node:
            case ast.BoolOp():
                pending.extend(node.values)
            case ast.UnaryOp(op=ast.Not() | ast.USub() | ast.UAdd()):
                pending.append(node.operand)
            case ast.BinOp() if type(node.op) in _ARITHMETIC:
                pending.extend((node.left, node.right))
            case ast.Compare():
                pending.append(node.left)
                pending.extend(node.comparators)
            case ast.IfExp():
                pending.extend((node.test, node.body, node.orelse))
            case ast.Constant():
                pass
            case ast.List() | ast.Tuple() | ast.Set():
                pending.extend(node.elts)
            case ast.Dict():
                if any(key is None for key in node.keys):
                    raise refuse(node, " (no ** unpacking)")
                pending.extend(key for key in node.keys if key is not None)
                pending.extend(node.values)
            case ast.Subscript():
                if isinstance(node.slice, ast.Slice):
                    raise refuse(node.slice)
                pending.extend((node.value, node.slice))
            case ast.Attribute():
                if node.attr.startswith("_"):
                    raise refuse(node, f" (private attribute {node.attr!r})")
                pending.append(node.value)
            case ast.Name():
                if node.id not in ALLOWED_FUNCTIONS:
                    labels.add(node.id)
            case ast.Call():
                if not isinstance(node.func, ast.Name) or node.func.id not in ALLOWED_FUNCTIONS:
                    raise refuse(node, " (calls other than the functions listed)")
                if node.keywords:
                    raise refuse(node, " (keyword arguments)")
                for arg in node.args:
                    if isinstance(arg, ast.Starred):
                        raise refuse(arg)
                pending.extend(node.args)
            case _:
                raise refuse(node)
    return labels


class _Interpreter:
    """Evaluates a checked contract tree over configs; records the config values it reads."""

    def __init__(self, configs: Mapping[str, Any], expression: str, source: str) -> None:
        self._configs = configs
        self._expression = expression
        self._source = source
        self.seen: dict[str, Any] = {}

    def _error(self, text: str) -> ContractError:
        return ContractError(f"{_where(self._source)}contract {self._expression!r}: {text}")

    def visit(self, node: ast.AST) -> Any:
        match node:
            case ast.BoolOp(op=ast.And()):
                result: Any = True
                for value_node in node.values:
                    result = self.visit(value_node)
                    if not result:
                        return result
                return result
            case ast.BoolOp():
                result = False
                for value_node in node.values:
                    result = self.visit(value_node)
                    if result:
                        return result
                return result
            case ast.UnaryOp(op=ast.Not()):
                return not self.visit(node.operand)
            case ast.UnaryOp(op=ast.USub()):
                return -self._number(self.visit(node.operand), node)
            case ast.UnaryOp():
                return +self._number(self.visit(node.operand), node)
            case ast.BinOp():
                left, right = self.visit(node.left), self.visit(node.right)
                if (
                    isinstance(node.op, ast.Add)
                    and type(left) is type(right)
                    and isinstance(left, str | list)
                ):
                    return left + right
                return _ARITHMETIC[type(node.op)](self._number(left, node), self._number(right, node))
            case ast.Compare():
                left = self.visit(node.left)
                for op, comparator in zip(node.ops, node.comparators, strict=True):
                    right = self.visit(comparator)
                    if not _COMPARISONS[type(op)](left, right):
                        return False
                    left = right
                return True
            case ast.IfExp():
                return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)
            case ast.Constant():
                return node.value
            case ast.List():
                return [self.visit(element) for element in node.elts]
            case ast.Tuple():
                return tuple(self.visit(element) for element in node.elts)
            case ast.Set():
                return {self.visit(element) for element in node.elts}
            case ast.Dict():
                return {
                    self.visit(k): self.visit(v) for k, v in zip(node.keys, node.values, strict=True) if k
                }
            case ast.Subscript():
                container, index = self.visit(node.value), self.visit(node.slice)
                if not isinstance(container, list | tuple | dict | str):
                    raise self._error(f"cannot subscript a {type(container).__name__} value.")
                try:
                    return container[index]
                except (KeyError, IndexError, TypeError) as err:
                    raise self._error(f"{ast.unparse(node)}: no item {index!r} ({err}).") from None
            case ast.Attribute():
                return self._attribute(node)
            case ast.Name():
                return self._root(node.id)
            case ast.Call():
                name = node.func.id if isinstance(node.func, ast.Name) else ""
                if name not in ALLOWED_FUNCTIONS:
                    raise self._error(f"calls other than {'/'.join(ALLOWED_FUNCTIONS)}() are not allowed.")
                return ALLOWED_FUNCTIONS[name](*(self.visit(arg) for arg in node.args))
        raise self._error(f"unsupported construct {_construct_name(node)}.")  # pragma: no cover

    def _number(self, value: Any, node: ast.AST) -> Any:
        if isinstance(value, bool | int | float):
            return value
        raise self._error(f"{ast.unparse(node)}: arithmetic needs numbers, got {value!r}.")

    def _root(self, name: str) -> Any:
        if name in ALLOWED_FUNCTIONS:
            raise self._error(f"function {name!r} must be called.")
        try:
            return self._configs[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._configs), n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else "."
            raise self._error(
                f"{name!r} is not a task label of the pipeline (labels: {', '.join(self._configs)}){hint}"
            ) from None

    def _attribute(self, node: ast.Attribute) -> Any:
        owner = self.visit(node.value)
        if isinstance(owner, SubtaskValue):
            # A sub-task field: its selector (``target`` import path, implementation ``name``) or its config.
            selector = _selector(owner, node.attr)
            if selector is not None:
                self.seen[ast.unparse(node)] = selector
                return selector
            owner = owner.active
        if not isinstance(owner, pydantic.BaseModel):
            raise self._error(
                f"{ast.unparse(node)}: {ast.unparse(node.value)} is a {type(owner).__name__} value, "
                "not a config; use [...] for list or dict items."
            )
        fields = list(type(owner).model_fields) + list(type(owner).model_computed_fields)
        if node.attr not in fields:
            close = difflib.get_close_matches(node.attr, fields, n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else "."
            raise self._error(f"{ast.unparse(node.value)} has no config field {node.attr!r}{hint}")
        value = getattr(owner, node.attr)
        if not isinstance(value, pydantic.BaseModel | SubtaskValue):
            self.seen[ast.unparse(node)] = value
        return value


def _selector(value: SubtaskValue, attr: str) -> str | None:
    """``target`` as an import path, or the implementation name of a choice; None for config fields."""
    if attr == "target":
        return f"{value.target.__module__}.{value.target.__qualname__}"
    if attr == value.selector_keys[0]:
        return value.selector_value
    return None
