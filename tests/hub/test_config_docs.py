"""docs/admin.md documents every key of hub.yaml (`HubConfig` and its nested models): admins
configure the hub from that page, so a key added in code but not there is a hidden knob."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from hub.config import HubConfig

ADMIN = Path(__file__).resolve().parents[2] / "docs" / "admin.md"


def keys(
    model: type[BaseModel], parent: str = "", seen: frozenset[type] = frozenset()
) -> Iterator[tuple[str, str]]:
    """(key, parent.key) of every field, nested models included."""
    for name, info in model.model_fields.items():
        key = info.alias or name
        yield key, f"{parent}.{key}" if parent else key
        for arg in (info.annotation, *typing.get_args(info.annotation)):
            for t in (arg, *typing.get_args(arg)):
                if isinstance(t, type) and issubclass(t, BaseModel) and t not in seen:
                    yield from keys(t, key, seen | {model})


def test_every_hub_yaml_key_is_documented() -> None:
    doc = ADMIN.read_text()
    found = list(keys(HubConfig))
    assert len(found) > 30  # the walk reached the nested sections
    # A section documented only through its keys (`routes.verbs`) counts as documented.
    missing = sorted(
        {
            dotted
            for key, dotted in found
            if not any(f"`{k}" in doc for k in (f"{key}`", f"{key}.", f"{dotted}`"))
        }
    )
    assert not missing, f"docs/admin.md does not document {missing}"
