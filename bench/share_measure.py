#!/usr/bin/python3
"""bench/share_measure.py: the network share scenario's helper (bench/run,
scenario 7). Runs one tool on DIR, proves it is watching, starts the writer,
and for every line the tool reports (on stdout, through a FIFO its handlers
write, or as watchman JSON) takes the size of the file named at that moment.

  share_measure.py -d DIR -s SIZES [-o FIFO] [-J] [-q QUIET] [-D GIVE_UP]
                   -w WRITER... -- TOOL...

SIZES holds "NAME SIZE" lines: the files the writer writes and their final
sizes. WRITER is a command (one argument per -w) that prints "done NAME" (or
smbclient's "putting file ... as \\NAME") once NAME is written in full. The
file of a reported line is its last path component; it is looked up at the
reported path, else under DIR (ferry run has moved it by then). A report is
partial when the size then is below the final size (a file with holes counts
as its allocated blocks). Prints one
line of key=value results. The tool runs in its own process group, stopped
at the end.
"""
import argparse
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("-d", dest="dir", required=True)
ap.add_argument("-s", dest="sizes", required=True)
ap.add_argument("-o", dest="fifo")
ap.add_argument("-J", dest="json", action="store_true")
ap.add_argument("-q", dest="quiet", type=float, default=3.0)
ap.add_argument("-D", dest="give_up", type=float, default=30.0)
ap.add_argument("-w", dest="writer", action="append", required=True)
ap.add_argument("tool", nargs=argparse.REMAINDER)
a = ap.parse_args()
tool = a.tool[1:] if a.tool[:1] == ["--"] else a.tool

final = {}
with open(a.sizes) as f:
    for line in f:
        name, size = line.split()
        final[name] = int(size)

now = time.monotonic
reports = {}  # name -> list of (time, size, writer done then)
done_at = {}  # name -> time the writer said it was done
probes_seen = 0
tool_lines = 0


def size_of(path, name):
    """The size, or -1 when the file is not found; a file with holes (a
    reopening writer's later chunks in a new file) counts as its blocks."""
    def found():
        yield path
        yield os.path.join(a.dir, name)
        for top, _dirs, files in os.walk(a.dir):
            if name in files:
                yield os.path.join(top, name)

    for p in found():
        try:
            st = os.stat(p)
        except OSError:
            continue
        return min(st.st_size, st.st_blocks * 512)
    return -1


def reported(path):
    global probes_seen, tool_lines
    path = path.rstrip("\n")
    if not path:
        return
    tool_lines += 1
    name = os.path.basename(path.rstrip("/"))
    if name.startswith("bench-probe-"):
        probes_seen += 1
        return
    if name not in final:
        return
    t = now()
    if not os.path.isabs(path):
        path = os.path.join(a.dir, path)
    reports.setdefault(name, []).append((t, size_of(path, name)))


def tool_line(line):
    if not a.json:
        reported(line)
        return
    try:
        obj = json.loads(line)
    except ValueError:
        return
    for item in obj.get("files", []) if isinstance(obj, dict) else []:
        reported(item if isinstance(item, str) else item.get("name", ""))


class Lines:
    def __init__(self, fd, on_line):
        self.fd, self.on_line, self.buf = fd, on_line, b""

    def read(self):
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            self.on_line(line.decode("utf-8", "surrogateescape"))
        return True


done_re = re.compile(r"^(?:done (\S+)|putting file .* as \\(\S+) \()")


def writer_line(line):
    m = done_re.match(line)
    if m:
        done_at.setdefault(m.group(1) or m.group(2), now())


proc = subprocess.Popen(tool, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True)
os.set_blocking(proc.stdout.fileno(), False)
sources = {proc.stdout.fileno(): Lines(proc.stdout.fileno(), tool_line)}
if a.fifo:
    ffd = os.open(a.fifo, os.O_RDWR | os.O_NONBLOCK)
    sources[ffd] = Lines(ffd, tool_line)
last_line = now()


def pump(timeout):
    global last_line
    r, _, _ = select.select(list(sources), [], [], max(timeout, 0))
    for fd in r:
        before = tool_lines
        if not sources[fd].read():
            del sources[fd]
        if tool_lines != before:
            last_line = now()


def stop(code, **extra):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    print(" ".join(f"{k}={v}" for k, v in extra.items()))
    sys.exit(code)


# Watching? A probe file written here every 100 ms until one is reported,
# then 500 ms of quiet.
start = now()
n = 0
while probes_seen == 0:
    if now() - start > 30 or proc.poll() is not None:
        stop(1, failed=1, why="not_watching")
    with open(os.path.join(a.dir, f"bench-probe-{n}"), "w") as f:
        f.write("probe\n")
    n += 1
    t = now() + 0.1
    while now() < t and probes_seen == 0:
        pump(t - now())
while now() - last_line < 0.5:
    pump(0.5 - (now() - last_line))

# The writer, its lines read with the tool's.
w0 = now()
writer = subprocess.Popen(a.writer, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
os.set_blocking(writer.stdout.fileno(), False)
sources[writer.stdout.fileno()] = Lines(writer.stdout.fileno(), writer_line)
while writer.poll() is None or writer.stdout.fileno() in sources:
    pump(0.2)
    if now() - w0 > 600:
        writer.kill()
w1 = now()
writer_status = writer.wait()
# Then until QUIET seconds without a line, at most GIVE_UP seconds.
while now() - max(last_line, w1) < a.quiet and now() - w1 < a.give_up:
    pump(a.quiet - (now() - max(last_line, w1)))

handled = partial = twice = 0
by_kind = {}  # partial files per kind: the name up to its first "-"
last = None
for name, size in final.items():
    kind = "partial_" + name.split("-")[0]
    by_kind.setdefault(kind, 0)
    rs = reports.get(name, [])
    if not rs:
        continue
    handled += 1
    if any(s < size for _t, s in rs):
        partial += 1
        by_kind[kind] += 1
    if len(rs) > 1:
        twice += 1
    t = max(r[0] for r in rs)
    last = t if last is None or t > last else last
stop(0, files=len(final), handled=handled, partial=partial, never=len(final) - handled,
     reports=sum(len(r) for r in reports.values()), repeated=twice,
     writer_s=f"{w1 - w0:.2f}", writer_status=writer_status, writer_done=len(done_at),
     last_s="-" if last is None else f"{last - w0:.2f}", **by_kind)
