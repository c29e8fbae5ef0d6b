"""queue: ferry.Queue, the folder as a queue, and ferry.Job, one claimed file of it.

A queue claims each complete file of its folder exactly once across
processes and machines sharing the folder (by renaming it into its work area
DIR/.ferry/work/), adopts the claims of dead workers, and hands the claims
out; ferry run workers can share the folder with it.
"""

import ctypes
import errno
import os
import time
from typing import Callable, Iterable, Iterator, Optional, Union

from . import _lib
from ._lib import lib
from .watch import PathLike

# A blocking take is cut into steps of this length, so that signal handlers run between them.
_STEP_MS = 500

# log(kind, message, path): kind is "info", "claimed", "started", "done",
# "retry", "failed", "returned", "warning" or "error"; path is None or a str.
LogCallback = Callable[[str, str, Optional[str]], None]


def _option_text(value) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return os.fsdecode(value) if isinstance(value, (bytes, os.PathLike)) else str(value)


class Job:
    """One claimed file. Read it at path; say how it went with done(), fail(reason) or release().

    path, path_bytes: where the claimed file is now (in the work area).
    original_path, original_path_bytes: where it was found.

    As a context manager, a job is done when the block ends normally, and
    fails with str(exception) as its reason when it raises (the exception goes on):

        with job:
            handle(job.path)

    After done, fail or release the job is over: using it again raises ValueError.
    """

    __slots__ = ("_claim", "_queue", "path_bytes", "original_path_bytes", "path", "original_path")

    def __init__(self, queue: "Queue", claim: ctypes.c_void_p):
        self._claim = claim
        self._queue = queue
        # Borrowed from the claim, which the verdict frees: copied.
        self.path_bytes = _lib.string(lib.ferry_claim_path(claim)) or b""
        self.original_path_bytes = _lib.string(lib.ferry_claim_original_path(claim)) or b""
        self.path = os.fsdecode(self.path_bytes)
        self.original_path = os.fsdecode(self.original_path_bytes)

    def _take_claim(self) -> ctypes.c_void_p:
        claim = self._claim
        if claim is None:
            raise ValueError(f"job {self.original_path!r} is over (done, failed, released, or its queue closed)")
        self._claim = None
        self._queue._jobs.discard(self)
        return claim

    def done(self) -> None:
        """Handled: the file goes to the done folder (or is deleted, or recorded, as the queue says)."""
        r = lib.ferry_claim_done(self._take_claim())
        _lib.check(r, f"cannot finish {self.original_path}: {os.strerror(-r) if r < 0 else ''}")

    def fail(self, reason: str) -> None:
        """Failed: retried while the queue's retries last, then to the failed folder, reason in its note."""
        r = lib.ferry_claim_fail(self._take_claim(), _lib.encode(reason or "failed"))
        _lib.check(r, f"cannot fail {self.original_path}: {os.strerror(-r) if r < 0 else ''}")

    def release(self) -> None:
        """Back to the queue, untouched, for any worker to take."""
        r = lib.ferry_claim_release(self._take_claim())
        _lib.check(r, f"cannot release {self.original_path}: {os.strerror(-r) if r < 0 else ''}")

    @property
    def active(self) -> bool:
        """True until done, fail or release (or the queue's close)."""
        return self._claim is not None

    def __enter__(self) -> "Job":
        if self._claim is None:
            raise ValueError(f"job {self.original_path!r} is over")
        return self

    def __exit__(self, kind, exc, traceback) -> bool:
        if self._claim is None:
            return False  # the block gave its verdict itself
        if exc is None:
            self.done()
        else:
            self.fail(str(exc) or kind.__name__)
        return False

    def __repr__(self) -> str:
        return f"<ferry.Job {self.original_path!r}{'' if self.active else ' (over)'}>"


