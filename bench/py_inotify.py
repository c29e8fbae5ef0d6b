#!/usr/bin/python3
"""py_inotify.py [-r] DIR: Python's inotify package (python3-inotify), driven
as its documentation shows: inotify.adapters.Inotify (InotifyTree with -r),
event_gen(yield_nones=False) with the package's defaults (block_duration_s=1).
Prints the path of each file closed after writing, one a line, flushed."""
import sys

import inotify.adapters
import inotify.constants

recursive = sys.argv[1] == "-r"
top = sys.argv[-1]
if recursive:
    # IN_CREATE too: InotifyTree adds the watches of new directories on it.
    watcher = inotify.adapters.InotifyTree(
        top, mask=inotify.constants.IN_CLOSE_WRITE | inotify.constants.IN_CREATE)
else:
    watcher = inotify.adapters.Inotify()
    watcher.add_watch(top, inotify.constants.IN_CLOSE_WRITE)
out = sys.stdout
for _, type_names, path, filename in watcher.event_gen(yield_nones=False):
    if "IN_CLOSE_WRITE" in type_names:
        out.write(path + "/" + filename + "\n")
        out.flush()
