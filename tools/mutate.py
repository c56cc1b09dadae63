"""A small mutation check: plant one bug at a time in a module, run its tests, count the catches.

Usage (from the repository root)::

    python tools/mutate.py auroradask/analysis/_events.py tests/analysis/test_edges.py ...

Why our own and not mutmut or cosmic-ray: mutmut 3 installs, but on this package its forked
children re-ran the heavy dask/xarray test files for every mutant (about 45 s each on a
shared 2-core machine, 544 mutants for one module), and a timeout on the second mutant. This
runner keeps the same idea (import once, fork per mutant) with a smaller set of operators,
chosen for the bugs that give a wrong number without an error:

- comparisons: ``<`` / ``<=``, ``>`` / ``>=``, ``==`` / ``!=``, ``is`` / ``is not``,
  ``in`` / ``not in`` (thresholds, slot boundaries);
- arithmetic: ``+`` / ``-``, ``*`` / ``/``, ``//`` -> ``/``, ``&`` / ``|`` (numpy masks),
  and the same in ``+=``, ``-=``, ...;
- boolean: ``and`` / ``or``; ``not x`` and ``~x`` -> ``x``;
- integer constants: ``n`` -> ``n + 1`` (off-by-one);
- ``return x`` -> ``return None``.

Each mutant is compiled from the module's syntax tree and executed into the imported
module's namespace in a forked child; references to the module's functions held by other
modules (``from ._events import run_table``) are re-pointed to the mutated ones. The child runs
``pytest -x -q`` on the given test files: a failing run kills the mutant, a run past the
timeout counts as killed (timeout), a passing run is a survivor, listed with its line.
References captured elsewhere in other ways (a dict of functions built at import) are not
re-pointed: such a mutant survives, which errs towards a lower score, never a higher one.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import signal
import sys
import time
import types

_COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINOP = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
}
_SYMBOL = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.Add: "+",
    ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.BitAnd: "&",
    ast.BitOr: "|", ast.And: "and", ast.Or: "or",
}  # fmt: skip


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of docstring expressions: never mutated (they change nothing)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _skipped(tree: ast.AST) -> set[int]:
    """ids of nodes not to mutate: docstrings, annotations, format strings, ``stacklevel=``."""
    skip = _docstring_nodes(tree)
    for node in ast.walk(tree):
        sub = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            every = args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
            sub = [a.annotation for a in every if a is not None and a.annotation is not None]
            sub.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            sub = [node.annotation]
        elif isinstance(node, ast.JoinedStr):
            sub = [node]
        elif isinstance(node, ast.keyword) and node.arg == "stacklevel":
            sub = [node.value]
        for s in sub:
            if s is not None:
                skip.update(id(n) for n in ast.walk(s))
    return skip


def _sites(tree: ast.AST) -> list[tuple[ast.AST, int, str]]:
    """Every (node, variant, description) a mutant can be made from, in a fixed order."""
    skip = _skipped(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _COMPARE:
                    new = _COMPARE[type(op)]
                    out.append((node, i, f"{_SYMBOL[type(op)]} -> {_SYMBOL[new]}"))
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _BINOP:
            new = _BINOP[type(node.op)]
            out.append((node, 0, f"{_SYMBOL[type(node.op)]} -> {_SYMBOL[new]}"))
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            out.append((node, 0, f"{_SYMBOL[type(node.op)]} -> {_SYMBOL[new]}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
            out.append((node, 0, f"drop {'not' if isinstance(node.op, ast.Not) else '~'}"))
        elif (
            isinstance(node, ast.Constant)
            and type(node.value) is int
            and not isinstance(node.value, bool)
        ):
            out.append((node, 0, f"{node.value} -> {node.value + 1}"))
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                out.append((node, 0, "return -> return None"))
    return out


class _Apply(ast.NodeTransformer):
    """Rewrites the one node with the given id into its mutant."""

    def __init__(self, target: int, variant: int):
        self.target, self.variant = target, variant

    def visit(self, node):
        if id(node) != self.target:
            return self.generic_visit(node)
        if isinstance(node, ast.Compare):
            node.ops[self.variant] = _COMPARE[type(node.ops[self.variant])]()
        elif isinstance(node, (ast.BinOp, ast.AugAssign)):
            node.op = _BINOP[type(node.op)]()
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.UnaryOp):
            return node.operand
        elif isinstance(node, ast.Constant):
            node.value = node.value + 1
        elif isinstance(node, ast.Return):
            node.value = ast.Constant(value=None)
        return node


def _module_name(path: str) -> str:
    return os.path.splitext(os.path.normpath(path))[0].replace(os.sep, ".")


def _install(module: types.ModuleType, tree: ast.AST, path: str) -> None:
    """Executes ``tree`` into ``module`` and re-points other modules' references to it."""
    old = {
        id(v): k
        for k, v in vars(module).items()
        if isinstance(v, (types.FunctionType, type))
        and getattr(v, "__module__", None) == module.__name__
    }
    exec(compile(ast.fix_missing_locations(tree), path, "exec"), module.__dict__)
    for other in list(sys.modules.values()):
        name = getattr(other, "__name__", "") or ""
        if other is module or not name.startswith(("auroradask", "tests")):
            continue
        for key, value in list(vars(other).items()):
            if id(value) in old:
                setattr(other, key, getattr(module, old[id(value)]))


