"""Imports run one way: every module imports only its own layer or lower ones, and no cycles.

The map is README's "Layers" diagram, top to bottom; the longest matching path prefix decides a
module's layer, and a module no prefix matches fails the test (say where it belongs). Imports
inside functions count like any other; only ``if TYPE_CHECKING:`` blocks are left out, since
they name types for annotations and run nothing (the runtime's channel and classifier types).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [
    ("composition root", ["bot/app.py", "bot/wiring.py", "bot/cli", "bot/demo/", "bot/__main__.py",
                          "bot/scheduler.py"]),
    ("routes and channels", ["bot/web/", "bot/channels/"]),
    ("dispatcher", ["bot/dispatcher.py"]),
    ("intent handlers", ["handlers/"]),
    ("domain services", ["bot/services/", "broadcasts/"]),
    ("outbox", ["broadcasts/outbox.py"]),
    ("models", ["models/"]),
    ("foundation", ["bot/settings/", "bot/clock.py", "bot/pii.py", "bot/texts.py", "bot/messages.py",
                    "bot/runtime.py", "bot/db.py", "bot/sqlite_inline.py", "bot/metrics.py",
                    "bot/channel_health.py", "bot/leadership.py", "bot/sms_templates.py",
                    "bot/__init__.py"]),
]  # fmt: skip


def layer_of(path: str) -> int:
    """The index in LAYERS of the longest prefix of ``path``."""
    matches = [(len(p), i) for i, (_, ps) in enumerate(LAYERS) for p in ps if path.startswith(p)]
    assert matches, f"{path}: in no layer; add it to LAYERS (and README's diagram)"
    return max(matches)[1]


def modules() -> dict[str, Path]:
    """Dotted name → file, for every module of ours (migrations are Alembic's, not imported)."""
    found = {}
    for package in ("bot", "handlers", "broadcasts", "models"):
        for file in (ROOT / package).rglob("*.py"):
            if "migrations" not in file.parts:
                name = ".".join(file.relative_to(ROOT).with_suffix("").parts)
                found[name.removesuffix(".__init__")] = file
    return found


def imports(file: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Our modules that ``file`` imports anywhere but under ``if TYPE_CHECKING:``."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for n in ast.walk(stmt)
    }
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Import):
            wanted = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # ``from package import module`` imports the module; ``from module import name``
            # the module.
            wanted = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        for target in wanted:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
    return targets


def rel(file: Path) -> str:
    return file.relative_to(ROOT).as_posix()


def test_every_import_goes_to_the_same_or_a_lower_layer() -> None:
    known = modules()
    upward = []
    for name, file in sorted(known.items()):
        mine = layer_of(rel(file))
        for target in sorted(imports(file, name, known)):
            theirs = layer_of(rel(known[target]))
            if theirs < mine:
                upward.append(f"{name} ({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]})")
    assert upward == []


def test_no_import_cycles() -> None:
    known = modules()
    graph = {name: imports(file, name, known) for name, file in known.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " → ".join([*path[path.index(name) :], name]))
        if name not in done:
            for target in sorted(graph[name]):
                visit(target, [*path, name])
            done.add(name)

    for name in sorted(graph):
        visit(name, [])
