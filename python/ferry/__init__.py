"""ferry: watch folders, wait for completely written files, and use a folder as a queue.

A thin layer over libferry, the library of the ferry folder watchdog, written
with the standard library's ctypes: installing it compiles nothing; it needs
libferry itself (make install in the ferry source tree, or $FERRY_LIBRARY set
to the library's path).

    ferry.Watch(folder, ...)      events of folders, or with ready=POLICY only completed files
    ferry.wait(path, timeout=...) block until one file is completely written
    ferry.wait_many(folder, match=, count=)  until count matching files are
    ferry.put(src, dest, marker=) deliver a file atomically, optionally with NAME.done
    ferry.Queue(folder, ...)      each complete file of a folder claimed once, across processes
                                  and machines; jobs are ferry.Job

File names are bytes: every path is handed out as str (os.fsdecode, so
undecodable bytes survive as surrogates) and as bytes (*_bytes attributes);
paths given may be str, bytes or os.PathLike.
"""

import ctypes
import os
from typing import Callable, List, Optional, Union

from . import _lib
from ._lib import lib
from .queue import Job, Queue
from .watch import Event, PathLike, Watch, wait, wait_many

# libferry's FERRY_VERSION (include/ferry.h); a test checks that they agree.
__version__ = "0.1.0"

__all__ = ["Event", "Job", "Queue", "Watch", "put", "wait", "wait_many", "__version__"]


def put(src: PathLike, dest: PathLike, marker: Union[bool, str] = False,
        progress: Optional[Callable[[int, int], object]] = None) -> str:
    """Copies the regular file src to dest atomically for anyone watching dest's folder.

    dest is the target path, or an existing folder to put the file into under
    its own name. The copy is written under a temporary name (".ferry-put.*")
    in that folder, synced, renamed into place, and the folder synced, so a
    watcher sees it only complete. marker: True writes dest + ".done" (or a
    suffix given as a str) the same way, holding the size and SHA-256 that the
    done-file ready policy verifies. Returns the target's path; raises OSError.

    progress, when given, is called as progress(done, total) after each block
    copied (256 KiB), with the bytes copied so far and the file's size. An
    exception it raises (KeyboardInterrupt too) stops the copy: the temporary
    file is removed, dest is left as it was, and put raises that exception.

        ferry.put("report.csv", "/srv/outbox", marker=True)
        ferry.put(big, "/srv/outbox", progress=lambda done, total: print(done * 100 // total, "%"))
    """
    source = _lib.encode(src)
    target = _lib.encode(dest)
    if os.path.isdir(target):
        target = os.path.join(target, os.path.basename(source))
    suffix = None
    if marker is True:
        suffix = b".done"
    elif marker:
        suffix = _lib.encode(marker)
        if b"/" in suffix:
            raise ValueError(f"invalid marker suffix {marker!r}")
    raised: List[BaseException] = []
    callback = _lib.PROGRESS_CB()  # NULL: no progress

    if progress is not None:
        def step(_userdata, _source, done, total):
            try:
                progress(done, total)
                return 0
            except BaseException as e:  # handed back to the caller once the library stopped
                raised.append(e)
                return 1

        callback = _lib.PROGRESS_CB(step)
    r = lib.ferry_put(source, target, suffix, callback, None)
    if raised:
        raise raised[0]
    if r < 0:
        raise OSError(-r, f"cannot put {os.fsdecode(source)} into {os.fsdecode(target)}: {os.strerror(-r)}",
                      os.fsdecode(source))
    return os.fsdecode(target)


del ctypes, Callable, List, Optional
