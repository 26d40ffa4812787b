"""Banana's decoder in linear time: the same tokens, the same limits, fewer copies.

Twisted's ``Banana.dataReceived`` copies the rest of its buffer after every token
(``rest = buffer[pos + 1:]``) and joins each new chunk to everything still unread.  A
connection carrying many messages at once, or one string of 64 KiB arriving in TLS
records of 16 KiB, pays for the same bytes again and again: 64 KiB messages from
sixteen concurrent senders moved at 28 MB/s, against 60 MB/s from one.  This decoder
walks the buffer with an offset, and keeps the pieces of an unfinished string in a
list until they are all there.  What it accepts and refuses is Banana's: the prefix
limit, the size limit, the type bytes, the vocabulary only in the ``pb`` dialect.
"""
from __future__ import annotations

import re
import struct

from twisted.spread import banana
from twisted.spread.banana import BananaError

_PREFIX = re.compile(rb"[\x00-\x7f]*")  # base-128 digits run until the type byte
_HEADED = {banana.STRING[0], banana.FLOAT[0]}


def _number(digits: bytes) -> int:
    """Base 128, least significant digit first."""
    n = 0
    for digit in reversed(digits):
        n = (n << 7) | digit
    return n


class LinearDecoding:
    """Mixed into a ``Banana`` (here, PB's ``Broker``) before it: replaces dataReceived."""

    _pieces: list | None = None  # an unfinished string or float: its pieces so far
    _have = 0
    _need = 0

    def dataReceived(self, chunk: bytes) -> None:
        if self._pieces is not None:
            self._pieces.append(chunk)
            self._have += len(chunk)
            if self._have < self._need:
                return
            buffer = b"".join(self._pieces)
            self._pieces = None
        elif self.buffer:
            buffer = self.buffer + chunk
        else:
            buffer = chunk
        self.buffer = b""
        self._decode(buffer)

    def _decode(self, buffer: bytes) -> None:
        list_stack = self.listStack
        got = self.gotItem
        limit = self.prefixLimit
        pos, end = 0, len(buffer)
        while pos < end:
            start = pos
            num = buffer[pos]
            if num < 0x80 and pos + 1 < end and buffer[pos + 1] >= 0x80:
                typed = pos + 1  # one digit, then the type byte: most tokens of a small message
            else:
                typed = _PREFIX.match(buffer, pos).end()
                if typed - pos > limit:
                    raise BananaError(f"Security precaution: more than {limit} bytes of prefix")
                if typed == end:
                    self.buffer = buffer[start:]
                    return
                num = _number(buffer[pos:typed])
            kind = buffer[typed]
            pos = typed + 1
            if kind in _HEADED:
                size = 8 if kind == banana.FLOAT[0] else num
                if kind != banana.FLOAT[0] and num > banana.SIZE_LIMIT:
                    raise BananaError("Security precaution: String too long.")
                if end - pos < size:  # wait for the rest, without joining each piece
                    self._pieces = [buffer[start:]]
                    self._have = end - start
                    self._need = pos - start + size
                    return
                body = buffer[pos:pos + size]
                pos += size
                got(body if kind != banana.FLOAT[0] else struct.unpack("!d", body)[0])
            elif kind == banana.LIST[0]:
                if num > banana.SIZE_LIMIT:
                    raise BananaError("Security precaution: List too long.")
                list_stack.append((num, []))
            elif kind in (banana.INT[0], banana.LONGINT[0]):
                got(num)
            elif kind in (banana.NEG[0], banana.LONGNEG[0]):
                got(-num)
            elif kind == banana.VOCAB[0]:
                item = self.incomingVocabulary[num]
                if self.currentDialect != b"pb":
                    raise NotImplementedError(f"Invalid item for pb protocol {item!r}")
                got(item)
            else:
                raise NotImplementedError(f"Invalid Type Byte {bytes([kind])!r}")
            while list_stack and len(list_stack[-1][1]) == list_stack[-1][0]:
                got(list_stack.pop()[1])
