"""The JSON command a process is started with, checked before anything runs."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Optional

from circuit import errors, jsondoc

_KEYS = {"env", "dir", "path", "args", "scrub"}


@dataclass(frozen=True)
class Command:
    path: str
    args: list[str] = field(default_factory=list)
    env: Optional[list[str]] = None
    dir: Optional[str] = None
    scrub: bool = False

    @classmethod
    def parse(cls, text: bytes) -> "Command":
        """Parse and check a ``run`` file's content; raise Invalid with the reason."""
        return cls.from_json(jsondoc.parse(text, "run"))

    @classmethod
    def from_json(cls, obj) -> "Command":
        if not isinstance(obj, dict):
            raise errors.Invalid("run: want a JSON object like {\"path\": \"/bin/ls\", \"args\": [\"-l\"]}")
        unknown = set(obj) - _KEYS
        if unknown:
            raise errors.Invalid(f"run: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
        path = obj.get("path")
        if not isinstance(path, str) or not path:
            raise errors.Invalid("run: \"path\" is required and must be a string")
        args = obj.get("args", [])
        if not _strings(args):
            raise errors.Invalid("run: \"args\" must be a list of strings")
        env = obj.get("env")
        if env is not None and not (_strings(env) and all(e.partition("=")[0] and "=" in e for e in env)):
            raise errors.Invalid("run: \"env\" must be a list of \"NAME=value\" strings")
        d = obj.get("dir")
        if d is not None and not isinstance(d, str):
            raise errors.Invalid("run: \"dir\" must be a string")
        scrub = obj.get("scrub", False)
        if not isinstance(scrub, bool):
            raise errors.Invalid("run: \"scrub\" must be true or false")
        if any("\0" in s for s in [path, *args, *(env or []), d or ""]):
            raise errors.Invalid("run: strings cannot hold a NUL character")
        return cls(path=path, args=list(args), env=None if env is None else list(env), dir=d, scrub=scrub)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def environment(self, inherited: dict[str, str]) -> dict[str, str]:
        if self.env is None:
            return dict(inherited)
        return dict(e.split("=", 1) for e in self.env)

    def executable(self, environment: dict[str, str]) -> str:
        """The file to exec, found as execvp would; NotFound/ReadOnly if there is none."""
        if "/" in self.path:
            candidates = [os.path.join(self.dir or ".", self.path)]
        else:
            search = environment.get("PATH", os.defpath)
            candidates = [os.path.join(p or ".", self.path) for p in search.split(os.pathsep)]
        for c in candidates:
            if os.path.isfile(c):
                if not os.access(c, os.X_OK):
                    raise errors.ReadOnly(f"run: {c} is not executable")
                return c
        raise errors.NotFound(f"run: no such program: {self.path}")


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
