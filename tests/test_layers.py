"""Imports run one way (README's "Layers" diagram, top to bottom) and never in a circle.

A module's layer is that of its longest matching path prefix; a module in no layer fails. Imports
inside functions count like any other; only ``if TYPE_CHECKING:`` blocks are exempt, since they
name types for annotations and run nothing (bot/runtime.py names the channel callbacks' and the
classifier's types that way).
"""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {  # top to bottom: a module may import its own layer and those below it
    "composition root": ("bot/app.py", "bot/wiring.py", "bot/cli", "bot/demo/", "bot/__main__.py", "bot/scheduler.py",
                         "bot/processor_process.py"),
    "routes and channels": ("bot/web/", "bot/channels/"),
    "dispatcher": ("bot/pipeline.py", "bot/dispatcher.py", "bot/dispatch_batch.py", "bot/pipeline_link.py", "bot/inbound_status.py"),
    "intent handlers": ("handlers/",),
    "domain services": ("bot/services/", "broadcasts/"),
    "outbox": ("broadcasts/outbox.py", "broadcasts/outbox_worker.py", "broadcasts/pacing.py"),
    "foundation": ("bot/__init__.py", "bot/settings/", "bot/clock.py", "bot/turns.py", "bot/pii.py", "bot/texts.py", "bot/messages.py",
                   "bot/runtime.py", "bot/db.py", "bot/sqlite_inline.py", "bot/metrics.py", "bot/channel_health.py",
                   "bot/leadership.py", "bot/sms_templates.py", "bot/frames.py", "bot/text_parts.py"),
    "models": ("models/",),
}  # fmt: skip
FILES = {
    ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f
    for package in ("bot", "handlers", "broadcasts", "models")
    for f in (ROOT / package).rglob("*.py")
    if "migrations" not in f.parts
}


def layer(module: str) -> int:
    path = FILES[module].relative_to(ROOT).as_posix()
    found = [(len(p), i) for i, ps in enumerate(LAYERS.values()) for p in ps if path.startswith(p)]
    assert found, f"{path} is in no layer: add it to LAYERS and to README's diagram"
    return max(found)[1]


def imports(module: str) -> set[str]:
    """Our modules that ``module`` imports, anywhere but under ``if TYPE_CHECKING:``."""
    tree = ast.parse(FILES[module].read_text(encoding="utf-8"))
    exempt = {id(n) for i in ast.walk(tree) if isinstance(i, ast.If) and "TYPE_CHECKING" in ast.unparse(i.test)
              for s in i.body for n in ast.walk(s)}  # fmt: skip
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and id(node) not in exempt:
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and id(node) not in exempt:
            # ``from package import module`` imports that module; ``from module import name``
            names += [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in FILES else node.module
                      for a in node.names]  # fmt: skip
    return {n for n in names if n in FILES and n != module}


def test_imports_go_to_the_same_or_a_lower_layer() -> None:
    names = list(LAYERS)
    upward = [f"{m} ({names[layer(m)]}) imports {t} ({names[layer(t)]})"
              for m in sorted(FILES) for t in sorted(imports(m)) if layer(t) < layer(m)]  # fmt: skip
    assert upward == []


def test_the_readme_diagram_is_this_map() -> None:
    diagram = (ROOT / "README.md").read_text(encoding="utf-8").split("## Layers")[1].split("```")[1]
    drawn: dict[str, list[str]] = {}
    for line in diagram.splitlines():
        if line.strip() in ("", "▼"):
            continue
        if line.startswith(" "):  # more paths of the layer above
            drawn[list(drawn)[-1]] += line.split()
        else:
            name, _, paths = line.partition("  ")
            drawn[name] = paths.split()
    assert drawn == {name: list(paths) for name, paths in LAYERS.items()}


def test_no_import_cycles() -> None:
    try:
        TopologicalSorter({m: imports(m) for m in FILES}).prepare()
    except CycleError as error:
        raise AssertionError("import cycle: " + " → ".join(reversed(error.args[1]))) from None
