"""Dependency rules of STYLE §1, checked with `ast` (no extra tool):

* `hub` never imports `connectors` or `workers`;
* `connectors` import only `hub`'s public API (and httpx, pydantic, vendor SDKs, stdlib);
* `workers` never import `connectors`;
* nothing in `connectors/__init__.py` registers itself at import.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_hub_imports_neither_connectors_nor_workers() -> None:
    bad = {
        str(p.relative_to(ROOT)): sorted(
            m for m in imports(p) if m.split(".")[0] in {"connectors", "workers"}
        )
        for p in modules("hub")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_workers_do_not_import_connectors() -> None:
    bad = {
        str(p.relative_to(ROOT))
        for p in modules("workers")
        if any(m.split(".")[0] == "connectors" for m in imports(p))
    }
    assert bad == set()


def test_connectors_import_only_hub_and_their_own_package() -> None:
    offenders: dict[str, list[str]] = {}
    for path in modules("connectors"):
        rel = path.relative_to(ROOT)
        own = ".".join(rel.parts[:2]) if len(rel.parts) > 2 else "connectors"
        bad = [
            m
            for m in imports(path)
            if m.split(".")[0] in {"workers"}
            or (m.startswith("connectors") and not m.startswith(own))
        ]
        if bad:
            offenders[str(rel)] = bad
    assert offenders == {}


def test_connectors_package_registers_nothing_at_import() -> None:
    init = ROOT / "connectors" / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    body = [
        n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
    ]
    assert all(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in body)
