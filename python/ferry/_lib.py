"""_lib: finds libferry and declares the C functions the package calls.

The library is looked for, in order: the path in $FERRY_LIBRARY; libferry.so.0
in the lib folder of the prefix this package was installed into (make install
puts the package in PREFIX/lib/python3/dist-packages/ferry/, the library in
PREFIX/lib/); then the system's library search (an installed libferry).

Every libferry call returns >= 0 on success and -errno on failure; strings the
library hands out are borrowed until the next call on the same object, so
they are copied (string_at) before anything else is called.
"""

import ctypes
import ctypes.util
import os
from pathlib import Path

from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_int64, c_size_t, c_uint, c_uint64, c_void_p


class EventStruct(Structure):
    """struct ferry_event; the char pointers are kept as addresses, to be copied with their lengths."""

    _fields_ = [
        ("type", c_uint),
        ("flags", c_uint),
        ("path", c_void_p),
        ("path_len", c_size_t),
        ("old_path", c_void_p),
        ("old_path_len", c_size_t),
        ("root", c_void_p),
        ("error", c_int),
        ("size", c_int64),
    ]


class LogRecordStruct(Structure):
    """struct ferry_log_record."""

    _fields_ = [
        ("kind", c_int),
        ("rule", c_void_p),
        ("path", c_void_p),
        ("path_len", c_size_t),
        ("message", c_void_p),
        ("duration_ns", c_int64),
        ("pid", c_int),
        ("attempt", c_int),
        ("exit_code", c_int),
        ("signal", c_int),
        ("size", c_int64),
        ("sha256", c_void_p),
        ("duplicate_of", c_void_p),
    ]


LOG_CB = CFUNCTYPE(None, c_void_p, POINTER(LogRecordStruct))
# ferry_progress_cb: userdata, source, done, total; nonzero stops the copy
PROGRESS_CB = CFUNCTYPE(c_int, c_void_p, c_char_p, c_uint64, c_uint64)

# The constants of include/ferry.h this package uses.
EVENT_READY = 1 << 7
EVENT_ERROR = 1 << 11
EVENT_ALL = 0x0FFF
EVENT_IS_DIR = 1 << 0
EVENT_FOUND = 1 << 1
WATCH_RECURSIVE = 1 << 0
WATCH_FOLLOW = 1 << 1
WATCH_EXISTING = 1 << 2
LOG_KINDS = ("info", "claimed", "started", "done", "retry", "failed", "returned", "warning", "error")

# name: (result type, argument types)
_FUNCTIONS = {
    "ferry_watch_new": (c_int, [POINTER(c_void_p), c_uint]),
    "ferry_watch_free": (None, [c_void_p]),
    "ferry_watch_set_ready": (c_int, [c_void_p, c_char_p]),
    "ferry_watch_set_backend": (c_int, [c_void_p, c_char_p]),
    "ferry_watch_set_events": (c_int, [c_void_p, c_uint]),
    "ferry_watch_set_poll_interval": (c_int, [c_void_p, c_int64]),
    "ferry_watch_set_max_dirs": (c_int, [c_void_p, c_size_t]),
    "ferry_watch_include": (c_int, [c_void_p, c_char_p]),
    "ferry_watch_exclude": (c_int, [c_void_p, c_char_p]),
    "ferry_watch_add": (c_int, [c_void_p, c_char_p]),
    "ferry_watch_add_file": (c_int, [c_void_p, c_char_p]),
    "ferry_watch_next": (c_int, [c_void_p, POINTER(POINTER(EventStruct)), c_int]),
    "ferry_watch_fd": (c_int, [c_void_p]),
    "ferry_watch_explain": (c_int, [c_void_p, c_int, c_char_p, c_char_p, c_size_t]),
    "ferry_event_type_name": (c_char_p, [c_uint]),
    "ferry_event_type_parse": (c_int, [c_char_p]),
    "ferry_put": (c_int, [c_char_p, c_char_p, c_char_p, PROGRESS_CB, c_void_p]),
    "ferry_rule_new": (c_int, [POINTER(c_void_p), c_char_p, c_char_p]),
    "ferry_rule_free": (None, [c_void_p]),
    "ferry_rule_set": (c_int, [c_void_p, c_char_p, c_char_p]),
    "ferry_rule_explain": (c_void_p, [c_void_p]),
    "ferry_queue_open": (c_int, [POINTER(c_void_p), c_void_p, LOG_CB, c_void_p]),
    "ferry_queue_fd": (c_int, [c_void_p]),
    "ferry_queue_take": (c_int, [c_void_p, c_int, POINTER(c_void_p)]),
    "ferry_queue_renew": (c_int, [c_void_p]),
    "ferry_queue_close": (None, [c_void_p]),
    "ferry_claim_path": (c_void_p, [c_void_p]),
    "ferry_claim_original_path": (c_void_p, [c_void_p]),
    "ferry_claim_done": (c_int, [c_void_p]),
    "ferry_claim_fail": (c_int, [c_void_p, c_char_p]),
    "ferry_claim_release": (c_int, [c_void_p]),
}


def _candidates():
    explicit = os.environ.get("FERRY_LIBRARY")
    if explicit:
        return [explicit]
    found = []
    beside = Path(__file__).resolve().parents[3] / "libferry.so.0"
    if beside.exists():
        found.append(str(beside))
    found.append(ctypes.util.find_library("ferry") or "libferry.so.0")
    return found


def _load():
    errors = []
    for candidate in _candidates():
        try:
            lib = ctypes.CDLL(candidate, use_errno=True)
        except OSError as e:
            errors.append(str(e))
            continue
        for name, (restype, argtypes) in _FUNCTIONS.items():
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = argtypes
        return lib
    raise ImportError("ferry: cannot load libferry (" + "; ".join(errors) +
                      "): install it (make install) or set FERRY_LIBRARY to its path")


lib = _load()


def string(address, length=None):
    """Copies a borrowed C string (bytes), or None for NULL."""
    if not address:
        return None
    return ctypes.string_at(address, length) if length is not None else ctypes.string_at(address)


def check(result, message=None):
    """Raises OSError for a -errno result, with message when one is known."""
    if result < 0:
        error = -result
        raise OSError(error, message or os.strerror(error))
    return result


def encode(path):
    """A path (str, bytes or os.PathLike) as bytes, as the file system sees it."""
    return os.fsencode(path)

