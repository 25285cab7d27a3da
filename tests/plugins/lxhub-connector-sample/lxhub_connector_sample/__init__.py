"""SampleCoach connector for lxhub: a minimal third-party plugin (webhook + mapper)."""

from __future__ import annotations

__version__ = "0.1.0"
