"""DKIM public keys for the tests, generated once per process with cryptography."""

from __future__ import annotations

import base64
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def _spki(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@cache
def rsa_p(bits: int) -> str:
    """base64 SubjectPublicKeyInfo of an RSA key of ``bits`` bits, as DKIM's p= holds it."""
    if bits < 1024:
        # cryptography refuses to generate keys under 1024 bits; a public key with a
        # 512-bit modulus can still be encoded, which is all a DKIM record holds.
        modulus = (
            (1 << (bits - 1))
            | int.from_bytes(b"dkim-test-modulus" * 4, "big") % (1 << (bits - 2))
            | 1
        )
        return _spki(rsa.RSAPublicNumbers(65537, modulus).public_key())
    return _spki(rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key())


@cache
def ed25519_p() -> str:
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()
