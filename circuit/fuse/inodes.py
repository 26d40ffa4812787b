"""Inode numbers for tree paths, counted the way the kernel counts lookups."""
from __future__ import annotations

import pyfuse3

ROOT = pyfuse3.ROOT_INODE


class InodeTable:
    def __init__(self) -> None:
        self._paths: dict[int, tuple] = {ROOT: ()}
        self._inodes: dict[tuple, int] = {(): ROOT}
        self._lookups: dict[int, int] = {}
        self._next = ROOT + 1

    def path(self, inode: int) -> tuple:
        return self._paths[inode]

    def inode(self, path: tuple) -> int:
        """The inode for a path, made if new (not counted as a lookup)."""
        ino = self._inodes.get(path)
        if ino is None:
            ino = self._next
            self._next += 1
            self._inodes[path] = ino
            self._paths[ino] = path
        return ino

    def looked_up(self, path: tuple) -> int:
        ino = self.inode(path)
        self._lookups[ino] = self._lookups.get(ino, 0) + 1
        return ino

    def forget(self, ino: int, count: int) -> None:
        left = self._lookups.get(ino, 0) - count
        if left > 0:
            self._lookups[ino] = left
            return
        self._lookups.pop(ino, None)
        if ino != ROOT:
            path = self._paths.pop(ino, None)
            if path is not None and self._inodes.get(path) == ino:
                del self._inodes[path]

    def rename(self, old: tuple, new: tuple) -> None:
        """Move a path (and everything below it) to its new name."""
        moved = [(p, i) for p, i in self._inodes.items() if p[: len(old)] == old]
        for p, i in moved:
            del self._inodes[p]
        for p, i in moved:
            q = new + p[len(old):]
            self._inodes[q] = i
            self._paths[i] = q
