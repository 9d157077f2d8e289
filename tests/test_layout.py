"""The package layout is the architecture: imports flow one way through the layers,
no module imports one that imports it back, and support_env never imports the server."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "support_env"

# Lower layers never import higher ones. Modules of one layer may import each other
# (within a package), as long as no circle forms.
LAYERS = [
    {"support_env.models", "support_env.encodable", "support_env.version"},
    {"support_env.domain"},
    {"support_env.episodes"},
    {"support_env.grading"},
    {"support_env.actions"},
    {"support_env.environment"},
    {"support_env.access", "support_env.agents"},
    {"support_env", "support_env.client", "support_env.audit"},  # the public face: re-exports only
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The support_env and server modules a file imports, resolved to dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # `from . import casework` names a module, not an attribute
            found.update(f"{module}.{alias.name}" for alias in node.names if (ROOT / Path(*f"{module}.{alias.name}".split("."))).with_suffix(".py").exists())
    return {m for m in found if m.split(".")[0] in ("support_env", "server")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _layer(module: str) -> int:
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best[0]


def test_every_module_has_a_layer_and_imports_only_downwards():
    upward = []
    for module, imported in _graph().items():
        for target in imported:
            if _layer(target) > _layer(module):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that run against the layers:\n" + "\n".join(sorted(upward))


def test_no_module_imports_one_that_imports_it_back():
    graph = _graph()
    circles = []

    def visit(node: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in on_path:
                circles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in done:
                on_path.add(nxt)
                visit(nxt, path + [nxt], on_path, done)
                on_path.discard(nxt)
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start], {start}, done)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_support_env_never_imports_the_server():
    offenders = [
        f"{_module_name(p)} imports {m}"
        for p in PACKAGE.rglob("*.py")
        for m in _imports(p)
        if m == "server" or m.startswith("server.")
    ]
    assert not offenders, offenders


def test_every_package_says_what_its_room_is_for():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.splitlines()) == 1, f"{init.relative_to(ROOT)} needs a one-line docstring"


def test_the_environment_class_is_the_episode_loop_only():
    tree = ast.parse((PACKAGE / "environment.py").read_text(encoding="utf-8"))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SupportEnvironment"]
    assert cls.end_lineno - cls.lineno + 1 <= 220
    handlers = [f.name for f in cls.body if isinstance(f, ast.FunctionDef) and f.name.lstrip("_") in (
        "classify", "search", "reply", "escalate", "close", "lookup", "refund", "revoke", "lock", "replace")]
    assert not handlers, f"action handlers belong in support_env/actions.py: {handlers}"
