"""The folders are the architecture: imports point down, modules stay small, and only
`bot.claude` speaks to Anthropic. Read from the source, so a new module is covered at once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[1] / "bot"
MAX_LINES = 300

# What each layer may import from the bot. The top-level modules `errors`, `config`,
# `config_hints` and `logs` are shared by all; `metrics` sits beside the engine.
SHARED = {"bot.errors", "bot.config", "bot.config_hints", "bot.logs"}
ALLOWED = {
    "bot.store": {"bot.store"},
    "bot.claude": {"bot.claude"},
    "bot.cost": {"bot.cost", "bot.store"},
    "bot.engine": {"bot.engine", "bot.cost", "bot.claude", "bot.store", "bot.metrics"},
    "bot.slack": {"bot.slack", "bot.engine", "bot.cost", "bot.store", "bot.metrics"},
    "bot.http": {"bot.http", "bot.engine", "bot.cost", "bot.store", "bot.metrics"},
    "bot.metrics": {"bot.store"},
}
SURFACES = ("bot.slack", "bot.http")
COMPOSITION_ROOT = ("bot.app", "bot.server", "bot.wiring", "bot.wiring_slack", "bot.__main__")


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(BOT.rglob("*.py")):
        parts = path.relative_to(BOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for package in ALLOWED:
        init = BOT.parent / package.replace(".", "/") / "__init__.py"
        if not init.exists():
            continue  # a module, not a package
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc, f"{package}'s docstring should say what it may import"


def violations(module: str, names: set[str]) -> list[str]:
    """The imports of `module` that break the layering."""
    own = layer(module)
    allowed = ALLOWED.get(own)
    found = []
    for name in sorted(n for n in names if n.startswith("bot.")):
        target = layer(name)
        if target in SHARED:
            continue
        if allowed is not None and target not in allowed:
            found.append(f"{module} imports {name}: {own} may import only {sorted(allowed)}")
        elif target in SURFACES and own not in SURFACES and own not in COMPOSITION_ROOT:
            found.append(f"{module} imports the surface {name}")
    return found


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_down(module: str, path: Path) -> None:
    assert violations(module, imports_of(path)) == []


def test_upward_and_sideways_imports_are_caught() -> None:
    assert violations("bot.store.ledger", {"bot.engine.turns"})
    assert violations("bot.engine.turns", {"bot.slack.relay"})
    assert violations("bot.http.chat", {"bot.slack.views"})
    assert violations("bot.cost.usage_command", {"bot.slack.admins"})
    assert violations("bot.logs", {"bot.http.chat"})  # a top-level module is no surface
    assert violations("bot.wiring", {"bot.slack.listeners", "bot.http.chat"}) == []


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_only_the_claude_package_imports_anthropic(module: str, path: Path) -> None:
    names = imports_of(path)
    if not module.startswith("bot.claude"):
        assert not any(n == "anthropic" or n.startswith("anthropic.") for n in names), module


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_no_module_is_over_300_lines(module: str, path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it (STYLE.md, growth rule)"
