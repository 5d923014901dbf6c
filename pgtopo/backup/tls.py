"""The certificates of one pgBackRest backup: a certificate authority made for it, a server
certificate for the nodes' `pgbackrest server`, a client certificate for the backup job.

Made in memory by backup.take for each `pgtopo backup` of method pgbackrest, written into the
containers that use them (files 0600 of the postgres user, under /tmp) and removed with them: the
authority's key is never written anywhere, so nothing a backup leaves behind can open a
connection to a node.  Valid for a day (a backup longer than that gets no new connection).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_NAME = "pgtopo-backup"  # the client certificate's common name: what the servers admit
LIFETIME = timedelta(days=1)


@dataclass(frozen=True)
class Credentials:
    """PEM texts: the authority's certificate, and a certificate with its key for each side."""

    ca: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _signed(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
            issuer_key: ec.EllipticCurvePrivateKey, now: datetime,
            extensions: list[tuple[x509.ExtensionType, bool]]) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
               .not_valid_after(now + LIFETIME))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def make(server_names: list[str], cluster: str) -> Credentials:
    """An authority for this backup only, a server certificate valid for `server_names` (the
    node containers' names on the cluster's network), and the client certificate CLIENT_NAME."""
    now = datetime.now(UTC)
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_name = _name(f"pgtopo backup authority of {cluster}")
    ca = _signed(ca_name, ca_key, ca_name, ca_key, now,
                 [(x509.BasicConstraints(ca=True, path_length=0), True),
                  (x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                 data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                 encipher_only=False, decipher_only=False), True)])
    server = _signed(_name(server_names[0]), server_key, ca_name, ca_key, now,
                     [(x509.SubjectAlternativeName([x509.DNSName(n) for n in server_names]), False),
                      (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)])
    client = _signed(_name(CLIENT_NAME), client_key, ca_name, ca_key, now,
                     [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)])
    pem = serialization.Encoding.PEM
    return Credentials(ca=ca.public_bytes(pem), server_cert=server.public_bytes(pem), server_key=_key_pem(server_key),
                       client_cert=client.public_bytes(pem), client_key=_key_pem(client_key))
