"""Twisted TLS options for mutual TLS between hosts of one cluster."""
from __future__ import annotations

from twisted.internet import ssl

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


def client_options(creds: HostCredentials, peer_id: str):
    """Checks that the server's certificate is the cluster's and names ``peer_id``."""
    return ssl.optionsForClientTLS(
        peer_id, trustRoot=ssl.Certificate.loadPEM(creds.root_pem),
        clientCertificate=_private(creds),
        extraCertificateOptions={"extraCertChain": [c.original for c in _chain(creds)],
                                 "raiseMinimumTo": ssl.TLSVersion.TLSv1_2})

