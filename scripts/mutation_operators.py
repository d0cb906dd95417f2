"""Mutation operators for scripts/mutation.py: where a source file can be mutated, and the mutated text.

A mutant is one small edit of one expression, of the kinds of bug that have escaped this project's tests
before (issue 23): a comparison off by one (`<` for `<=`), an operator or sign flipped, a number changed
(an axis, a window, a cutoff), `min` for `max` or `argmin` for `argmax` (ranking the wrong way), a keyword
argument dropped on its way to a callee, a transpose dropped, a boolean flipped.

Every mutant is found by walking the module's AST and is applied as a text edit of its node's source
segment (the rest of the file, comments included, stays byte for byte), so the mutated file is the
original with one expression replaced.  Not mutated: docstrings, type annotations, the messages of
`raise`/`assert`/warnings and logging (a changed message is not a changed behaviour), anything inside an
f-string (Python < 3.12 gives no positions there), and lines marked `# pragma: no mutate`.

Mutant ids are stable across unrelated edits: `path::qualname::operator::original->replacement#k`, k the
occurrence of that same edit inside that function.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass

NO_MUTATE = "pragma: no mutate"

COMPARE_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
}
BINOP_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Pow: ast.Mult, ast.Mod: ast.FloorDiv,
}
BOOLOP_SWAPS: dict[type, type] = {ast.And: ast.Or, ast.Or: ast.And}
# names whose call or attribute means "which end": a swap ranks or selects the wrong way
NAME_SWAPS = {
    "min": "max", "max": "min", "argmin": "argmax", "argmax": "argmin", "amin": "amax", "amax": "amin",
    "minimum": "maximum", "maximum": "minimum", "nanmin": "nanmax", "nanmax": "nanmin",
    "topk_smallest": "topk_largest",
}
# calls whose arguments are messages, not behaviour
MESSAGE_CALLS = {"print", "warn", "set_description", "set_postfix"}
MESSAGE_RECEIVERS = {"logger", "log", "logging", "warnings", "LOG"}
# keyword arguments that only label or describe (dropping one changes no number)
LABEL_KEYWORDS = {"desc", "file", "stacklevel", "flush", "unit", "leave", "disable", "mininterval",
                  "category", "help", "metavar"}

OPERATORS = ("compare", "binop", "augassign", "boolop", "not", "negate", "number", "bool", "name_swap",
             "drop_keyword", "drop_transpose")


@dataclass(frozen=True)
class Mutant:
    """One edit: replace source[start:end] (character offsets into the file) by `replacement`."""

    path: str          # file, relative to the project root, '/'-separated
    qualname: str      # enclosing function or class ('<module>' at module level)
    function: str      # outermost enclosing def at module or class level ('' when none)
    lineno: int        # first and last line of the edited node (1-based, inclusive)
    end_lineno: int
    start: int
    end: int
    operator: str
    original: str
    replacement: str
    occurrence: int = 0

    @property
    def id(self) -> str:
        return f"{self.path}::{self.qualname}::{self.operator}::{self.original}->{self.replacement}#{self.occurrence}"

    def apply(self, source: str) -> str:
        return source[: self.start] + self.replacement + source[self.end:]


def _line_offsets(source: str) -> list[int]:
    offsets, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line.encode("utf-8"))
        offsets.append(total)
    return offsets


class _Finder(ast.NodeVisitor):
    """Collects (node, operator, mutated node or replacement text) inside one module."""

    def __init__(self, source: str, path: str):
        self.source = source
        self.path = path
        self.lines = source.splitlines()
        self.offsets = _line_offsets(source)
        self.encoded = source.encode("utf-8")
        self.scope: list[tuple[str, bool]] = []   # (name, is a def) from the module down
        self.outer: list[str] = []   # the def at module/class level around us (patchable by a code swap)
        self.in_def = 0
        self.skip = 0
        self.found: list[Mutant] = []

    # -- positions -----------------------------------------------------------------------------
    def _span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offsets[node.lineno - 1] + node.col_offset
        end = self.offsets[node.end_lineno - 1] + node.end_col_offset
        # byte offsets -> character offsets
        return len(self.encoded[:start].decode("utf-8")), len(self.encoded[:end].decode("utf-8"))

    def _pragma(self, node: ast.AST) -> bool:
        return any(NO_MUTATE in self.lines[i - 1] for i in range(node.lineno, node.end_lineno + 1))

    def _add(self, node: ast.AST, operator: str, replacement: str) -> None:
        if self.skip or self._pragma(node):
            return
        start, end = self._span(node)
        original = self.source[start:end]
        if original == replacement:
            return
        self.found.append(Mutant(
            path=self.path, qualname=self._qualname(),
            function=self.outer[0] if self.outer else "", lineno=node.lineno, end_lineno=node.end_lineno,
            start=start, end=end, operator=operator, original=" ".join(original.split()),
            replacement=replacement))

    def _qualname(self) -> str:
        """Python's __qualname__ of the enclosing function or class ('<module>' at the top)."""
        parts: list[str] = []
        for i, (name, is_def) in enumerate(self.scope):
            parts.append(name)
            if is_def and i < len(self.scope) - 1:
                parts.append("<locals>")
        return ".".join(parts) or "<module>"

    def _add_node(self, node: ast.AST, operator: str, mutated: ast.AST) -> None:
        self._add(node, operator, ast.unparse(mutated))

    # -- scopes and skipped regions -------------------------------------------------------------
    def _visit_scope(self, node: ast.AST, name: str, is_def: bool) -> None:
        # decorators, defaults and bases run in the enclosing scope, before the new one exists
        for decorator in node.decorator_list:
            self.visit(decorator)
        if is_def:
            for default in [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]:
                self.visit(default)
        else:
            for base in [*node.bases, *[k.value for k in node.keywords]]:
                self.visit(base)
        self.scope.append((name, is_def))
        outer_here = is_def and not self.in_def and not self.outer   # a def of the module or of its classes
        if outer_here:
            self.outer.append(self._qualname())
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]   # docstring
        self.in_def += is_def
        for statement in body:
            self.visit(statement)
        self.in_def -= is_def
        self.scope.pop()
        if outer_here:
            self.outer.pop()

    def visit_FunctionDef(self, node):
        self._visit_scope(node, node.name, True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._visit_scope(node, node.name, False)

    def visit_Lambda(self, node):
        self.scope.append(("<lambda>", True))
        self.visit(node.body)
        self.scope.pop()

    def _skipped(self, *nodes):
        self.skip += 1
        for n in nodes:
            if n is not None:
                self.visit(n)
        self.skip -= 1

    def visit_JoinedStr(self, node):
        pass   # no reliable positions inside f-strings before Python 3.12

    def visit_Raise(self, node):
        self._skipped(node.exc, node.cause)

    def visit_Assert(self, node):
        self.visit(node.test)
        self._skipped(node.msg)

    def visit_AnnAssign(self, node):
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_arg(self, node):
        pass   # annotations

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return   # a bare string: a comment-like docstring
        self.visit(node.value)

    def visit_If(self, node):
        test = node.test
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            return
        self.generic_visit(node)

    def visit_Assign(self, node):
        if any(isinstance(t, ast.Name) and t.id in ("__all__", "__slots__") for t in node.targets):
            return
        self.generic_visit(node)

    # -- operators ------------------------------------------------------------------------------
    def visit_Compare(self, node):
        for i, op in enumerate(node.ops):
            swap = COMPARE_SWAPS.get(type(op))
            if swap is not None:
                ops = list(node.ops)
                ops[i] = swap()
                self._add_node(node, "compare", ast.Compare(left=node.left, ops=ops, comparators=node.comparators))
        self.generic_visit(node)

    def visit_BinOp(self, node):
        swap = BINOP_SWAPS.get(type(node.op))
        if swap is not None and not (isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant)
                                     and isinstance(node.left.value, str)):   # '%' string formatting
            self._add_node(node, "binop", ast.BinOp(left=node.left, op=swap(), right=node.right))
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        swap = BINOP_SWAPS.get(type(node.op))
        if swap is not None:
            self._add_node(node, "augassign", ast.AugAssign(target=node.target, op=swap(), value=node.value))
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        self._add_node(node, "boolop", ast.BoolOp(op=BOOLOP_SWAPS[type(node.op)](), values=node.values))
        self.generic_visit(node)

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.Not):
            self._add(node, "not", ast.unparse(node.operand))
        elif isinstance(node.op, ast.USub) and not isinstance(node.operand, ast.Constant):
            self._add(node, "negate", ast.unparse(node.operand))
        self.generic_visit(node)

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, bool):
            self._add(node, "bool", repr(not value))
        elif isinstance(value, int):
            self._add(node, "number", repr(value + 1))
        elif isinstance(value, float):
            self._add(node, "number", repr(value * 2 if value else 1.0))

    def visit_Name(self, node):
        if node.id in NAME_SWAPS and isinstance(node.ctx, ast.Load):
            self._add(node, "name_swap", NAME_SWAPS[node.id])

    def visit_Attribute(self, node):
        if isinstance(node.ctx, ast.Load):
            if node.attr in NAME_SWAPS:
                self._add_node(node, "name_swap", ast.Attribute(value=node.value, attr=NAME_SWAPS[node.attr],
                                                               ctx=ast.Load()))
            elif node.attr in ("T", "mT"):
                self._add(node, "drop_transpose", ast.unparse(node.value))
        self.visit(node.value)

    def visit_Call(self, node):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in MESSAGE_CALLS or (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                                     and func.value.id in MESSAGE_RECEIVERS):
            self.visit(func)
            self._skipped(*node.args, *[k.value for k in node.keywords])
            return
        if name == "t" and not node.args and not node.keywords and isinstance(func, ast.Attribute):
            self._add(node, "drop_transpose", ast.unparse(func.value))
        for i, keyword in enumerate(node.keywords):
            if keyword.arg is not None and keyword.arg not in LABEL_KEYWORDS:
                kept = node.keywords[:i] + node.keywords[i + 1:]
                self._add_node(node, "drop_keyword", ast.Call(func=func, args=node.args, keywords=kept))
        self.generic_visit(node)


def find_mutants(source: str, path: str) -> list[Mutant]:
    """Every mutant of one module's source, in file order, each with its stable occurrence index."""
    finder = _Finder(source, path)
    finder.visit(ast.parse(source))
    seen: dict[tuple, int] = defaultdict(int)
    out = []
    for m in sorted(finder.found, key=lambda m: (m.start, m.end, m.operator, m.replacement)):
        key = (m.qualname, m.operator, m.original, m.replacement)
        out.append(Mutant(**{**m.__dict__, "occurrence": seen[key]}))
        seen[key] += 1
    return out
