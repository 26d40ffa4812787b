"""Whole-file operations, the element operations every view and the client share.

A send, a cap, a run command, a signal: each is one content written whole into
one file and delivered at its close.  `put` is that, and `make` an element with
its first file (a channel and its cap, a process and its run); `get` is the
other way, a message or a record read whole (recv, waitexit, stat).  A host's tree
offers put and make (`IHostTree.put`, `IHostTree.make`) so that another host's
tree can ask for each in one message rather than rebuild it from open, write,
flush and release; the functions here are what they do on the owning host, over
the tree's own files, and what a remote tree falls back to for a content bigger
than one message.  A get is one message already: a remote open travels with its
first read.
"""
from __future__ import annotations

from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.logger import Logger

from circuit import errors
from circuit.interfaces import ICaller, ICircuit, IHostTree, OpenFlags
from circuit.tree.handles import hand_over

log = Logger("circuit")

PUT = OpenFlags(read=False, write=True, truncate=True, create=True)
GET = OpenFlags(read=True, whole=True)
CHUNK = 256 * 1024  # what one read asks for


def put(tree: IHostTree, path: tuple, data: bytes, caller: ICaller) -> Deferred:
    """Deferred: open ``path`` for ``caller``, write ``data``, deliver it, close.

    The delivery (a flush) may wait, as a send into a full channel does; cancel
    the Deferred to give up, and nothing is delivered."""
    async def put_() -> None:
        handle = await tree.open(path, PUT, caller)
        try:
            await handle.write(0, data)  # even b"": the empty message is a message
            await handle.flush()
        finally:
            await handle.release()
    return ensureDeferred(put_())


FIRST_FILE = {"chan": "cap", "proc": "run", "select": "select", "dns": "addr",
              "subs": "on"}  # what makes each kind work


def make(tree: IHostTree, path: tuple, content: bytes, caller: ICaller,
         wait: bool = False) -> Deferred:
    """Deferred: make the element ``path`` (``dc/KIND/NAME``) and put ``content`` into its
    first file (a channel's cap, a process's run, a select's select).  Refused, the
    element is removed again: a bad make leaves nothing behind.

    With ``wait`` (a process only), Deferred[bytes]: then its exit record, once it has
    exited, as `get` of its ``waitexit`` reads it (`_made_then_waited`)."""
    if len(path) != 3 or path[0] != "dc" or path[1] not in FIRST_FILE:
        return fail(errors.Invalid(f"{'/'.join(path)} is not an element's path (dc/KIND/NAME)"))
    if wait and path[1] != "proc":
        return fail(errors.Invalid(f"{'/'.join(path)}: only a process is waited for as it is made"))

    async def make_() -> None:
        await tree.mkdir(path)
        try:
            await tree.put(path + (FIRST_FILE[path[1]],), content, caller)
        except errors.CircuitError:
            try:
                await tree.rmdir(path)
            except errors.CircuitError as e:  # gone already (removed by someone else)
                log.info("removing the refused {path}: {why}", path="/".join(path), why=e.message)
            raise
    made = ensureDeferred(make_())
    return _made_then_waited(tree, path, caller, made) if wait else made


def _made_then_waited(tree: IHostTree, path: tuple, caller: ICaller, made: Deferred) -> Deferred:
    """Deferred[bytes]: the exit record of the process ``made`` is making.

    Cancelled while it is being made, the make still ends as it would have (made, or
    refused and removed: never half made) and nobody waits; cancelled later, only the
    wait ends.  Either way the process, once made, stays, as after `make`."""
    waiting: list[Deferred] = []

    def cancel(_) -> None:
        if waiting:
            waiting[0].cancel()
    outer = Deferred(cancel)

    def give(result) -> None:
        if not outer.called:
            outer.callback(result)

    def refuse(failure) -> None:
        if not outer.called:
            outer.errback(failure)

    def made_(_) -> None:
        if not outer.called:  # else given up while it was made: nobody waits
            waiting.append(get(tree, path + ("waitexit",), caller).addCallbacks(give, refuse))

    def refused(failure) -> None:
        if outer.called:  # given up meanwhile: the refusal has nobody else to reach
            log.info("a make given up was refused: {path}: {why}", path="/".join(path),
                     why=failure.getErrorMessage())
        else:
            outer.errback(failure)
    made.addCallbacks(made_, refused)
    return outer


def get(tree: ICircuit | IHostTree, path: tuple, caller: ICaller) -> Deferred:
    """Deferred[bytes]: open ``path``, read it to its end (waiting, as a recv does, for a
    message), hand it over if ``caller`` is still there (`hand_over`), close.

    Cancel the Deferred to give up: a message it had taken goes back to its channel."""
    async def get_() -> bytes:
        handle = await tree.open(path, GET, caller)
        try:
            chunks, offset = [], 0
            while True:
                data = await handle.read(offset, CHUNK)
                if not data:
                    break
                chunks.append(data)
                offset += len(data)
            hand_over(handle, caller)
            return b"".join(chunks)
        finally:
            await handle.release()
    return ensureDeferred(get_())
