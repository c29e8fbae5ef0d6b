#!/usr/bin/python3
"""poll_watchdog.py DIR INTERVAL: Python watchdog's PollingObserver on DIR (not
recursive, as ferry watch without -r), printing each created file's path, one a
line. What bench/poll compares ferry's poll backend with."""
import sys
import time

from watchdog.events import FileSystemEventHandler
from watchdog.observers.polling import PollingObserver


class Print(FileSystemEventHandler):
    def on_created(self, event):
        if not event.is_directory:
            sys.stdout.write(event.src_path + "\n")
            sys.stdout.flush()


def main():
    folder, interval = sys.argv[1], float(sys.argv[2])
    observer = PollingObserver(timeout=interval)
    observer.schedule(Print(), folder, recursive=False)
    observer.start()
    try:
        while observer.is_alive():
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    observer.stop()
    observer.join()


if __name__ == "__main__":
    main()
