"""Logging setup: structured JSON lines (or plain text for a terminal), never a secret.

Context travels in `extra=` (connector/instance, lrs, statement id, reason) and becomes JSON
fields. A last-line-of-defence filter masks anything that looks like a credential in the
rendered message (Authorization headers, `password=`, `token=`, secret query parameters), in case
a library logs a URL or header we did not write ourselves.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_CONTEXT_KEYS = ("instance", "connector", "lrs", "statement_id", "reason", "task")

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(authorization\s*[:=]\s*)(?:basic|bearer)\s+[^\s,;'\"]+"), r"\1***"),
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token|api[_-]?key|client_secret)\s*[=:]\s*)"
            r"[^\s&,;'\"]+"
        ),
        r"\1***",
    ),
    (re.compile(r"(?i)([?&](?:token|key|secret|signature|sig|code)=)[^&\s]+"), r"\1***"),
    (re.compile(r"(?i)(rediss?://[^:/@\s]*:)[^@\s]+@"), r"\1***@"),
)


def redact(text: str) -> str:
    """Mask credential-looking substrings (a backstop; code never logs secrets on purpose)."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = (
                    value if isinstance(value, int | float | bool | None) else redact(str(value))
                )
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact(super().format(record))
        ctx = " ".join(f"{k}={record.__dict__[k]}" for k in _CONTEXT_KEYS if k in record.__dict__)
        return f"{line} [{ctx}]" if ctx else line


def setup_logging(*, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; URLs may carry tokens (query secrets).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # Celery logs every task received/succeeded at INFO: thousands of lines a second under load.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    logging.getLogger("celery.worker.strategy").setLevel(logging.WARNING)
