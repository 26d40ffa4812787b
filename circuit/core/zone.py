"""Zone-file lines, read strictly: what a DNS element's ``set`` takes and ``records`` shows.

One line is ``NAME [TTL] [CLASS] TYPE RDATA`` (TTL and class in either order, the class
only ``IN``), as in a master file (RFC 1035, section 5.1) without its directives:
no ``$ORIGIN``, no ``@``, no relative names, no parentheses.  Every name is absolute;
the final dot may be left out.  Types: A, AAAA, CNAME, SRV, TXT, MX, NS.  A line
that is anything else is refused with the line in the reason; nothing here knows
where the records are served.
"""
from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass
from typing import Any

from twisted.names import dns

from circuit import errors

DEFAULT_TTL = 60  # seconds: services move, and a resolver should ask again soon
MAX_TTL = 2**31 - 1  # RFC 2181, section 8
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")  # letters, digits, -, and _ for SRV


@dataclass(frozen=True)
class Record:
    """One resource record: its owner name (lowercase, with the final dot), TTL, type,
    its data as a zone file writes it, and the twisted.names payload that is served."""
    name: str
    ttl: int
    type: str
    rdata: str
    payload: Any

    def line(self) -> str:
        return f"{self.name} {self.ttl} IN {self.type} {self.rdata}"


def _refuse(line: str, why: str) -> errors.CircuitError:
    shown = line if len(line) <= 120 else line[:117] + "..."
    return errors.Invalid(f"{why}: {shown!r}")


def domain(text: str, line: str = "") -> str:
    """An absolute domain name, lowercase, with its final dot."""
    name = text.lower()
    if name == ".":
        return name
    if not name.endswith("."):
        name += "."
    labels = name[:-1].split(".")
    if len(name) > 254 or not all(_LABEL.match(label) for label in labels):
        raise _refuse(line or text, f"bad domain name {text!r} (labels of letters, digits, - and _, "
                                    "at most 63 each, 253 in all)")
    return name


def _digits(word: str) -> bool:
    return word.isascii() and word.isdigit()


def _number(word: str, most: int, what: str, line: str) -> int:
    if not _digits(word) or int(word) > most:
        raise _refuse(line, f"{what} must be a whole number from 0 to {most}, not {word!r}")
    return int(word)


def _address(word: str, version: int, line: str) -> str:
    try:
        address = ipaddress.ip_address(word)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise _refuse(line, f"{'A' if version == 4 else 'AAAA'} wants an IPv{version} address, not {word!r}")
    return str(address)


def _arity(words: list, n: int, kind: str, form: str, line: str) -> None:
    if len(words) != n:
        raise _refuse(line, f"{kind} wants {form}")


def _rdata(kind: str, rest: str, line: str) -> tuple[str, Any]:
    """The canonical rdata text and the payload of a record of type ``kind``."""
    words = rest.split()
    if kind == "A":
        _arity(words, 1, kind, "one IPv4 address", line)
        a = _address(words[0], 4, line)
        return a, dns.Record_A(a)
    if kind == "AAAA":
        _arity(words, 1, kind, "one IPv6 address", line)
        a = _address(words[0], 6, line)
        return a, dns.Record_AAAA(a)
    if kind in ("CNAME", "NS"):
        _arity(words, 1, kind, "one domain name", line)
        target = domain(words[0], line)
        record = dns.Record_CNAME if kind == "CNAME" else dns.Record_NS
        return target, record(target.encode())
    if kind == "MX":
        _arity(words, 2, kind, "PREFERENCE NAME", line)
        pref, target = _number(words[0], 65535, "an MX preference", line), domain(words[1], line)
        return f"{pref} {target}", dns.Record_MX(pref, target.encode())
    if kind == "SRV":
        _arity(words, 4, kind, "PRIORITY WEIGHT PORT TARGET", line)
        priority, weight, port = (_number(w, 65535, what, line) for w, what in
                                  zip(words, ("an SRV priority", "an SRV weight", "an SRV port")))
        target = domain(words[3], line)
        return f"{priority} {weight} {port} {target}", dns.Record_SRV(priority, weight, port, target.encode())
    if kind == "TXT":
        return _txt(rest, line)
    raise _refuse(line, f"type {kind!r} is not served: use A, AAAA, CNAME, SRV, TXT, MX or NS")


def _txt(rest: str, line: str) -> tuple[str, Any]:
    try:
        lex = shlex.shlex(rest, posix=True)
        lex.whitespace_split = True
        lex.commenters = ""
        lex.escapedquotes = '"'
        lex.quotes = '"'
        strings = list(lex)
    except ValueError:
        raise _refuse(line, "TXT: an unclosed quote")
    if not strings:
        raise _refuse(line, "TXT wants one or more strings")
    encoded = [s.encode() for s in strings]
    if any(len(s) > 255 for s in encoded):
        raise _refuse(line, "TXT: a string holds at most 255 bytes (write several)")
    shown = " ".join('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' for s in strings)
    return shown, dns.Record_TXT(*encoded)


_TYPES = ("A", "AAAA", "CNAME", "SRV", "TXT", "MX", "NS")


def parse_line(line: str) -> Record:
    """One zone-file line as a Record; Invalid, with the line, if it is not one."""
    if any(ord(c) < 32 and c != "\t" for c in line):
        raise _refuse(line, "a record is one line of printable text")
    words = line.split(None, 1)
    if len(words) < 2:
        raise _refuse(line, "a record is NAME [TTL] [IN] TYPE DATA")
    name, rest = domain(words[0], line), words[1]
    ttl = klass = None
    while True:  # TTL and class, in either order, each at most once
        parts = rest.split(None, 1) or [""]
        head, tail = parts[0], (parts[1] if len(parts) == 2 else "")
        if _digits(head) and ttl is None:
            ttl = _number(head, MAX_TTL, "a TTL", line)
        elif head.upper() in ("IN", "CH", "HS", "CS") and klass is None:
            klass = head.upper()
            if klass != "IN":
                raise _refuse(line, f"class {head} is not served: only IN")
        else:
            break
        rest = tail
    kind = head.upper()
    if kind not in _TYPES:
        raise _refuse(line, f"type {head!r} is not served: use A, AAAA, CNAME, SRV, TXT, MX or NS"
                      if head else "a record is NAME [TTL] [IN] TYPE DATA")
    rdata, payload = _rdata(kind, tail, line)
    ttl = DEFAULT_TTL if ttl is None else ttl
    payload.ttl = ttl
    return Record(name, ttl, kind, rdata, payload)


def parse_lines(text: str, first: int = 1, empty_ok: bool = False) -> list[Record]:
    """Every record of ``text``: one a line (numbered from ``first``, for the refusal);
    blank lines and ``;`` comments are skipped."""
    records = []
    for number, line in enumerate(text.splitlines(), first):
        stripped = line.strip()
        if not stripped or stripped.startswith(";"):
            continue
        try:
            records.append(parse_line(stripped))
        except errors.Invalid as e:
            raise errors.Invalid(f"set: line {number}: {e.message}; nothing was set")
    if not records and not empty_ok:
        raise errors.Invalid("set: no record given (NAME [TTL] [IN] TYPE DATA, one a line)")
    return records