def _run(module, tree, path, tests, timeout) -> tuple[str, float]:
    """Forks, installs ``tree`` (None: the module as it is), runs the tests; the verdict."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            import pytest

            try:  # a caught mutant needs no shrinking of hypothesis' example: it only costs time
                from hypothesis import Phase, settings

                settings.register_profile(
                    "mutate", phases=[Phase.explicit, Phase.reuse, Phase.generate]
                )
                settings.load_profile("mutate")
            except ImportError:
                pass
            if tree is not None:
                _install(module, tree, path)
            args = [*tests, "-x", "-q", "-p", "no:cacheprovider"]
            os._exit(int(pytest.main(args)))
        except BaseException:
            os._exit(99)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return ("survived" if code == 0 else "killed"), time.monotonic() - start
        if time.monotonic() - start > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - start
        time.sleep(0.05)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="the module's file, e.g. auroradask/analysis/_events.py")
    parser.add_argument("tests", nargs="+", help="the test files to run for each mutant")
    parser.add_argument("--lines", help="only mutants on these lines, e.g. 30-120,400-450")
    parser.add_argument("--only", type=int, nargs="*", help="only these mutant numbers")
    args = parser.parse_args(argv)

    sys.path.insert(0, os.getcwd())
    module = importlib.import_module(_module_name(args.module))
    import pytest  # noqa: F401  (imported once here, so each child starts warm)

    for warm in ("numpy", "pandas", "xarray", "dask", "hypothesis", "tests.support.utils"):
        try:
            importlib.import_module(warm)
        except ImportError:
            pass
    source = open(args.module, encoding="utf-8").read()
    sites = _sites(ast.parse(source))
    spans = (
        [tuple(int(x) for x in r.split("-")) for r in args.lines.split(",")]
        if args.lines
        else [(0, 10**9)]
    )

    verdict, took = _run(module, None, args.module, args.tests, 600)
    if verdict != "survived":
        print(f"the tests fail on the unmutated module ({verdict}): fix that first")
        return 2
    timeout = max(20.0, 4 * took)
    print(f"{args.module}: {len(sites)} mutants, clean run {took:.1f} s, timeout {timeout:.0f} s")
    counts = {"killed": 0, "timeout": 0, "survived": 0}
    for number, (node, variant, what) in enumerate(sites):
        line = getattr(node, "lineno", 0)
        if not any(lo <= line <= hi for lo, hi in spans) or (args.only and number not in args.only):
            continue
        tree = ast.parse(source)
        target = _sites(tree)[number][0]
        tree = _Apply(id(target), variant).visit(tree)
        verdict, took = _run(module, tree, args.module, args.tests, timeout)
        counts[verdict] += 1
        print(f"#{number:<4} line {line:<4} {what:<24} {verdict} ({took:.1f} s)", flush=True)
    total = sum(counts.values())
    caught = counts["killed"] + counts["timeout"]
    score = 100.0 * caught / total if total else float("nan")
    print(
        f"score {score:.1f} %: {caught} of {total} caught "
        f"({counts['killed']} killed, {counts['timeout']} timeout, {counts['survived']} survived)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
