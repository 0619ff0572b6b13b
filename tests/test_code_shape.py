"""The shape of the code (issue 21): short functions, short argument lists, no import cycle between two files,
no public function named like its own module.

Measured with :mod:`ast` on the source files, so these are facts about the code, not conventions:

- every function or method in ``optim/``, ``models/`` and ``diagnostics/`` (and the two trainers,
  ``vae/training.py``'s ``train`` and ``compression/lossy/train.py``'s ``_train``) spans at most
  ``MAX_LINES`` lines, from its ``def`` to its last line, docstring included, and takes at most ``MAX_PARAMS``
  parameters (``self``/``cls`` not counted; ``*args`` and ``**kwargs`` count one each);
- no two modules of ``varinf`` import each other, counting imports inside functions (lazy imports) and
  ``from . import x``; imports under ``if TYPE_CHECKING:`` are not executed and are not counted;
- no module defines a public function with the module's own name (``varinf.optim.step`` used to be both), except
  the console-script entry point ``main`` of ``cli/main.py`` (``varinf.cli`` does not re-export it, so nothing
  is shadowed, and installed ``varinf`` scripts import it by that name).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "varinf"
MAX_LINES = 60
MAX_PARAMS = 8
CHECKED_DIRS = ("optim", "models", "diagnostics")
CHECKED_FUNCTIONS = {"vae/training.py": ("train",), "compression/lossy/train.py": ("_train",)}
# Known exceptions, each with its reason (and its count, so it cannot grow unnoticed):
EXEMPT = {
    # the public constructor of both model forms (log joint; prior + likelihood over data) with its optional
    # hooks, plate settings and ArviZ labels: fewer parameters would mean an API change for every model a user
    # has written (e.g. data=Plate(rows, distributed=..., max_memory=...), labels=(dims, coords))
    "models/model.py Model.__init__ parameters": 13,
}


def _functions(tree: ast.AST):
    """Every (qualified name, node) of functions and methods in a module."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((f"{prefix}{child.name}", child))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


def _num_params(fn: ast.FunctionDef) -> int:
    a = fn.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return len(names) + (a.vararg is not None) + (a.kwarg is not None)


def _checked():
    for d in CHECKED_DIRS:
        for path in sorted((SRC / d).rglob("*.py")):
            yield path, None
    for rel, names in CHECKED_FUNCTIONS.items():
        yield SRC / rel, names


def _shape_violations():
    bad = []
    for path, only in _checked():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, fn in _functions(tree):
            if only is not None and name not in only:
                continue
            lines = fn.end_lineno - fn.lineno + 1
            params = _num_params(fn)
            where = f"{path.relative_to(SRC)}:{fn.lineno} {name}"
            key = f"{path.relative_to(SRC)} {name}"
            if lines > EXEMPT.get(f"{key} lines", MAX_LINES):
                bad.append(f"{where}: {lines} lines > {MAX_LINES}")
            if params > EXEMPT.get(f"{key} parameters", MAX_PARAMS):
                bad.append(f"{where}: {params} parameters > {MAX_PARAMS}")
    return bad


def test_functions_are_short_and_take_few_parameters():
    bad = _shape_violations()
    assert not bad, "\n".join(bad)


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The varinf modules ``path`` imports (anywhere in the file, except under ``if TYPE_CHECKING``)."""
    name = _module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for block in ast.walk(tree) if _type_checking_block(block) for n in ast.walk(block)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, is_package, node.level, node.module)
            for a in node.names:  # ``from . import x`` imports the submodule x
                sub = f"{target}.{a.name}" if target else a.name
                if sub in modules:
                    out.add(sub)
                elif target in modules:
                    out.add(target)
    out.discard(name)
    return out


def test_no_two_modules_import_each_other():
    files = sorted(SRC.rglob("*.py"))
    modules = {_module_name(p) for p in files}
    graph = {_module_name(p): _imports(p, modules) for p in files}
    cycles = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps if a in graph.get(b, ())})
    assert not cycles, "modules importing each other: " + "; ".join(f"{a} <-> {b}" for a, b in cycles)


def test_no_public_function_shares_its_module_name():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            entry_point = node.name == "main" if isinstance(node, ast.FunctionDef) else False
            if (isinstance(node, ast.FunctionDef) and node.name == path.stem and not node.name.startswith("_")
                    and not entry_point):  # fmt: skip
                bad.append(f"{path.relative_to(SRC)}: def {node.name}")
    assert not bad, "functions named like their module: " + ", ".join(bad)


@pytest.mark.parametrize("source,expected", [("def f(a, b, *c, d, **e):\n    pass\n", 5),
                                             ("class A:\n    def m(self, x):\n        pass\n", 1)])  # fmt: skip
def test_parameter_count_of_the_checker(source, expected):
    (_, fn), *_ = _functions(ast.parse(source))
    assert _num_params(fn) == expected
