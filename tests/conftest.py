"""Test-suite wide settings."""

from __future__ import annotations

# The sample third-party plugin is a separate distribution with its own tests; they run in
# tests/hub/test_registry.py against the plugin pip-installed, as its author would run them.
collect_ignore_glob = ["plugins/*"]
