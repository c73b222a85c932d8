"""Provenance decided from outside the kernel: what the notebook's source does, by its syntax.

The grader parses every code cell (IPython syntax turned into Python first) in its own process;
nothing the notebook does at run time can change this analysis. :func:`source_flags` flags, for
the instructor to review (flags never change a score):

- a graded function that is not defined by a plain ``def`` in a cell, or that is also bound
  another way (an import, an assignment, a decorator, ``global``): it may not be the student's
  code;
- any mention of ``advlab.course.graders``, where the reference answers live;
- the tools that could hide either from the kernel-side report: ``sys.modules``,
  ``importlib``, ``__import__``, ``exec``/``eval``/``compile``, ``ctypes``, ``gc``,
  ``builtins``, ``__code__``/``__globals__``/``__dict__``, ``setattr``/``delattr``/``vars``/
  ``globals``, audit and trace hooks, and assignments to attributes of imported modules
  (monkeypatching ``advlab``, ``torch`` or the harness).
"""

from __future__ import annotations

import ast
import threading

GRADERS = "advlab.course.graders"
REFLECTION_NAMES = {
    "__import__", "exec", "eval", "compile", "setattr", "delattr", "vars", "globals",
    "importlib", "ctypes", "gc", "builtins", "__builtins__",
}
REFLECTION_ATTRS = {
    "modules": "sys.modules", "__code__": "__code__", "__globals__": "__globals__",
    "__dict__": "__dict__", "addaudithook": "sys.addaudithook", "settrace": "sys.settrace",
    "setprofile": "sys.setprofile", "__closure__": "__closure__", "f_globals": "f_globals",
}


# CPython 3.11 keeps one AST-construction depth counter per interpreter, so two threads in
# ``ast.parse`` at once (``advlab grade --jobs N`` flags submissions in N threads) can raise
# "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905). One parse
# at a time costs nothing next to running a kernel.
_PARSE_LOCK = threading.Lock()


def _python(src: str) -> ast.Module | None:
    """The cell as a Python syntax tree (IPython magics transformed), None if it does not
    parse (such a cell raises SyntaxError in the kernel, so none of it runs). Thread-safe."""
    with _PARSE_LOCK:
        return _parse(src)


def _parse(src: str) -> ast.Module | None:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        src = TransformerManager().transform_cell(src)
    except Exception:
        pass
    try:
        return ast.parse(src)
    except (SyntaxError, ValueError):
        return None


def _targets(node: ast.AST) -> list[str]:
    """Names bound at the top level of a cell by a statement other than ``def``."""
    names: list[str] = []
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        names += [(a.asname or a.name).split(".")[0] for a in node.names]
    elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor,
                           ast.With, ast.AsyncWith, ast.Delete, ast.ClassDef)):
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                names.append(sub.id)
        if isinstance(node, ast.ClassDef):
            names.append(node.name)
    return names


def _nested_bindings(tree: ast.Module) -> set[str]:
    """Names rebound from inside functions through ``global``, and walrus targets."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            names.update(node.names)
        elif isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _imported_modules(trees: list[ast.Module]) -> set[str]:
    mods = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                mods.update(a.asname or a.name for a in node.names)
    return mods


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _function_flags(trees: list[tuple[int, ast.Module]], func: str) -> list[str]:
    defs, other, decorated = [], [], []
    for i, tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == func:
                defs.append(i)
                if node.decorator_list:
                    decorated.append(i)
            elif func in _targets(node):
                other.append(i)
        if func in _nested_bindings(tree):
            other.append(i)
    flags = []
    if not defs:
        flags.append(f"`{func}` is not defined by a `def` in a notebook cell")
    if other:
        cells = ", ".join(str(i + 1) for i in sorted(set(other)))
        flags.append(f"`{func}` is also bound by an import or assignment (code cell {cells})")
    if decorated:
        flags.append(f"`{func}` is decorated (code cell {decorated[0] + 1}): review the decorator")
    return flags


def _tool_uses(trees: list[tuple[int, ast.Module]], modules: set[str]) -> list[str]:
    uses: dict[str, int] = {}
    for i, tree in trees:
        for node in ast.walk(tree):
            hit = None
            if isinstance(node, ast.Name) and node.id in REFLECTION_NAMES:
                hit = node.id
            elif isinstance(node, ast.Attribute) and node.attr in REFLECTION_ATTRS:
                hit = REFLECTION_ATTRS[node.attr]
            elif isinstance(node, ast.alias) and node.name.split(".")[0] in REFLECTION_NAMES:
                hit = node.name.split(".")[0]
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [
                    node.target]
                for t in targets:
                    if isinstance(t, ast.Attribute) and _root_name(t) in modules:
                        hit = f"assigns to {_dotted(t)} (monkeypatching a module)"
            if hit and hit not in uses:
                uses[hit] = i
    return [f"{what} (code cell {i + 1})" for what, i in uses.items()]


def source_flags(cells: list[str], funcs: list[str]) -> list[str]:
    """Flags for review from the notebook's code cells alone (see the module docstring)."""
    trees = [(i, t) for i, src in enumerate(cells) if (t := _python(src)) is not None]
    flags = []
    text = "\n".join(cells)
    if GRADERS in text or "course import graders" in text or any(
        isinstance(n, ast.Attribute) and n.attr == "graders" for _, t in trees for n in ast.walk(t)
    ):
        flags.append("the source mentions advlab.course.graders (the grader's reference answers)")
    for func in funcs:
        flags += _function_flags(trees, func)
    tools = _tool_uses(trees, _imported_modules([t for _, t in trees]))
    if tools:
        flags.append(
            "the notebook uses tools that can change what the grading kernel reports: "
            + "; ".join(tools[:8])
        )
    return flags
