"""A small safe expression evaluator over variables (parsed with `ast`, never `eval`)."""

import ast
import json
import operator
import re

from layra.errors import ValidationError

from . import expression_caps as caps
from .expression_caps import MAX_POW, MAX_STR  # noqa: F401 - re-exported: the caps live in expression_caps


class ExpressionError(ValidationError):
    code = "expression_error"


def _lower(value):
    return str(value).lower()


def _upper(value):
    return str(value).upper()


def _safe_range(*args):
    r = range(*[int(a) for a in args])
    if len(r) > 10_000:
        raise ExpressionError("range() is limited to 10000 items.")
    return list(r)


SAFE_FUNCTIONS = {
    "len": len, "str": str, "int": int, "float": float, "bool": bool, "min": min, "max": max, "abs": abs,
    "round": round, "sum": sum, "sorted": sorted, "lower": _lower, "upper": _upper, "range": _safe_range,
    "list": list,
}

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
_UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}


def _check_size(value):
    try:
        return caps.check(value)
    except caps.TooLarge as exc:
        raise ExpressionError(exc.message) from None


class _Evaluator:
    def __init__(self, variables: dict):
        self.variables = variables

    def visit(self, node):
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise ExpressionError(f"'{type(node).__name__}' is not allowed in expressions.")
        return method(node)

    def visit_Expression(self, node):
        return self.visit(node.body)

    def visit_Constant(self, node):
        return node.value

    def visit_Name(self, node):
        name = node.id
        if name.startswith("_"):
            raise ExpressionError(f"Name '{name}' is not allowed.")
        if name in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[name]
        if name not in self.variables:
            raise ExpressionError(f"Unknown variable '{name}'.")
        return self.variables[name]

    def visit_Attribute(self, node):
        # `var.key` is dict-key sugar only; we never call getattr on a Python object.
        if node.attr.startswith("_"):
            raise ExpressionError(f"Attribute '{node.attr}' is not allowed.")
        base = self.visit(node.value)
        if not isinstance(base, dict):
            raise ExpressionError(f"Attribute access '.{node.attr}' is not allowed (only dict keys).")
        if node.attr not in base:
            raise ExpressionError(f"Key '{node.attr}' not found.")
        return base[node.attr]

    def visit_Subscript(self, node):
        base = self.visit(node.value)
        if isinstance(node.slice, ast.Slice):
            s = node.slice
            parts = [self.visit(p) if p is not None else None for p in (s.lower, s.upper, s.step)]
            return base[slice(*parts)]
        key = self.visit(node.slice)
        if isinstance(key, str) and key.startswith("_"):
            raise ExpressionError(f"Key '{key}' is not allowed.")
        if not isinstance(base, dict | list | tuple | str):
            raise ExpressionError("Subscript is only allowed on dicts, lists and strings.")
        try:
            return base[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise ExpressionError(f"Subscript failed: {exc!r}.") from None

    def visit_List(self, node):
        return _check_size([self.visit(e) for e in node.elts])

    def visit_Tuple(self, node):
        return _check_size(tuple(self.visit(e) for e in node.elts))

    def visit_Dict(self, node):
        return _check_size({self.visit(k): self.visit(v) for k, v in zip(node.keys, node.values, strict=True)})

    def visit_BoolOp(self, node):
        if isinstance(node.op, ast.And):
            value = True
            for v in node.values:
                value = self.visit(v)
                if not value:
                    return value
            return value
        value = False
        for v in node.values:
            value = self.visit(v)
            if value:
                return value
        return value

    def visit_BinOp(self, node):
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise ExpressionError(f"Operator '{type(node.op).__name__}' is not allowed.")
        left, right = self.visit(node.left), self.visit(node.right)
        try:
            caps.check_operands(node.op, left, right)
        except caps.TooLarge as exc:
            raise ExpressionError(exc.message) from None
        try:
            return _check_size(op(left, right))
        except (TypeError, ZeroDivisionError, ValueError, OverflowError) as exc:
            raise ExpressionError(f"Arithmetic failed: {exc}.") from None

    def visit_UnaryOp(self, node):
        op = _UNARY.get(type(node.op))
        if op is None:
            raise ExpressionError("Operator not allowed.")
        try:
            return _check_size(op(self.visit(node.operand)))
        except TypeError as exc:
            raise ExpressionError(f"Operator failed: {exc}.") from None

    def visit_Compare(self, node):
        left = self.visit(node.left)
        for op_node, comp in zip(node.ops, node.comparators, strict=True):
            right = self.visit(comp)
            try:
                if not _CMPOPS[type(op_node)](left, right):
                    return False
            except TypeError as exc:
                raise ExpressionError(f"Comparison failed: {exc}.") from None
            left = right
        return True

    def visit_IfExp(self, node):
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node):
        if not isinstance(node.func, ast.Name) or node.func.id not in SAFE_FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ExpressionError(f"Call to '{name}' is not allowed.")
        if node.keywords:
            raise ExpressionError("Keyword arguments are not allowed.")
        args = [self.visit(a) for a in node.args]
        try:
            return _check_size(SAFE_FUNCTIONS[node.func.id](*args))
        except ExpressionError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise ExpressionError(f"{node.func.id}() failed: {exc}.") from None


def parse(expression: str) -> ast.Expression:
    if not isinstance(expression, str):
        raise ExpressionError("Expression must be a string.")
    if len(expression) > 2000:
        raise ExpressionError("Expression is too long.")
    try:
        return ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"Invalid expression: {exc.msg}.") from None


def evaluate(expression: str, variables: dict):
    return _Evaluator(variables).visit(parse(expression))


def check(expression: str) -> None:
    """Static check: parse and reject disallowed node types without evaluating."""
    tree = parse(expression)
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
                      | ast.NamedExpr | ast.Await | ast.Yield | ast.Starred):
            raise ExpressionError(f"'{type(node).__name__}' is not allowed in expressions.")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(f"Attribute '{node.attr}' is not allowed.")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ExpressionError(f"Name '{node.id}' is not allowed.")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in SAFE_FUNCTIONS):
            raise ExpressionError(f"Call to '{ast.unparse(node.func)}' is not allowed.")


_TEMPLATE = re.compile(r"\{\{(.+?)\}\}", re.S)


def render(template: str, variables: dict) -> str:
    """Render "{{ expr }}" placeholders with the safe evaluator."""
    if not isinstance(template, str):
        return template

    def _sub(match):
        value = evaluate(match.group(1), variables)
        if isinstance(value, dict | list):
            return json.dumps(value, default=str)
        return "" if value is None else str(value)

    out = _TEMPLATE.sub(_sub, template)
    if len(out) > MAX_STR * 10:
        raise ExpressionError("Rendered template is too large.")
    return out


def check_template(template: str) -> None:
    for match in _TEMPLATE.finditer(template or ""):
        check(match.group(1))
