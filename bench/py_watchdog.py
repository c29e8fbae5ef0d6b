#!/usr/bin/python3
"""py_watchdog.py [-r] DIR: Python's watchdog (python3-watchdog), driven as
its documentation shows: an Observer (the inotify backend on Linux) with a
FileSystemEventHandler; on_closed (FileClosedEvent, IN_CLOSE_WRITE) prints
the file's path, one a line, flushed."""
import signal
import sys

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer


class Handler(FileSystemEventHandler):
    def on_closed(self, event):
        sys.stdout.write(event.src_path + "\n")
        sys.stdout.flush()


recursive = sys.argv[1] == "-r"
observer = Observer()
observer.schedule(Handler(), sys.argv[-1], recursive=recursive)
observer.start()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
try:
    while observer.is_alive():
        observer.join(3600)
finally:
    observer.stop()
