"""Membership messages carried over the peers' PB connections."""
from __future__ import annotations

import json
from typing import Optional

from zope.interface import implementer

from circuit.membership.swim import ITransport
from circuit.pb import wire


@implementer(ITransport)
class PBTransport:
    def __init__(self, peers):
        self._peers = peers

    def ping(self, member_id: str, url: str, rumours: list):
        return self._peers.call(member_id, url, "ping", json.dumps(rumours))

    def ping_req(self, via_id: str, via_url: str, target_id: str, target_url: str, rumours: list):
        return self._peers.call(via_id, via_url, "ping_req", target_id, target_url, json.dumps(rumours))

    def sync(self, member_id: Optional[str], url: str, state: list):
        # A full state is about 90 bytes a member: over Banana's limit past some 7,000 hosts.
        return self._peers.call(member_id, url, "sync", wire.pieces(json.dumps(state)))

    def connected(self, member_id: str) -> bool:
        return self._peers.is_connected(member_id)
