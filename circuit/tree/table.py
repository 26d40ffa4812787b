"""Control files declared as one table per element kind."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from circuit.interfaces import ICaller, IHandle, OpenFlags

Opener = Callable[[Any, OpenFlags, ICaller], IHandle]
ClauseMaker = Callable[[Any, str, str], Any]


@dataclass(frozen=True)
class ControlFile:
    """One file of an element: its name, modes, how it opens, and how a select waits on it.

    ``open`` gets the element context (element, its name, the host tree), the
    flags and the caller, and returns an IHandle.  ``clause`` makes a select
    clause for op ``r`` or ``w``; files without one cannot be selected on.
    ``applies``: a whole value written takes effect at that write(2), not at close
    (`circuit.tree.handles.APPLIED`).
    """
    name: str
    mode: str                      # "r", "w" or "rw"
    open: Opener
    streaming: bool = False
    clause: Optional[ClauseMaker] = None
    applies: bool = False

    @property
    def permissions(self) -> int:
        return (0o444 if "r" in self.mode else 0) | (0o222 if "w" in self.mode else 0)


def table(*files: ControlFile) -> dict[str, ControlFile]:
    return {f.name: f for f in files}
