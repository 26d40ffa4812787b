"""Inode numbers for tree paths, counted the way the kernel counts lookups."""
from __future__ import annotations

import pyfuse3

ROOT = pyfuse3.ROOT_INODE


class InodeTable:
    def __init__(self) -> None:
        self._paths: dict[int, tuple] = {ROOT: ()}
        self._inodes: dict[tuple, int] = {(): ROOT}
        self._children: dict[tuple, set] = {}  # path -> names under it that have an inode
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
            self._name(path, ino)
            self._paths[ino] = path
        return ino

    def _name(self, path: tuple, ino: int) -> None:
        self._inodes[path] = ino
        if path:
            self._children.setdefault(path[:-1], set()).add(path[-1])

    def _unname(self, path: tuple) -> None:
        del self._inodes[path]
        siblings = self._children.get(path[:-1])
        if siblings is not None:
            siblings.discard(path[-1])
            if not siblings:
                del self._children[path[:-1]]

    def _below(self, path: tuple) -> list:
        """``path`` (if it has an inode) and every path under it that has one."""
        found, todo = [], [path]
        while todo:
            p = todo.pop()
            if p in self._inodes:
                found.append(p)
            todo.extend(p + (name,) for name in self._children.get(p, ()))
        return found

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
                self._unname(path)

    def removed(self, path: tuple) -> None:
        """The name was removed (rmdir, unlink) through this mount: the kernel has marked
        its inode dead, so what is made under that name next must be a new inode (the old
        number keeps its path until the kernel forgets it, for the files still open)."""
        for p in self._below(path):
            self._unname(p)

    def rename(self, old: tuple, new: tuple) -> None:
        """Move a path (and everything below it) to its new name."""
        self.removed(new)  # what the rename replaced
        moved = [(p, self._inodes[p]) for p in self._below(old)]
        for p, _ in moved:
            self._unname(p)
        for p, i in moved:
            q = new + p[len(old):]
            self._name(q, i)
            self._paths[i] = q
