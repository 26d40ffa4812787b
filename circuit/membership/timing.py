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
    suspicion_max: float = 3.0      # ... and this, with nobody else confirming, times
                                    # max(1, log10(members)): see suspicion_timeout
    gossip_per_message: int = 8     # rumours piggybacked on each message
    gossip_interval: float = 0.2    # news is pushed once, at the next interval ...
    gossip_nodes: int = 3           # ... to this many members (0: piggybacked only)
    retransmit_mult: int = 4        # each rumour is sent retransmit_mult * log(N+1) times
    sync_interval: float = 10.0     # full state exchange with one random member
    reconnect_interval: float = 2.0  # try one dead member again (heals partitions)
    tombstone: float = 600.0        # forget dead members after this long
    connect_allowance: float = 2.0  # extra time for a probe that must first dial the member
    suspect_checks: int = 4         # suspicions heard probed at once (a mass failure costs
                                    # each host this many probes in flight, not one a suspect)
    max_health: int = 8             # Lifeguard: a struggling host waits up to (1 + 8) x longer


def suspicion_timeout(timing: Timing, confirmations: int, expected: int, members: int = 1) -> float:
    """Lifeguard: start at the maximum and fall toward the minimum, logarithmically,
    as independent members confirm the suspicion.

    The maximum grows with log10 of the cluster's size, as memberlist's bounds do: an
    unconfirmed suspicion is most often one lost probe, and the suspect's refutation
    travels by gossip, which takes O(log N) rounds to reach everyone (3-4 s at a thousand
    hosts).  The minimum does not: it is reached only once independent members' own
    probes failed too, and a real crash should be declared as fast at any size."""
    scale = max(1.0, math.log10(max(1, members)))
    low, high = timing.suspicion_min, timing.suspicion_max * scale
    if expected <= 0 or confirmations >= expected:
        return low
    fraction = math.log(confirmations + 1) / math.log(expected + 1)
    return max(low, high - (high - low) * fraction)


def retransmits(timing: Timing, members: int) -> int:
    return max(1, int(math.ceil(timing.retransmit_mult * math.log10(members + 1))))
