"""Pure timing rules, kept apart from the timers so they can be tested alone."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Defaults suit a LAN: a killed host is declared dead in about 2 s."""
    probe_interval: float = 0.5     # one member probed per interval
    probe_timeout: float = 0.3      # a direct ping unanswered for this long ...
    indirect_probes: int = 3        # ... is retried through this many others
    suspicion_min: float = 1.0      # a suspect refutes within this, or is dead (at best) ...
    suspicion_max: float = 3.0      # ... and this, with nobody else confirming
    gossip_per_message: int = 8     # rumours piggybacked on each message
    retransmit_mult: int = 4        # each rumour is sent retransmit_mult * log(N+1) times
    sync_interval: float = 10.0     # full state exchange with one random member
    reconnect_interval: float = 2.0  # try one dead member again (heals partitions)
    tombstone: float = 600.0        # forget dead members after this long
    connect_allowance: float = 2.0  # extra time for a probe that must first dial the member
    max_health: int = 8             # Lifeguard: a struggling host waits up to (1 + 8) x longer


def suspicion_timeout(timing: Timing, confirmations: int, expected: int) -> float:
    """Lifeguard: start at the maximum and fall toward the minimum, logarithmically,
    as independent members confirm the suspicion."""
    if expected <= 0 or confirmations >= expected:
        return timing.suspicion_min
    fraction = math.log(confirmations + 1) / math.log(expected + 1)
    span = timing.suspicion_max - timing.suspicion_min
    return max(timing.suspicion_min, timing.suspicion_max - span * fraction)


def retransmits(timing: Timing, members: int) -> int:
    return max(1, int(math.ceil(timing.retransmit_mult * math.log10(members + 1))))
