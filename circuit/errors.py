"""The closed set of errors circuit answers with.

Every refusal anywhere in the core or the tree is one of these.  Each carries the
errno a file-system view answers with and one line of text that says why; that
line is what lands in an element's ``error`` file.  Views map them once (FUSE to
an errno, SFTP to a status code, PB to a copyable failure).
"""
import errno as _errno


class CircuitError(Exception):
    """Base: an errno plus one human line."""

    errno = _errno.EIO
    default = "input/output error"

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default)

    @property
    def message(self) -> str:
        return self.args[0]

    def __str__(self) -> str:
        return self.message


def _error(name: str, code: int, default: str) -> type[CircuitError]:
    return type(name, (CircuitError,), {"errno": code, "default": default, "__doc__": default})


NotFound = _error("NotFound", _errno.ENOENT, "no such host, element or file")
Invalid = _error("Invalid", _errno.EINVAL, "invalid argument")
Busy = _error("Busy", _errno.EBUSY, "already set or in use")
HostDown = _error("HostDown", _errno.EHOSTDOWN, "the host has left the circuit")
Closed = _error("Closed", _errno.EPIPE, "the channel is closed")
ReadOnly = _error("ReadOnly", _errno.EACCES, "permission denied")
WouldBlock = _error("WouldBlock", _errno.EAGAIN, "the operation would block")
Aborted = _error("Aborted", _errno.ECANCELED, "the select was aborted")
Interrupted = _error("Interrupted", _errno.EINTR, "interrupted; nothing was taken or given")
Exists = _error("Exists", _errno.EEXIST, "already exists")
NotEmpty = _error("NotEmpty", _errno.ENOTEMPTY, "directory not empty")
IsDirectory = _error("IsDirectory", _errno.EISDIR, "is a directory")
NotDirectory = _error("NotDirectory", _errno.ENOTDIR, "not a directory")
NoProcess = _error("NoProcess", _errno.ESRCH, "the process is not running")
NotPermitted = _error("NotPermitted", _errno.EPERM, "operation not permitted")
BadFile = _error("BadFile", _errno.EBADF, "no such open file")
CrossHost = _error("CrossHost", _errno.EXDEV, "the two paths are on different hosts")
TooBig = _error("TooBig", _errno.E2BIG, "more than this file takes")
TimedOut = _error("TimedOut", _errno.ETIMEDOUT, "timed out; nothing was taken or given")
TooMany = _error("TooMany", _errno.EMFILE, "too many files open on this connection")
AddressInUse = _error("AddressInUse", _errno.EADDRINUSE, "the address is in use")
AddressNotAvailable = _error("AddressNotAvailable", _errno.EADDRNOTAVAIL,
                             "the address is not one of this host's")

# Errors that say something about the element (and so belong in its error file),
# as opposed to the caller giving up.
QUIET = (Interrupted,)