class Queue:
    """The folder as a queue: each complete file claimed once, across processes and machines.

    Queue(folder, name="worker", ready="auto", match=None, lease="60s",
          done=None, failed=None, retries=None, jobs=1, log=None, **options)

    name: the rule's name (letters, digits, '-', '_', '.'): workers sharing
        a folder under the same name share its work area and claims.
    ready: the ready policy (see ferry.Watch). match: a glob or several.
    lease: how long a claim of a worker on another machine that stopped
        renewing it is kept before others adopt it (a dead worker on this
        machine is seen at once). done, failed: folders for the outcomes
        (default DIR/.ferry/done and DIR/.ferry/failed). retries: how often a
        failed job is taken again before it goes to the failed folder.
    jobs: how many claims are taken ahead of the caller.
    options: further keys of ferry.conf(5), '_' for '-' (on_success="delete",
        recursive=True, max_queue=10000, ...).
    log: a callable log(kind, message, path) receiving what ferry run would log.

    Iterating blocks until the next job (Ctrl-C works); take(timeout) waits at
    most timeout seconds. Call take() or renew() at least every lease/3 while
    holding a job. One thread uses a queue. Closing it gives back the claims
    still held.

        with ferry.Queue("inbox", match="*.csv") as queue:
            for job in queue:
                with job:
                    handle(job.path)
    """

    def __init__(self, folder: PathLike, name: str = "worker", ready: str = "auto",
                 match: Optional[Union[str, Iterable[str]]] = None, lease: Union[str, float] = "60s",
                 done: Optional[PathLike] = None, failed: Optional[PathLike] = None,
                 retries: Optional[int] = None, jobs: int = 1, log: Optional[LogCallback] = None,
                 **options):
        self._queue = None
        self._jobs = set()
        self._log = log
        self._last_error = None
        # The C library calls this during open and take; kept alive as long as the queue.
        self._log_callback = _lib.LOG_CB(self._on_log)
        rule = self._rule(folder, name)
        try:
            settings = [("ready", ready), ("lease", f"{lease}s" if isinstance(lease, (int, float)) else lease),
                        ("jobs", jobs)]
            if match is not None:
                for glob in [match] if isinstance(match, (str, bytes)) else match:
                    settings.append(("match", glob))
            for key, value in (("done", done), ("failed", failed), ("retries", retries)):
                if value is not None:
                    settings.append((key, value))
            settings += [(key.replace("_", "-"), value) for key, value in options.items()]
            for key, value in settings:
                r = lib.ferry_rule_set(rule, key.encode(), _lib.encode(_option_text(value)))
                if r < 0:
                    explanation = _lib.string(lib.ferry_rule_explain(rule))
                    raise ValueError(os.fsdecode(explanation) if explanation else f"invalid {key} {value!r}")
        except BaseException:
            lib.ferry_rule_free(rule)
            raise
        handle = ctypes.c_void_p()
        r = lib.ferry_queue_open(ctypes.byref(handle), rule, self._log_callback, None)  # takes the rule
        if r < 0:
            raise OSError(-r, self._last_error or f"cannot open the queue on {os.fsdecode(folder)}: "
                          f"{os.strerror(-r)}", os.fsdecode(folder))
        self._queue = handle

    @staticmethod
    def _rule(folder, name) -> ctypes.c_void_p:
        rule = ctypes.c_void_p()
        r = lib.ferry_rule_new(ctypes.byref(rule), name.encode(), _lib.encode(folder))
        if r < 0:
            raise ValueError(f"invalid queue name {name!r}") if r == -errno.EINVAL else OSError(-r, os.strerror(-r))
        return rule

    def _on_log(self, userdata, record) -> None:
        # Runs inside a libferry call: must not raise through C.
        try:
            r = record.contents
            kind = _lib.LOG_KINDS[r.kind] if 0 <= r.kind < len(_lib.LOG_KINDS) else str(r.kind)
            message = os.fsdecode(_lib.string(r.message) or b"")
            path = _lib.string(r.path, r.path_len) if r.path else None
            if kind == "error":
                self._last_error = message
            if self._log is not None:
                self._log(kind, message, os.fsdecode(path) if path is not None else None)
        except BaseException:  # noqa: B036 - nothing may cross the C frames
            pass

    def _handle(self):
        if self._queue is None:
            raise ValueError("the queue is closed")
        return self._queue

    def fileno(self) -> int:
        """A descriptor that polls readable when take(0) may have a job; owned by the queue."""
        return _lib.check(lib.ferry_queue_fd(self._handle()))

    def take(self, timeout: Optional[float] = None) -> Optional[Job]:
        """The next job; waits up to timeout seconds (None: no limit, 0: not at all); None when none came."""
        handle = self._handle()
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
        claim = ctypes.c_void_p()
        while True:
            if deadline is None:
                step = _STEP_MS
            else:
                step = min(_STEP_MS, max(0, int((deadline - time.monotonic()) * 1000 + 0.999)))
            r = lib.ferry_queue_take(handle, step, ctypes.byref(claim))
            if r == 0:
                job = Job(self, claim)
                self._jobs.add(job)
                return job
            if r == -errno.ETIMEDOUT:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            if r == -errno.ESHUTDOWN:
                return None
            raise OSError(-r, self._last_error or f"cannot take from the queue: {os.strerror(-r)}")

    def renew(self) -> None:
        """Renews the leases and does what is due, without waiting."""
        _lib.check(lib.ferry_queue_renew(self._handle()), self._last_error)

    def __iter__(self) -> Iterator[Job]:
        while self._queue is not None:
            job = self.take(None)
            if job is None:
                return
            yield job

    def close(self) -> None:
        """Gives back the claims still held and closes; closing twice is harmless."""
        if self._queue is None:
            return
        for job in list(self._jobs):
            job._claim = None  # ferry_queue_close ends their handles
        self._jobs.clear()
        lib.ferry_queue_close(self._queue)
        self._queue = None

    def __enter__(self) -> "Queue":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()
