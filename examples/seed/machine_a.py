#!/usr/bin/env python3
"""machine_a.py: the seed's machine A on ferry: send files to B, wait for each result.

    machine_a.py UNENRICHED ENRICHED FILE...

Each FILE is delivered into UNENRICHED (B's folder, mounted on A) with
ferry.put(..., marker=True): under a temporary name, synced, renamed into
place, then NAME.done with its size and SHA-256, so B takes it only once it is
whole. Then A waits in its own ENRICHED folder for each result (ferry.wait:
complete, not merely created), and prints where it is. Exit status 1 when a
result did not come within the timeout ($TIMEOUT seconds, default 60).
"""

import os
import sys
import time

import ferry


def say(text: str, stream=sys.stdout) -> None:
    """A line, its file names as the bytes they are (they need not be UTF-8)."""
    stream.buffer.write(os.fsencode(text) + b"\n")
    stream.flush()


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    unenriched, enriched, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    timeout = float(os.environ.get("TIMEOUT", "60"))
    start = time.monotonic()
    for path in files:
        ferry.put(path, unenriched, marker=True)
        say(f"A: put {path} with its marker")
    status = 0
    for path in files:
        result = os.path.join(enriched, os.path.basename(path))
        try:
            ferry.wait(result, timeout=max(0.1, timeout - (time.monotonic() - start)))
        except TimeoutError:
            say(f"A: no result for {path} within {timeout:g} s", sys.stderr)
            status = 1
            continue
        say(f"A: result {result} after {time.monotonic() - start:.3f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
