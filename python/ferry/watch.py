"""watch: ferry.Watch (a watcher handing out ferry.Event objects) and ferry.wait()."""

import asyncio
import ctypes
import os
import time
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Union

from . import _lib
from ._lib import lib

# A blocking wait is cut into steps of this length, so that the interpreter
# runs its signal handlers (Ctrl-C raises KeyboardInterrupt) between them.
_STEP_MS = 500

PathLike = Union[str, bytes, os.PathLike]

# What a watcher without a ready policy hands out by default, as ferry watch does.
_DEFAULT_EVENTS = ("create", "modify", "attrib", "close_write", "delete", "moved_from", "moved_to")


class Event(NamedTuple):
    """One event of a watcher: what happened to which path (an immutable record).

    type: "create", "modify", "attrib", "close_write", "delete", "moved_from",
        "moved_to", "ready", "rescan", "root_gone", "root_back" or "error".
    path, path_bytes: the path (the root as given, plus the part below it);
        path is os.fsdecode(path_bytes), exact bytes stay in path_bytes.
    old_path, old_path_bytes: for "moved_to" from inside the tree, where it came from; else None.
    root: the watched root this event belongs to, as given.
    size: "ready" events: the size at that moment; else None.
    is_dir: the path is a directory. found: found by a listing, not reported by the kernel.
    error: "error" events: the errno; else 0. message: "error" events: what went wrong and the fix.
    """

    type: str
    path: str
    path_bytes: bytes
    old_path: Optional[str]
    old_path_bytes: Optional[bytes]
    root: str
    size: Optional[int]
    is_dir: bool
    found: bool
    error: int
    message: Optional[str]


_TYPE_NAMES = {}


def _type_name(value: int) -> str:
    # Asked of the library once a type: this runs for every event.
    name = _TYPE_NAMES.get(value)
    if name is None:
        text = lib.ferry_event_type_name(value)
        name = _TYPE_NAMES[value] = text.decode() if text else str(value)
    return name


def _event_mask(events: Union[int, Iterable[str]]) -> int:
    if isinstance(events, int):
        return events
    if isinstance(events, str):
        events = (events,)
    mask = 0
    for name in events:
        value = lib.ferry_event_type_parse(name.encode())
        if value < 0:
            raise ValueError(f"unknown event type {name!r}")
        mask |= value
    return mask


