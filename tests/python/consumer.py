"""consumer: one worker of the queue tests, run as its own process.

    consumer.py FOLDER LIST [--lease 2s] [--delay SECONDS] [--idle SECONDS]

Takes jobs from FOLDER until none came for --idle seconds; for each, appends
its original name (bytes, one a line) to LIST, flushed before the job is
done, so that a name in LIST was handled whatever happens next.
"""

import argparse
import os
import sys
import time

import ferry

parser = argparse.ArgumentParser()
parser.add_argument("folder")
parser.add_argument("list")
parser.add_argument("--lease", default="2s")
parser.add_argument("--delay", type=float, default=0)
parser.add_argument("--idle", type=float, default=3)
args = parser.parse_args()

with ferry.Queue(args.folder, lease=args.lease) as queue, open(args.list, "ab", buffering=0) as out:
    print("started", flush=True)
    while True:
        job = queue.take(timeout=args.idle)
        if job is None:
            break
        with job:
            out.write(os.path.basename(job.original_path_bytes) + b"\n")
            if args.delay:
                time.sleep(args.delay)
sys.exit(0)
