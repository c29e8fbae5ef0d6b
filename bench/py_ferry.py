#!/usr/bin/python3
"""py_ferry.py [-r] DIR: the ferry package (python/ferry, a ctypes layer over
libferry), driven as its documentation shows: ferry.Watch(DIR, events=
["close_write"]) (recursive=True with -r), iterated. Prints the path of each
file closed after writing, one a line, flushed. bench/run sets PYTHONPATH and
FERRY_LIBRARY to the checkout's package and the library beside the ferry it
measures."""
import sys

import ferry

recursive = sys.argv[1] == "-r"
top = sys.argv[-1]
out = sys.stdout
with ferry.Watch(top, recursive=recursive, events=["close_write"]) as watch:
    for event in watch:
        if event.type == "close_write":
            out.write(event.path + "\n")
            out.flush()
