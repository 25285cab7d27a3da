"""Fixtures for the YouTube connector tests; registers the helper module `_youtube_kit`."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _load_kit() -> None:
    name = "_youtube_kit"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_load_kit()

from _youtube_kit import Kit  # noqa: E402

from hub.testing import block_network  # noqa: E402


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """Unit tests never reach a socket: unmocked HTTP fails instead of going out."""
    with block_network():
        yield


@pytest.fixture
def yt() -> Iterator[Kit]:
    kit = Kit()
    try:
        yield kit
    finally:
        kit.http.close()
