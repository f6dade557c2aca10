"""Every audit action the code can write has a Chinese label in both scripts (the 審計 page
shows labels, the raw name only as a tooltip), and the registry refuses a name it lacks."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.services import audit
from bot.web.console.ui import console_texts

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "broadcasts", "handlers", "models")


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _names(node: ast.expr, module: object) -> Iterator[str]:
    """The action names an expression can take (constants, module constants, dict values,
    both arms of a conditional; an f-string by its fixed prefix, marked with a trailing *)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _names(node.body, module)
        yield from _names(node.orelse, module)
    elif isinstance(node, ast.Name | ast.Attribute):
        value: object = module
        for part in ast.unparse(node).split("."):
            value = getattr(value, part, None)
        if isinstance(value, str):
            yield value
    elif isinstance(node, ast.Subscript):
        table = getattr(module, ast.unparse(node.value), None)
        assert isinstance(table, dict), ast.unparse(node)
        yield from table.values()
    elif isinstance(node, ast.JoinedStr):
        head = node.values[0]
        assert isinstance(head, ast.Constant), ast.unparse(node)
        yield f"{head.value}*"
    # a plain parameter (``action=action``) is named at its callers, scanned here too


def written_actions() -> set[str]:
    """Every action name passed to ``audit.record`` or to a helper that passes it on."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            # Only modules that write audit rows are imported (a migration's env.py or
            # __main__.py does things on import).
            if "audit" not in source or path.name == "__main__.py":
                continue
            tree = ast.parse(source)
            module = importlib.import_module(_module_name(path))
            for call in ast.walk(tree):
                if not isinstance(call, ast.Call):
                    continue
                name = ast.unparse(call.func)
                if name in ("audit.record", "record", "audit_household"):
                    for kw in call.keywords:
                        if kw.arg == "action":
                            found.update(_names(kw.value, module))
                elif (
                    name == "_audit" and len(call.args) >= 3
                ):  # accounts: (session, account, action, now)
                    found.update(_names(call.args[2], module))
    return found


def test_the_scan_finds_the_actions_written_every_way() -> None:
    found = written_actions()
    # a constant, a module constant, a dict's values, a conditional, an f-string, a helper
    for name in (
        "login",
        "roster_edited",
        "dispute_graded",
        "personal_data_shown",
        "ticket_*",
        "bulletin_*",
        "account_unlocked",
        "household_added",
    ):
        assert name in found, name


def test_every_action_written_is_registered_and_labelled_in_both_scripts() -> None:
    texts = console_texts()
    for name in sorted(written_actions()):
        if name.endswith("*"):
            assert any(a.startswith(name[:-1]) for a in audit.ACTIONS), name
        else:
            assert name in audit.ACTIONS, f"{name} is written but not in audit.ACTIONS"
    for name in sorted(audit.ACTIONS):
        key = f"audit_action_{name}"
        assert key in texts, f"{name} has no label ({key})"
        hant, hans = texts.render(key, "hant"), texts.render(key, "hans")
        for label in (hant, hans):
            assert label and label.isascii() is False, (name, label)


def test_an_unregistered_action_is_refused() -> None:
    added: list[object] = []

    class Session:
        def add(self, row: object) -> None:
            added.append(row)

    with pytest.raises(ValueError, match=r"not in audit\.ACTIONS"):
        audit.record(Session(), now=datetime(2026, 1, 1, tzinfo=UTC), action="alert_snet")  # type: ignore[arg-type]
    assert added == []
    audit.record(Session(), now=datetime(2026, 1, 1, tzinfo=UTC), action="alert_sent")  # type: ignore[arg-type]
    assert len(added) == 1
