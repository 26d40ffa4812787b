"""Where a client finds its certificate: a client directory, or a host's data directory."""
from __future__ import annotations

import os

from cryptography import x509

from circuit import errors
from circuit.tls import authority
from circuit.tls.authority import HostCredentials, cert_pem


def load_credentials(data: str) -> HostCredentials:
    """``DATA/client.pem`` + ``client.key`` + ``ca.pem`` (from ``circuit ca client``); else,
    on a host's own machine, a client certificate signed now with its CA (``DATA/ca``)."""
    pem, key, root = (os.path.join(data, n) for n in ("client.pem", "client.key", "ca.pem"))
    if all(os.path.exists(p) for p in (pem, key, root)):
        with open(pem, "rb") as f:
            certs = x509.load_pem_x509_certificates(f.read())
        with open(key, "rb") as f:
            key_pem = f.read()
        with open(root, "rb") as f:
            root_pem = f.read()
        return HostCredentials(key_pem, cert_pem(certs[0]), [cert_pem(c) for c in certs[1:]], root_pem)
    ca = os.path.join(data, "ca")
    if os.path.exists(os.path.join(ca, "ca.pem")):
        try:
            return authority.client_credentials(authority.load(ca), "client")
        except errors.NotPermitted:
            pass
    raise errors.NotFound(f"no client credentials in {data}: make them with "
                          f"circuit ca client --ca CA_DIR {data}, or use a host's data directory")
