"""The simulator's own certificate and the decryption of a `SecurityCredential` sent with it."""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def new_certificate(common_name: str = "Ongea Pesa Daraja simulator") -> tuple[bytes, rsa.RSAPrivateKey]:
    """A self-signed certificate (PEM) and its key: clients encrypt the initiator password with it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key


def decrypt_credential(credential: str, key: rsa.RSAPrivateKey) -> str | None:
    """The initiator password inside a `SecurityCredential` (RSA PKCS#1 v1.5, base64), or None."""
    try:
        return key.decrypt(base64.b64decode(credential, validate=True), padding.PKCS1v15()).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