class Watch:
    """Watches folders and hands out their events, in order.

    Watch(*folders, ready=None, recursive=False, include=(), exclude=(),
          existing=False, backend="auto", events=None, follow=False,
          poll_interval=None, max_dirs=0)

    ready: None hands out what happens (create, close_write, ...); a ready
        policy ("auto", "close", "close=GUARD", "rename", "done-file",
        "done-file=.SUFFIX", "settle=DURATION") hands out only "ready" events,
        once per completed version of each file, temporary names left out.
    recursive: also subfolders, present and future. existing: report files
        already there when watching starts. follow: watch a root again once it
        comes back after going away.
    include, exclude: globs (fnmatch) on file names (on the path below the root when they hold '/').
    backend: "auto", "inotify" or "poll"; poll_interval: seconds between
        listings of polled folders (default 2). max_dirs: at most that many
        folders watched (0: no cap); one beyond comes as an "error" event and
        is listed now and then instead.
    events: names of the event types to hand out ("error", "rescan",
        "root_gone" and "root_back" always are).

    A Watch is an iterator of Event objects (blocking), a context manager that
    closes it, and has fileno() for select, selectors and asyncio: once it
    polls readable, call next_event(0) until it returns None. One thread uses
    a Watch at a time. Failures raise OSError (errno and the explanation);
    invalid options raise ValueError. Parts of a tree that cannot be watched
    are not raised: they come as events of type "error".

        with ferry.Watch("inbox", ready="auto") as watch:
            for event in watch:
                print(event.path)
    """

    def __init__(self, *folders: PathLike, ready: Optional[str] = None, recursive: bool = False,
                 include: Iterable[str] = (), exclude: Iterable[str] = (), existing: bool = False,
                 backend: str = "auto", events: Optional[Union[int, Iterable[str]]] = None,
                 follow: bool = False, poll_interval: Optional[float] = None, max_dirs: int = 0):
        self._watch = None
        flags = ((_lib.WATCH_RECURSIVE if recursive else 0) | (_lib.WATCH_EXISTING if existing else 0) |
                 (_lib.WATCH_FOLLOW if follow else 0))
        self._setup(flags, ready, include, exclude, backend, events)
        if poll_interval is not None and lib.ferry_watch_set_poll_interval(self._watch,
                                                                           int(poll_interval * 1e9)) < 0:
            raise ValueError("poll_interval must be at least 0.01 s")
        if max_dirs and lib.ferry_watch_set_max_dirs(self._watch, max_dirs) < 0:
            raise ValueError(f"invalid max_dirs {max_dirs!r}")
        for folder in folders:
            self.add(folder)

    def _setup(self, flags, ready, include, exclude, backend, events):
        handle = ctypes.c_void_p()
        _lib.check(lib.ferry_watch_new(ctypes.byref(handle), flags), "cannot start watching")
        self._watch = handle
        self._event = ctypes.POINTER(_lib.EventStruct)()
        self._roots: Dict[int, str] = {}  # root strings live as long as the watch: decoded once
        if isinstance(include, (str, bytes)):
            include = (include,)
        if isinstance(exclude, (str, bytes)):
            exclude = (exclude,)
        for glob in include:
            if lib.ferry_watch_include(self._watch, _lib.encode(glob)) < 0:
                raise ValueError(f"invalid glob {glob!r}")
        for glob in exclude:
            if lib.ferry_watch_exclude(self._watch, _lib.encode(glob)) < 0:
                raise ValueError(f"invalid glob {glob!r}")
        if backend and lib.ferry_watch_set_backend(self._watch, backend.encode()) < 0:
            raise ValueError(f"backend is auto, inotify or poll, not {backend!r}")
        if ready is not None and lib.ferry_watch_set_ready(self._watch, ready.encode()) < 0:
            raise ValueError(f"invalid ready policy {ready!r} (use auto, close[=GUARD], rename, "
                             "done-file[=.SUFFIX|=MARKER] or settle=DURATION)")
        if events is None:
            mask = _lib.EVENT_READY if ready is not None else _event_mask(_DEFAULT_EVENTS)
        else:
            mask = _event_mask(events)
        lib.ferry_watch_set_events(self._watch, mask)

    def _handle(self):
        if self._watch is None:
            raise ValueError("the watch is closed")
        return self._watch

    def explain(self, error: int, path: PathLike) -> str:
        """One line explaining a failure (errno error) about path: the reason and the fix."""
        buffer = ctypes.create_string_buffer(8192)
        if lib.ferry_watch_explain(self._handle(), -abs(error), _lib.encode(path), buffer, len(buffer)) < 0:
            return f"cannot watch {os.fsdecode(path)}: {os.strerror(abs(error))}"
        return os.fsdecode(buffer.value)

    def add(self, folder: PathLike) -> None:
        """Starts watching another folder."""
        r = lib.ferry_watch_add(self._handle(), _lib.encode(folder))
        if r < 0:
            raise OSError(-r, self.explain(r, folder), os.fsdecode(folder))

    def add_file(self, path: PathLike) -> None:
        """Starts watching one file, which need not exist yet (its folder is watched)."""
        r = lib.ferry_watch_add_file(self._handle(), _lib.encode(path))
        if r < 0:
            raise OSError(-r, self.explain(r, path), os.fsdecode(path))

    def fileno(self) -> int:
        """A descriptor that polls readable when next_event(0) has work; owned by the watch."""
        return _lib.check(lib.ferry_watch_fd(self._handle()))

    def next_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event; waits up to timeout seconds (None: no limit, 0: not at all).

        Returns None when none came in time.
        """
        handle = self._handle()
        if timeout is None or timeout <= 0:
            # No clock needed: one call an event, waiting or not (a call
            # returns at once when an event is queued, as in a burst; the
            # wait is cut in steps so that Ctrl-C is seen).
            step = 0 if timeout is not None else _STEP_MS
            while True:
                r = lib.ferry_watch_next(handle, ctypes.byref(self._event), step)
                if r > 0:
                    return self._copy(self._event.contents)
                if r < 0:
                    raise OSError(-r, f"cannot read events: {os.strerror(-r)}")
                if step == 0:
                    return None
        deadline = time.monotonic() + timeout
        while True:
            step = min(_STEP_MS, max(0, int((deadline - time.monotonic()) * 1000 + 0.999)))
            r = lib.ferry_watch_next(handle, ctypes.byref(self._event), step)
            if r < 0:
                raise OSError(-r, f"cannot read events: {os.strerror(-r)}")
            if r > 0:
                return self._copy(self._event.contents)
            if time.monotonic() >= deadline:
                return None

    def _copy(self, ev: "_lib.EventStruct") -> Event:
        # Everything the event points to is borrowed until the next call: copied here.
        # (The path of every event: plain calls, positional fields; roots decoded once.)
        string_at = ctypes.string_at
        path = string_at(ev.path, ev.path_len) if ev.path else b""
        old = string_at(ev.old_path, ev.old_path_len) if ev.old_path else None
        root = self._roots.get(ev.root)
        if root is None:
            root = self._roots[ev.root] = os.fsdecode(string_at(ev.root)) if ev.root else ""
        kind, flags = ev.type, ev.flags
        error, message = 0, None
        if kind == _lib.EVENT_ERROR:
            error = abs(ev.error)
            message = self.explain(error, path)
        return Event(_TYPE_NAMES.get(kind) or _type_name(kind), os.fsdecode(path), path,
                     os.fsdecode(old) if old is not None else None, old, root,
                     ev.size if kind == _lib.EVENT_READY and ev.size >= 0 else None,
                     bool(flags & _lib.EVENT_IS_DIR), bool(flags & _lib.EVENT_FOUND), error, message)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        event = self.next_event(None)
        assert event is not None
        return event

    def __aiter__(self) -> "Watch":
        return self

    async def __anext__(self) -> Event:
        """With asyncio: async for event in watch; the loop waits on fileno(), no thread."""
        event = self.next_event(0)
        if event is not None:
            return event
        loop = asyncio.get_running_loop()
        fd = self.fileno()
        while True:
            readable = loop.create_future()

            def woken(future=readable):
                if not future.done():
                    future.set_result(None)

            loop.add_reader(fd, woken)
            try:
                await readable
            finally:
                loop.remove_reader(fd)
            event = self.next_event(0)
            if event is not None:
                return event

    def close(self) -> None:
        """Stops watching and releases everything; closing twice is harmless."""
        if self._watch is not None:
            lib.ferry_watch_free(self._watch)
            self._watch = None

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


def wait_many(folder: PathLike, match: str = "*", count: int = 1, timeout: Optional[float] = None,
              ready: str = "auto", recursive: bool = False, backend: str = "auto") -> List[str]:
    """Blocks until count distinct files of folder whose names match the glob are completely written.

    Files already there and complete count at once; a file written again
    counts once. Returns their paths, in the order they became ready; raises
    TimeoutError after timeout seconds (its message says how many came), and
    OSError when the folder cannot be watched or goes away.

        ferry.wait_many("incoming", match="*.csv", count=3, timeout=60)
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    deadline = None if timeout is None else time.monotonic() + timeout
    seen: List[str] = []
    seen_bytes = set()
    with Watch(folder, ready=ready, existing=True, recursive=recursive, include=(match,),
               backend=backend) as watch:
        while len(seen) < count:
            left = None if deadline is None else deadline - time.monotonic()
            event = watch.next_event(left) if left is None or left > 0 else None
            if event is None:
                raise TimeoutError(f"{os.fsdecode(folder)}: {len(seen)} of {count} files matching {match!r} "
                                   f"complete after {timeout} s")
            if event.type == "root_gone":
                raise FileNotFoundError(f"{event.root}: the folder went away while waiting")
            if event.type == "ready" and event.path_bytes not in seen_bytes:
                seen_bytes.add(event.path_bytes)
                seen.append(event.path)
    return seen


def wait(path: PathLike, timeout: Optional[float] = None, ready: str = "auto", backend: str = "auto") -> str:
    """Blocks until the file at path (which need not exist yet) is completely written.

    ready: the ready policy that says when it is (see Watch). A file already
    there and complete counts at once. Returns its path; raises TimeoutError
    after timeout seconds, and OSError when its folder cannot be watched or
    goes away.

        ferry.wait("results/report.csv", timeout=600)
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    watch = Watch(ready=ready, existing=True, backend=backend)
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(f"{os.fsdecode(path)} is a directory: wait for a file in it instead")
        watch.add_file(path)
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            event = watch.next_event(left) if left is None or left > 0 else None
            if event is None:
                raise TimeoutError(f"{os.fsdecode(path)} was not complete after {timeout} s")
            # An error about part of the folder is not the end of the wait (ferry wait goes on too).
            if event.type == "root_gone":
                raise FileNotFoundError(f"{event.root}: the folder went away while waiting")
            if event.type == "ready":
                return event.path
    finally:
        watch.close()
