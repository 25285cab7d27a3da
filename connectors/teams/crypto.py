"""Decryption of Graph rich-notification ``encryptedContent`` (vendors.md 5.4, 8.3 vector 4).

1. ``key = RSA-OAEP-decrypt(private_key, b64decode(dataKey))`` with SHA-1 / MGF1-SHA-1;
2. ``b64encode(HMAC-SHA256(key, b64decode(data)))`` must equal ``dataSignature`` (constant
   time), checked BEFORE anything is decrypted;
3. ``AES-256-CBC(key, iv=key[:16])`` then PKCS7 unpadding gives the resource JSON.

Every failure is `ContentError` (with a reason safe to log), never another exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["ContentError", "decrypt_content", "decrypt_data", "load_private_key"]


class ContentError(Exception):
    """Encrypted content that cannot be trusted or read; `reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """Load an unencrypted PEM RSA private key; ValueError when it is not one."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the encryption private key must be RSA")
    return key


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ContentError(f"{what} is not base64") from None


def decrypt_data(symmetric_key: bytes, data_b64: str, signature_b64: str) -> bytes:
    """Steps 2 and 3: HMAC check first, then AES-CBC with IV = key[:16], PKCS7 unpadding."""
    if len(symmetric_key) != 32:
        raise ContentError("the data key is not 256 bits")
    data = _b64(data_b64, "data")
    expected = base64.b64encode(hmac.new(symmetric_key, data, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature_b64.strip().encode()):
        raise ContentError("dataSignature does not match (HMAC-SHA256)")
    if not data or len(data) % 16:
        raise ContentError("data is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(symmetric_key), modes.CBC(symmetric_key[:16])).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ContentError("bad PKCS7 padding") from None


def decrypt_content(
    private_key: rsa.RSAPrivateKey, *, data: str, data_signature: str, data_key: str
) -> bytes:
    """All three steps; the plaintext JSON bytes."""
    try:
        symmetric_key = private_key.decrypt(
            _b64(data_key, "dataKey"),
            OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303
        )
    except ValueError:
        raise ContentError("dataKey does not decrypt with this certificate's key") from None
    return decrypt_data(symmetric_key, data, data_signature)
