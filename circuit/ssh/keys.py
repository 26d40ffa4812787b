"""The SSH server's own key, made once and kept, and the keys allowed in."""
from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from twisted.conch.checkers import IAuthorizedKeysDB, readAuthorizedKeyFile
from twisted.conch.ssh import keys
from twisted.logger import Logger
from zope.interface import implementer

log = Logger("circuit.ssh")

HOST_KEY_FILE = "ssh_host_ed25519_key"


def host_key(data_dir: str) -> keys.Key:
    """This host's ed25519 key from DATA, made on first use: clients see one stable key."""
    path = os.path.join(data_dir, HOST_KEY_FILE)
    if not os.path.exists(path):
        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
        fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".new", path)  # never half a key
    return keys.Key.fromFile(path)


def fingerprint(key: keys.Key) -> str:
    """As OpenSSH shows it: ``SHA256:`` and base64 without padding."""
    return "SHA256:" + key.fingerprint(keys.FingerprintFormats.SHA256_BASE64).rstrip("=")


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """The public keys in an OpenSSH ``authorized_keys`` file, read again whenever it
    changes (so keys are added and revoked without a restart).  Any user name may
    log in with a listed key: the key is the identity, as with a service account."""

    def __init__(self, path: str):
        self.path = path
        self._stamp = None
        self._keys: list = []

    def getAuthorizedKeys(self, username: bytes):
        try:
            s = os.stat(self.path)
        except OSError as e:
            if self._stamp != "missing":  # said once, not at every attempt
                log.warn("no authorized keys: cannot read {path} ({why}); every login is refused",
                         path=self.path, why=e.strerror)
            self._stamp, self._keys = "missing", []
            return []
        stamp = (s.st_ino, s.st_size, s.st_mtime_ns)
        if stamp != self._stamp:
            with open(self.path, "rb") as f:
                self._keys = list(readAuthorizedKeyFile(f, parseKey=keys.Key.fromString))
            self._stamp = stamp
            log.info("{n} authorized SSH keys in {path}", n=len(self._keys), path=self.path)
        return self._keys
