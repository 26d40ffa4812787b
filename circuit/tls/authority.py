"""A cluster CA and the certificates it signs.

Layout of a CA directory: ``ca.pem`` (the root every host trusts) and, where
this host may sign, either ``ca.key`` (the root's own key) or ``signer.pem`` +
``signer.key`` (a signing certificate the root issued to this host with
``circuit ca issue``, limited to signing host certificates).

A host makes itself a new certificate at every start, naming its new host ID
(``X`` + 16 hex digits) as its DNS subjectAltName: a peer dialling
``circuit://addr/XID`` checks that whoever answers is that host.
"""
from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from circuit import errors

ROOT_DAYS = 3650
SIGNER_DAYS = 3650
HOST_DAYS = 365
CLIENT_DAYS = 365
HOST_ID = re.compile(r"X[0-9a-f]{16}")
CLIENT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "circuit"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _ca_certificate(subject: x509.Name, key, issuer: x509.Name, issuer_key, path_length: int,
                    days: int) -> x509.Certificate:
    """A certificate that may sign: the root (path length 1) or a host's signer (0)."""
    now = _now()
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False)
            .sign(issuer_key, hashes.SHA256()))


def _write(path: str, data: bytes, private: bool = False) -> None:
    """Whole or not at all: written beside, synced, then renamed over (a crash never
    leaves half a key)."""
    partial = path + ".new"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


@dataclass
class Signer:
    """Whatever signs host certificates here: the root itself, or a delegated signer."""
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    chain: list[x509.Certificate]  # certificates between the host's and the root, if any


@dataclass
class Authority:
    root: x509.Certificate
    signer: Optional[Signer]
    directory: str

    @property
    def root_pem(self) -> bytes:
        return cert_pem(self.root)


def init(directory: str, name: str = "circuit cluster CA") -> Authority:
    """Make a new cluster CA in ``directory`` (refused if one is there)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if os.path.exists(os.path.join(directory, "ca.pem")):
        raise errors.Exists(f"{directory} already holds a CA (ca.pem)")
    key = _key()
    cert = _ca_certificate(_name(name), key, _name(name), key, path_length=1, days=ROOT_DAYS)
    _write(os.path.join(directory, "ca.key"), key_pem(key), private=True)
    _write(os.path.join(directory, "ca.pem"), cert_pem(cert))
    return load(directory)


def load(directory: str) -> Authority:
    try:
        with open(os.path.join(directory, "ca.pem"), "rb") as f:
            root = x509.load_pem_x509_certificate(f.read())
    except FileNotFoundError:
        raise errors.NotFound(f"no cluster CA in {directory} (make one with: circuit ca init DIR)")
    signer = None
    ca_key = os.path.join(directory, "ca.key")
    signer_cert = os.path.join(directory, "signer.pem")
    if os.path.exists(ca_key):
        with open(ca_key, "rb") as f:
            signer = Signer(serialization.load_pem_private_key(f.read(), None), root, [])
    elif os.path.exists(signer_cert):
        with open(signer_cert, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(os.path.join(directory, "signer.key"), "rb") as f:
            signer = Signer(serialization.load_pem_private_key(f.read(), None), cert, [cert])
    return Authority(root, signer, directory)


def issue_signer(authority: Authority, out_directory: str, name: str = "circuit host signer",
                 days: int = SIGNER_DAYS) -> None:
    """Give a host without the root key what it needs to certify itself at every start.

    Writes ``ca.pem``, ``signer.pem`` and ``signer.key`` into ``out_directory``:
    use it as that host's ``--ca``.
    """
    if authority.signer is None or authority.signer.chain:
        raise errors.NotPermitted("issuing a signer needs the root key (ca.key)")
    key = _key()
    cert = _ca_certificate(_name(name), key, authority.root.subject, authority.signer.key,
                           path_length=0, days=days)
    os.makedirs(out_directory, mode=0o700, exist_ok=True)
    _write(os.path.join(out_directory, "ca.pem"), authority.root_pem)
    _write(os.path.join(out_directory, "signer.pem"), cert_pem(cert))
    _write(os.path.join(out_directory, "signer.key"), key_pem(key), private=True)


@dataclass
class HostCredentials:
    """A host's key and certificate chain, in PEM."""
    key_pem: bytes
    cert_pem: bytes          # the host's own certificate
    chain_pem: list[bytes]   # intermediates, leaf first
    root_pem: bytes


def issue_host(authority: Authority, host_id: str, days: int = HOST_DAYS,
               not_before: Optional[datetime.datetime] = None) -> HostCredentials:
    """A new key and certificate naming ``host_id``, for both ends of a TLS connection."""
    if authority.signer is None:
        raise errors.NotPermitted(
            f"{authority.directory} has no ca.key or signer.key: this host cannot certify itself; "
            "on a host with the CA key run: circuit ca issue --ca CA_DIR OUT_DIR")
    key = _key()
    start = not_before or (_now() - datetime.timedelta(minutes=5))
    signer = authority.signer
    cert = (x509.CertificateBuilder()
            .subject_name(_name(host_id)).issuer_name(signer.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_id)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(signer.key, hashes.SHA256()))
    return HostCredentials(key_pem(key), cert_pem(cert), [cert_pem(c) for c in signer.chain],
                           authority.root_pem)


def client_credentials(authority: Authority, name: str = "client",
                       days: int = CLIENT_DAYS) -> "HostCredentials":
    """A new key and client certificate: it names no host (its DNS name is
    ``client.NAME``) and may authenticate only as a TLS client, so a host lets it use
    elements, never make membership calls, and no host dialling a member accepts it."""
    if authority.signer is None:
        raise errors.NotPermitted(f"{authority.directory} has no ca.key or signer.key to sign with")
    if not CLIENT_NAME.fullmatch(name):
        raise errors.Invalid(f"a client name is 1-48 of a-z 0-9 and -, not {name!r}")
    key = _key()
    start = _now() - datetime.timedelta(minutes=5)
    signer = authority.signer
    cert = (x509.CertificateBuilder()
            .subject_name(_name(f"client {name}")).issuer_name(signer.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"client.{name}")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(signer.key, hashes.SHA256()))
    return HostCredentials(key_pem(key), cert_pem(cert), [cert_pem(c) for c in signer.chain],
                           authority.root_pem)


def issue_client(authority: Authority, out_directory: str, name: str = "client",
                 days: int = CLIENT_DAYS) -> None:
    """A client's credentials in ``out_directory``: ``ca.pem``, ``client.pem`` (with the
    signer's certificate after it, if any) and ``client.key``."""
    creds = client_credentials(authority, name, days)
    os.makedirs(out_directory, mode=0o700, exist_ok=True)
    _write(os.path.join(out_directory, "ca.pem"), creds.root_pem)
    _write(os.path.join(out_directory, "client.pem"), creds.cert_pem + b"".join(creds.chain_pem))
    _write(os.path.join(out_directory, "client.key"), creds.key_pem, private=True)


def host_id_of(cert: x509.Certificate) -> Optional[str]:
    """The host ID a certificate names, if it is a host's certificate (see `role_of`)."""
    if role_of(cert) != "host":
        return None
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return next(n for n in names.get_values_for_type(x509.DNSName) if HOST_ID.fullmatch(n))


def role_of(cert: x509.Certificate) -> str:
    """"host" for a certificate that names a host ID and may serve (a member), else
    "client" (may use elements only).  The CA signed both; the role is in the names."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "client"
    if ExtendedKeyUsageOID.SERVER_AUTH in usage and any(
            HOST_ID.fullmatch(n) for n in names.get_values_for_type(x509.DNSName)):
        return "host"
    return "client"
