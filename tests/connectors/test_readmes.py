"""Every bundled connector's README documents every key of its settings model: admins configure
connectors from those tables, so a key added in code but not in the README is a hidden knob."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from hub.registry import build_registry, find

BUNDLED = sorted(fp.name for fp in find() if fp.value.startswith("connectors."))


def test_the_bundled_connectors_are_found() -> None:
    assert {"cornerstone", "docebo", "slack", "teams", "webhook", "youtube"} <= set(BUNDLED)


@pytest.mark.parametrize("name", BUNDLED)
def test_the_readme_names_every_setting(name: str) -> None:
    loaded = build_registry(only=[name])[name]
    readme = Path(inspect.getfile(loaded.cls)).with_name("README.md").read_text()
    fields = loaded.cls.settings_model.model_fields
    assert fields, f"{name}: no settings"
    missing = [key for key in fields if f"`{key}`" not in readme]
    assert not missing, f"connectors/{name}/README.md does not document {missing}"
