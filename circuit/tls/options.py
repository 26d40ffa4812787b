"""Twisted TLS options for mutual TLS between hosts of one cluster."""
from __future__ import annotations

from OpenSSL import SSL
from service_identity import VerificationError
from service_identity.hazmat import DNS_ID, verify_service_identity
from service_identity.pyopenssl import extract_patterns
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer

from circuit.tls.authority import HostCredentials


def _private(creds: HostCredentials) -> ssl.PrivateCertificate:
    return ssl.PrivateCertificate.loadPEM(creds.key_pem + creds.cert_pem)


def _chain(creds: HostCredentials) -> list[ssl.Certificate]:
    return [ssl.Certificate.loadPEM(pem) for pem in creds.chain_pem]


def server_options(creds: HostCredentials) -> ssl.CertificateOptions:
    """Requires a client certificate that the cluster CA signed; anything else fails the handshake."""
    mine = _private(creds)
    return ssl.CertificateOptions(
        privateKey=mine.privateKey.original, certificate=mine.original,
        extraCertChain=[c.original for c in _chain(creds)],
        verify=True, requireCertificate=True,
        caCerts=[ssl.Certificate.loadPEM(creds.root_pem).original],
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2)


class ClientTLS:
    """What this process dials other hosts with: one OpenSSL context for every connection.

    `ssl.optionsForClientTLS` makes a context per call (the key, the chain, the CA
    loaded again): about 30 KiB and 1.6 ms a dial (bench/scale.py), and a host dials
    every member it probes.  A connection here is made from the shared context, and
    checks on its own (`_ToPeer`) that the certificate names the host it dialled."""

    def __init__(self, creds: HostCredentials):
        mine = _private(creds)
        self._options = ssl.CertificateOptions(
            privateKey=mine.privateKey.original, certificate=mine.original,
            extraCertChain=[c.original for c in _chain(creds)],
            trustRoot=ssl.Certificate.loadPEM(creds.root_pem),
            raiseMinimumTo=ssl.TLSVersion.TLSv1_2)

    def to(self, peer_id: str) -> "_ToPeer":
        return _ToPeer(self._options, peer_id)


@implementer(IOpenSSLClientConnectionCreator)
class _ToPeer:
    """A connection to ``peer_id``: the cluster CA must have signed its certificate (the
    context checks that) and the certificate must name ``peer_id`` (checked here, per
    connection, as Twisted's own client options do)."""

    def __init__(self, options: ssl.CertificateOptions, peer_id: str):
        self._options = options
        self._peer_id = peer_id
        self._wanted = [DNS_ID(peer_id)]

    def clientConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        connection = self._options.clientConnectionForTLS(tlsProtocol)
        connection.set_tlsext_host_name(self._peer_id.encode("ascii"))
        connection.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self._verify)
        return connection

    def _verify(self, connection, cert, errno: int, depth: int, ok: int) -> bool:
        if not ok or depth != 0:  # the chain: as OpenSSL found it against the CA
            return bool(ok)
        try:
            verify_service_identity(extract_patterns(cert), self._wanted, [])
        except VerificationError:
            return False  # another host's certificate: the handshake fails
        return True

