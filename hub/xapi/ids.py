"""Deterministic statement ids, natural keys and hub-minted IRIs (vendors.md 1.4, 1.6, 8.2).

``statement.id = uuid5(statement_namespace(XAPI_IRI_BASE), natural_key(...))``. The same fact
must always give the same id, whether it arrives by webhook, by redelivery or by backfill.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import quote

__all__ = [
    "activity_iri",
    "extension_iri",
    "natural_key",
    "statement_id",
    "statement_id_text",
    "statement_namespace",
]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://\S+$")
_SEGMENT_SAFE = "-._~:@"
_EXTENSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~/\-]*$")


def _base(base_iri: str) -> str:
    base = base_iri.strip().rstrip("/")
    if not _SCHEME.match(base):
        raise ValueError(f"XAPI_IRI_BASE must be an absolute IRI, got {base_iri!r}")
    return base


# ---------------------------------------------------------------------------------------------
# WARNING: NEVER CHANGE THIS FUNCTION (nor the "/statement-ns" suffix, nor the rstrip).
# Every statement id the hub has ever sent is uuid5(<this namespace>, <natural key>). Changing
# the namespace derivation re-keys every statement: re-runs and backfills would then produce
# new ids, the LRS would store them as new statements and learners' history would be
# duplicated. Same for changing XAPI_IRI_BASE of a live deployment.
# Vector: "https://lrs-hub.example.com/xapi" -> b3b2824f-59e2-5129-80fb-fdeb67e0c2bd.
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)  # one per deployment in practice; every statement id needs it
def statement_namespace(base_iri: str) -> uuid.UUID:
    """The deployment's statement-id namespace: ``uuid5(NAMESPACE_URL, base + "/statement-ns")``."""
    return uuid.uuid5(uuid.NAMESPACE_URL, base_iri.rstrip("/") + "/statement-ns")


def _check_token(what: str, value: str) -> None:
    if not value:
        raise ValueError(f"{what} must not be empty")
    if "|" in value:
        raise ValueError(f"{what} must not contain '|': {value!r}")


def natural_key(
    *, source: str, tenant: str, verb_key: str, parts: Sequence[tuple[str, str]]
) -> str:
    """Build ``{source}|{tenant}|{verb_key}|{name1}={value1}|...`` (vendors.md 8.2).

    ``source`` and ``tenant`` are lowercased; names must not contain ``|`` or ``=``; values
    are used exactly as given (IDs as decimal strings, times as :func:`key_time` output).
    """
    source_norm = source.strip().lower()
    tenant_norm = tenant.strip().lower()
    _check_token("source", source_norm)
    _check_token("tenant", tenant_norm)
    _check_token("verb_key", verb_key)
    fields = [source_norm, tenant_norm, verb_key]
    for name, value in parts:
        _check_token("natural-key part name", name)
        if "=" in name:
            raise ValueError(f"natural-key part name must not contain '=': {name!r}")
        if not isinstance(value, str):
            raise TypeError(f"natural-key value for {name!r} must be a str, got {type(value)}")
        fields.append(f"{name}={value}")
    return "|".join(fields)


def statement_id(namespace: uuid.UUID, key: str) -> uuid.UUID:
    """The deterministic statement id: ``uuid5(namespace, key)``."""
    return uuid.uuid5(namespace, key)


def statement_id_text(namespace: uuid.UUID, key: str) -> str:
    """``str(statement_id(namespace, key))``, computed as uuid5 does but without the UUID
    object: builders of statement JSON need only the text, and the object cost twice as much.
    (tests/hub/xapi/test_ids.py holds the two equal.)"""
    sha1 = hashlib.sha1(namespace.bytes + key.encode(), usedforsecurity=False)  # uuid5 is SHA-1
    digest = bytearray(sha1.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _segment(what: str, value: str) -> str:
    if not value:
        raise ValueError(f"{what} must not be empty")
    return quote(value, safe=_SEGMENT_SAFE)


def activity_iri(base_iri: str, *, source: str, tenant: str, kind: str, source_id: str) -> str:
    """Hub-minted Activity IRI ``{base}/activities/{source}/{tenant}/{kind}/{source_id}``.

    ``source`` and ``tenant`` are lowercased like in natural keys; every segment is
    percent-encoded, keeping ``-._~:@`` readable (so ``/`` in a source id becomes ``%2F``).
    """
    segments = (
        _segment("source", source.strip().lower()),
        _segment("tenant", tenant.strip().lower()),
        _segment("kind", kind),
        _segment("source_id", source_id),
    )
    return f"{_base(base_iri)}/activities/" + "/".join(segments)


@lru_cache(maxsize=1024)  # a handful of names per deployment, asked for on every statement
def extension_iri(base_iri: str, name: str) -> str:
    """Hub extension IRI ``{base}/extensions/{name}``, e.g. ``.../extensions/source-tenant``."""
    if not _EXTENSION_NAME.match(name):
        raise ValueError(f"invalid extension name {name!r}")
    return f"{_base(base_iri)}/extensions/{name}"
