"""SFTP's view of attributes; paths, ls lines and error lines are the command layer's."""
from __future__ import annotations

import os
import stat as st

from circuit.interfaces import Attr


def stat_result(attr: Attr) -> os.stat_result:
    kind = st.S_IFDIR if attr.kind == "dir" else st.S_IFREG
    return os.stat_result((kind | attr.mode, 0, 0, 2 if attr.kind == "dir" else 1,
                           os.getuid(), os.getgid(), attr.size,
                           int(attr.mtime), int(attr.mtime), int(attr.mtime)))


def sftp_attrs(attr: Attr) -> dict:
    s = stat_result(attr)
    return {"size": s.st_size, "uid": s.st_uid, "gid": s.st_gid, "permissions": s.st_mode,
            "atime": s.st_atime, "mtime": s.st_mtime}
