"""Imports point inward: views -> tree -> core, never back; libraries stay in their view."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "circuit"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0] if len(rel) > 1 else rel[0][:-3]


# For each package: circuit packages it may not import, and libraries only it may import.
FORBIDDEN = {
    "core": {"circuit.tree", "circuit.fuse", "circuit.ssh", "circuit.pb", "circuit.service",
             "circuit.cli", "circuit.membership", "circuit.tls"},
    "tree": {"circuit.fuse", "circuit.ssh", "circuit.pb", "circuit.service", "circuit.cli",
             "circuit.commands", "circuit.control"},
    "membership": {"circuit.tree", "circuit.fuse", "circuit.ssh", "circuit.service", "circuit.cli"},
    "fuse": {"circuit.ssh", "circuit.pb", "circuit.cli", "circuit.core"},
    "ssh": {"circuit.fuse", "circuit.pb", "circuit.cli", "circuit.core"},
    "pb": {"circuit.fuse", "circuit.ssh", "circuit.cli", "circuit.commands"},
    "commands": {"circuit.fuse", "circuit.ssh", "circuit.pb", "circuit.cli", "circuit.core",
                 "circuit.service", "circuit.control"},
    "client": {"circuit.fuse", "circuit.ssh", "circuit.cli", "circuit.core", "circuit.service",
               "circuit.control"},
    "control": {"circuit.fuse", "circuit.ssh", "circuit.pb", "circuit.cli", "circuit.core"},
}
LIBRARY_HOMES = {"pyfuse3": {"fuse"}, "twisted.conch": {"ssh", "tls"}, "twisted.spread": {"pb"}}


def test_imports_point_inward():
    problems = []
    for path in ROOT.rglob("*.py"):
        pkg = _package(path)
        for name in _imports(path):
            for bad in FORBIDDEN.get(pkg, ()):
                if name == bad or name.startswith(bad + "."):
                    problems.append(f"{path.relative_to(ROOT)} imports {name}")
            for lib, homes in LIBRARY_HOMES.items():
                if (name == lib or name.startswith(lib + ".")) and pkg not in homes:
                    problems.append(f"{path.relative_to(ROOT)} imports {name} (only {sorted(homes)} may)")
    assert problems == []


def test_plugin_is_lazy():
    """twistd imports plugins while parsing options: no reactor, no pyfuse3 at import."""
    plugin = ROOT.parent / "twisted" / "plugins" / "circuit_plugin.py"
    assert _imports(plugin) == {"twisted.application.service"}


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _edges(path: Path, modules: set[str]) -> set[str]:
    """The circuit modules a file imports (at the top or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
    return {m for m in found if m in modules and m != "circuit"}


def test_no_module_imports_itself_in_a_circle():
    files = {_module(p): p for p in ROOT.rglob("*.py")}
    graph = {m: _edges(p, set(files)) - {m} for m, p in files.items()}
    circles, state = [], {}

    def visit(m, trail):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                circles.append(" -> ".join(trail[trail.index(n):] + [n]))
            elif n not in state:
                visit(n, trail + [n])
        state[m] = "done"
    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == []
