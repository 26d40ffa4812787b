"""Test hosts in network namespaces, joined by a bridge in a namespace of their own.

Only the network is separate (daemons run under ``nsenter --net``), so their FUSE
mounts are visible to the test.  Links are cut and packets dropped with nft
rules inside each host's namespace; nothing touches the machine's own network.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

SUBNET = "10.231.0"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


class Lab:
    def __init__(self, name: str, n: int):
        self.name = name
        self.switch = f"{name}-sw"
        self.hosts = [f"{name}-h{i}" for i in range(n)]
        sh("ip", "netns", "add", self.switch)
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")
        for i, ns in enumerate(self.hosts):
            sh("ip", "netns", "add", ns)
            a, b = f"{name[:6]}{i}a", f"{name[:6]}{i}b"
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "link", "set", a, "netns", ns)
            sh("ip", "link", "set", b, "netns", self.switch)
            sh("ip", "-n", self.switch, "link", "set", b, "master", "br0")
            sh("ip", "-n", self.switch, "link", "set", b, "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", a)
            sh("ip", "-n", ns, "link", "set", a, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            self.nft(i, "add table inet lab")
            self.nft(i, "add chain inet lab input { type filter hook input priority 0 ; }")
            self.nft(i, "add chain inet lab output { type filter hook output priority 0 ; }")

    def addr(self, i: int) -> str:
        return f"{SUBNET}.{i + 1}"

    def prefix(self, i: int) -> tuple:
        return ("nsenter", f"--net=/run/netns/{self.hosts[i]}")

    def nft(self, i: int, rule: str) -> None:
        sh("ip", "netns", "exec", self.hosts[i], "nft", *rule.split())

    def cut(self, group_a: list[int], group_b: list[int]) -> None:
        """Drop every packet between the two groups (both ways, at both ends)."""
        for a in group_a:
            for b in group_b:
                for x, y in ((a, b), (b, a)):
                    self.nft(x, f"add rule inet lab input ip saddr {self.addr(y)} drop")
                    self.nft(x, f"add rule inet lab output ip daddr {self.addr(y)} drop")

    def lose(self, i: int, percent: int) -> None:
        """Drop ``percent`` % of the packets arriving at host i, at random."""
        self.nft(i, f"add rule inet lab input numgen random mod 100 < {percent} drop")

    def heal(self) -> None:
        for i in range(len(self.hosts)):
            self.nft(i, "flush chain inet lab input")
            self.nft(i, "flush chain inet lab output")

    def close(self) -> None:
        for ns in self.hosts + [self.switch]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def available() -> bool:
    return os.geteuid() == 0 and Path("/usr/bin/nsenter").exists()
