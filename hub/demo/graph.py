"""Microsoft Graph's side of rich change notifications: what Graph does with the certificate a
subscription carries (vendors.md 5.4). The demo's fake Graph, the Teams fixture generator and the
live tests all encrypt through here, so they cannot drift apart from each other.

Graph encrypts each resource with AES-256-CBC under a random key (IV = the key's first 16 bytes),
signs the ciphertext with HMAC-SHA256 under the same key, and wraps the key with RSA-OAEP-SHA1 for
the subscription's certificate. SHA-1 is Graph's choice, not ours: the connector must accept it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import datetime, timedelta

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

__all__ = [
    "GRAPH_NOTIFICATION_PUBLISHER",
    "decrypt_resource",
    "encrypt_resource",
    "key_set",
    "new_rsa_key",
    "private_key_pem",
    "self_signed_certificate",
    "thumbprint",
    "to_pem",
    "validation_token",
]

GRAPH_NOTIFICATION_PUBLISHER = "0bf30f3b-4a52-48df-9a82-234910c4a086"
"""The app id Entra ID issues Graph's notification validationTokens to (their `azp`)."""

_OAEP_SHA1 = OAEP(mgf=MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    """The key as unencrypted PKCS#8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def self_signed_certificate(
    common_name: str, *, not_before: datetime, days: int, serial: int | None = None
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A fresh 2048-bit RSA key and a self-signed certificate for it (what an admin uploads)."""
    key = new_rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def to_pem(key: rsa.RSAPrivateKey, cert: x509.Certificate) -> tuple[str, str]:
    """(PKCS#8 private key, certificate) as PEM text."""
    return private_key_pem(key), cert.public_bytes(serialization.Encoding.PEM).decode()


def thumbprint(cert: x509.Certificate) -> str:
    """Graph's `encryptionCertificateThumbprint`: SHA-1 of the DER certificate, upper-case hex."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 (Graph's format, not a security use)


def encrypt_resource(
    cert: x509.Certificate,
    plaintext: bytes,
    *,
    certificate_id: str,
    certificate_thumbprint: str | None = None,
) -> dict[str, str]:
    """A notification's `encryptedContent` for `plaintext`, encrypted to `cert` as Graph does.

    `certificate_thumbprint` defaults to the certificate's own; the committed Teams fixtures
    carry a placeholder and pass it explicitly.
    """
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise TypeError("Graph encrypts to RSA certificates only")
    symmetric = os.urandom(32)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).encryptor()
    data = encryptor.update(padded) + encryptor.finalize()
    signature = hmac.new(symmetric, data, hashlib.sha256).digest()
    return {
        "data": base64.b64encode(data).decode(),
        "dataSignature": base64.b64encode(signature).decode(),
        "dataKey": base64.b64encode(public_key.encrypt(symmetric, _OAEP_SHA1)).decode(),
        "encryptionCertificateId": certificate_id,
        "encryptionCertificateThumbprint": certificate_thumbprint or thumbprint(cert),
    }


def decrypt_resource(key: rsa.RSAPrivateKey, content: dict[str, str]) -> bytes:
    """The plaintext of an `encryptedContent` (tests read fixtures with it; no signature check:
    the connector's own decryption is what the tests exercise)."""
    symmetric = key.decrypt(base64.b64decode(content["dataKey"]), _OAEP_SHA1)
    decryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).decryptor()
    padded = decryptor.update(base64.b64decode(content["data"])) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


# --- Entra ID's side of validationTokens ----------------------------------------------------


def validation_token(
    key: rsa.RSAPrivateKey,
    *,
    kid: str,
    app_id: str,
    tenant_id: str,
    not_before: datetime,
    expires: datetime,
) -> str:
    """A `validationTokens` JWT as Entra ID issues it for Graph's notification publisher."""
    claims = {
        "aud": app_id,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "azp": GRAPH_NOTIFICATION_PUBLISHER,
        "iat": int(not_before.timestamp()),
        "nbf": int(not_before.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def key_set(key: rsa.RSAPrivateKey, *, kid: str) -> dict[str, list[dict[str, str]]]:
    """The JWKS Entra ID publishes for `key` (what the connector's `signing_keys_url` serves)."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}
