"""Telling a JSON document that is still arriving from one that can never be valid.

Control files check what has been written at every write(2), so that a shell's
builtin ``echo`` (which ignores the result of close) still sees a bad command
refused; a document split across writes must not be refused half-way.
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional

from circuit import errors

_INCOMPLETE = object()
MAX_DEPTH = 32  # lists and objects inside each other: a command or clause list needs 3
# What a write can end in the middle of: a literal, a number, a \uXXXX escape.
_CUT_TOKEN = re.compile(r"(t(r(ue?)?)?|f(a(l(se?)?)?)?|n(u(ll?)?)?|[-+.0-9eE]+|\\?(u[0-9a-fA-F]{0,4})?)\Z")


def parse(text: bytes, what: str) -> Any:
    """The parsed document; Invalid if the text is not one."""
    result = _parse(text, what)
    if result is _INCOMPLETE:
        raise errors.Invalid(f"{what}: incomplete JSON")
    return result


def check_partial(text: bytes, what: str) -> Optional[Any]:
    """The parsed document, None if more text could still complete it; Invalid otherwise."""
    result = _parse(text, what)
    return None if result is _INCOMPLETE else result


def _parse(text: bytes, what: str) -> Any:
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.end >= len(text) - 1 and e.reason == "unexpected end of data":
            return _INCOMPLETE
        raise errors.Invalid(f"{what}: not UTF-8 text")
    if not s.strip():
        return _INCOMPLETE
    try:
        return _checked(json.loads(s), what)
    except RecursionError:
        raise errors.Invalid(f"{what}: JSON nested deeper than {MAX_DEPTH}") from None
    except json.JSONDecodeError as e:
        if (e.msg.startswith("Unterminated string") or e.pos >= len(s.rstrip())
                or _CUT_TOKEN.match(s, e.pos)):
            return _INCOMPLETE
        raise errors.Invalid(f"{what}: not JSON: {e}")


def _checked(document: Any, what: str, depth: int = 0) -> Any:
    """Refuse what parses but is no document of ours: deep nesting, and strings that
    are not text (a lone surrogate from a ``\\udXXX`` escape cannot become UTF-8)."""
    if depth > MAX_DEPTH:
        raise errors.Invalid(f"{what}: JSON nested deeper than {MAX_DEPTH}")
    if isinstance(document, str):
        _text(document, what)
    elif isinstance(document, list):
        for item in document:
            _checked(item, what, depth + 1)
    elif isinstance(document, dict):
        for key, value in document.items():
            _text(key, what)
            _checked(value, what, depth + 1)
    return document


def _text(s: str, what: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.Invalid(f"{what}: a string holds a lone surrogate (\\ud800-\\udfff): "
                             "not text") from None
