"""Daraja's two credentials: the STK push password and the initiator's `SecurityCredential`.

Both are easy to get subtly wrong (the timestamp must be Nairobi wall-clock time; the credential is RSA
PKCS#1 v1.5, not OAEP), so they live in one small module that the client and the simulator share.
"""

from __future__ import annotations

import base64
import datetime as dt
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

NAIROBI = ZoneInfo("Africa/Nairobi")
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"


def nairobi_timestamp(now: dt.datetime | None = None) -> str:
    """`YYYYMMDDHHmmss` in Africa/Nairobi time, whatever the server's own time zone."""
    moment = now if now is not None else dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined Nairobi time")
    return moment.astimezone(NAIROBI).strftime(TIMESTAMP_FORMAT)


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """Lipa Na M-Pesa Online password: base64(shortcode + passkey + timestamp)."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


def load_certificate(data: bytes) -> x509.Certificate:
    """Safaricom ships its certificate as PEM (`.cer`); accept DER too."""
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


# Safaricom's public certificates differ by their subject's common name (tests/daraja/certificates/): no
# word in them says "sandbox". Any other certificate (the simulator's, a test's) is of neither.
CERTIFICATE_ENVIRONMENTS = {
    "apicrypt.safaricom.co.ke": "sandbox",
    "apigee.apicaller.safaricom.co.ke": "production",
}


def certificate_environment(data: bytes) -> str:
    """ "sandbox", "production" or "unknown": which Daraja environment a certificate is of, by its subject's
    common name. A credential encrypted with the other environment's certificate is refused at every
    payout, so the settings refuse that pairing before anything is sent."""
    cert = load_certificate(data)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value).strip().lower() if names else ""
    return CERTIFICATE_ENVIRONMENTS.get(common_name, "unknown")


def security_credential(initiator_password: str, certificate: bytes) -> str:
    """base64(RSA PKCS#1 v1.5 encryption of the initiator password with Safaricom's certificate)."""
    public_key = load_certificate(certificate).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("the Daraja certificate does not hold an RSA public key")
    encrypted = public_key.encrypt(initiator_password.encode(), padding.PKCS1v15())
    return base64.b64encode(encrypted).decode("ascii")


def decrypt_security_credential(credential: str, private_key: rsa.RSAPrivateKey) -> str:
    """What M-Pesa does on its side; used by the simulator to check the initiator password."""
    return private_key.decrypt(base64.b64decode(credential, validate=True), padding.PKCS1v15()).decode()


def generate_certificate(
    common_name: str = "Ongea Pesa Daraja simulator (sandbox)",
) -> tuple[bytes, rsa.RSAPrivateKey]:
    """A self-signed RSA certificate (PEM) and its key: the simulator's stand-in for Safaricom's."""
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
