"""The rules of the house (docs/development.md), checked on the code as text: rooms by stage
with no import cycle and at most six floors, no private name across rooms, functions and
modules short enough to read, a lazy top level."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import auroradask

PACKAGE = Path(auroradask.__file__).parent


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        yield path, parts, is_package, ast.parse(path.read_text())


def _room(parts: list[str]) -> str:
    if len(parts) > 1 and parts[1] == "__main__":
        return "cli"  # python -m auroradask is the command
    if len(parts) > 1 and not parts[1].startswith("_") and parts[1] != "errors":
        return parts[1]
    return "(base)"


def _imports():
    """(importing module's parts, imported module name, names) of module-level relative imports."""
    for _, parts, is_package, tree in _modules():
        if parts == ["auroradask"]:
            continue  # the lazy top level: it imports nothing itself
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = parts if is_package else parts[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                yield parts, target, [a.name for a in node.names]


def _room_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for parts, target, _ in _imports():
        a, b = _room(parts), _room(target.split("."))
        if a != b:
            graph.setdefault(a, set()).add(b)
    return graph


def test_rooms_form_no_cycle_and_at_most_six_floors():
    graph = _room_graph()
    floors: dict[str, int] = {}

    def floor(room: str, path: tuple[str, ...] = ()) -> int:
        assert room not in path, f"import cycle: {' -> '.join((*path, room))}"
        if room not in floors:
            floors[room] = 1 + max(
                (floor(d, (*path, room)) for d in graph.get(room, ())), default=0
            )
        return floors[room]

    for room in graph:
        floor(room)
    assert floors["(base)"] == 1, graph.get("(base)")  # the shared modules import no room
    assert max(floors.values()) <= 6, floors
    assert {"io", "store", "models", "visual", "cli"} <= set(floors)


def test_no_private_name_crosses_a_room():
    crossing = [
        (".".join(parts), target, name)
        for parts, target, names in _imports()
        for name in names
        if name.startswith("_")
        and _room(parts) != _room(target.split("."))
        and _room(target.split(".")) != "(base)"
    ]
    assert crossing == []


def test_functions_and_modules_are_short_enough_to_read():
    long = []
    for path, _, _, tree in _modules():
        relative = path.relative_to(PACKAGE).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > 800:
            long.append((relative, lines))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 100:
                    long.append((relative, node.name, length))
    assert long == []


def test_import_auroradask_imports_no_room_and_every_name_resolves():
    code = (
        "import sys, auroradask\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('auroradask'))\n"
        "assert loaded == ['auroradask'], loaded\n"
        "assert 'numpy' not in sys.modules and 'dask' not in sys.modules\n"
        "for name in auroradask.__all__: getattr(auroradask, name)\n"
        "for room in ('io', 'visual', 'store', 'labelling'): getattr(auroradask, room)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
