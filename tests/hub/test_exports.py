"""The plugin-author API is exactly what `hub.__all__` lists (httpx's test_exports idea), and
built-in connectors use nothing else of the core."""

from __future__ import annotations

import ast
from pathlib import Path

import hub
import hub.xapi

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_PACKAGES = {"hub", "hub.xapi", "hub.testing"}


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(hub) if not name.startswith("_")}
    modules = {name for name, value in vars(hub).items() if type(value).__name__ == "module"}
    assert set(hub.__all__) == public - modules - {"annotations"}
    assert sorted(hub.__all__) == hub.__all__


def test_every_exported_name_resolves() -> None:
    for name in hub.__all__:
        assert getattr(hub, name) is not None, name
    for name in hub.xapi.__all__:
        assert getattr(hub.xapi, name) is not None, name


def test_built_in_connectors_import_only_the_public_api() -> None:
    offenders: dict[str, list[str]] = {}
    for path in sorted((ROOT / "connectors").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad = [
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == "hub"
            and node.module not in PUBLIC_PACKAGES
        ]
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}
