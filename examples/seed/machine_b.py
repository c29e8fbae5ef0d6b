#!/usr/bin/env python3
"""machine_b.py: the seed's machine B on ferry: enrich each file of the unenriched folder.

    machine_b.py UNENRICHED ENRICHED

B consumes its own UNENRICHED folder as a queue (ferry.Queue): a file is taken
only once its NAME.done marker is there and the file has the size and SHA-256
the marker names (ferry.put(..., marker=True) on machine A writes both), so a
copy cut off half-way is never enriched; each file is claimed exactly once,
also with several B processes or machines sharing the folder. The enriched
copy (each row with an "enriched" column: the row's length, as examples/enrich
does) is delivered into ENRICHED, A's folder mounted on B, atomically by
ferry.put: A never sees half of it. A failure leaves the file in the failed
folder (UNENRICHED/.ferry/failed/) with the reason in its note.
"""

import os
import sys
import tempfile

import ferry


def enrich(source: str, target: str) -> None:
    """The seed's 'query the internet for enrichment', here: each row's length."""
    with open(source, "rb") as f_in, open(target, "wb") as f_out:
        for number, row in enumerate(f_in):
            row = row.rstrip(b"\n")
            f_out.write(row + (b",enriched\n" if number == 0 else b"," + str(len(row)).encode() + b"\n"))


def say(line: bytes, stream=sys.stdout) -> None:
    """A line as bytes: a file name need not be UTF-8."""
    stream.buffer.write(line + b"\n")
    stream.flush()


def log(kind: str, message: str, path) -> None:
    # What ferry run would log: the files refused by their marker among it.
    if kind in ("warning", "error", "failed"):
        say(os.fsencode(f"B: {kind}: {path or ''}: {message}"), sys.stderr)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    unenriched, enriched = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="machine-b.") as scratch:
        with ferry.Queue(unenriched, name="enrich", ready="done-file", match="*.csv", log=log) as queue:
            for job in queue:
                with job:  # done when the block ends, failed with the exception's text if it raises
                    name = os.path.basename(job.original_path_bytes)
                    local = os.path.join(scratch.encode(), name)
                    enrich(job.path_bytes, local)
                    ferry.put(local, os.path.join(os.fsencode(enriched), name))
                    os.unlink(local)
                say(b"B: enriched " + name)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
