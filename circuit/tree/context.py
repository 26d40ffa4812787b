"""What a control file's opener gets: the element and where it lives."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(eq=False)
class ElementContext:
    tree: Any        # the LocalHostTree
    kind: str
    name: str
    element: Any

    @property
    def path(self) -> str:
        return f"/{self.tree.host_id}/dc/{self.kind}/{self.name}"


def as_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
