#!/usr/bin/python3
"""poll_measure.py: one polling tool, one folder: CPU and system calls per idle
poll cycle, detection delay, memory. Called by bench/poll; prints key=value lines.

A poll cycle is counted where it happens: the helper watches the folder that the
tool lists (or the folder behind a FUSE mount, which the FUSE server lists on the
tool's behalf) for IN_OPEN on the folder itself, with inotify (through ctypes: no
module needed). Opens closer together than a third of the interval belong to one
cycle. CPU is read from /proc at the start of two cycles N cycles apart, so the
difference is exactly N cycles of work, whatever a cycle costs: the tool's live
threads from schedstat (nanoseconds), its reaped children from cutime+cstime
(clock ticks; they only matter for the find loop, whose cycles are 100 times
longer than a tick), and its live descendants from schedstat.
"""
import argparse
import ctypes
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time

IN_OPEN = 0x20
IN_CLOSE_NOWRITE = 0x10
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def now():
    return time.monotonic()


class CycleCounter:
    """Counts listings of one folder: IN_OPEN events on the folder itself."""

    def __init__(self, folder, interval):
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            sys.exit("poll_measure: inotify_init1: " + os.strerror(ctypes.get_errno()))
        if libc.inotify_add_watch(self.fd, os.fsencode(folder), IN_OPEN | IN_CLOSE_NOWRITE) < 0:
            sys.exit("poll_measure: inotify_add_watch: " + os.strerror(ctypes.get_errno()))
        self.gap = interval / 3
        self.last_open = -1e9
        self.cycles = 0  # cycle starts seen so far
        self.starts = []
        self.closes = 0  # closes of the folder seen so far
        self.last_close = -1e9

    def fileno(self):
        return self.fd

    def drain(self):
        """Reads what is queued; returns how many new cycles started."""
        new = 0
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return new
            offset = 0
            while offset < len(data):
                _, mask, _, length = struct.unpack_from("iIII", data, offset)
                offset += 16 + length
                if length == 0 and mask & IN_CLOSE_NOWRITE:
                    self.closes += 1
                    self.last_close = now()
                if length == 0 and mask & IN_OPEN:  # the folder itself, not a file in it
                    t = now()
                    if t - self.last_open > self.gap:
                        self.cycles += 1
                        new += 1
                        self.starts.append(t)
                    self.last_open = t


class Tool:
    def __init__(self, argv, log):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buffer = b""
        self.lines = []

    def read(self):
        try:
            data = os.read(self.proc.stdout.fileno(), 1 << 20)
        except BlockingIOError:
            return
        if not data:
            raise SystemExit("poll_measure: the tool stopped; see its log")
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        self.lines.extend(lines)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def wait_until(counter, tool, done, deadline, what):
    """Waits for done() while reading the tool's output and counting cycles."""
    end = now() + deadline
    while not done():
        left = end - now()
        if left <= 0:
            sys.exit("poll_measure: timed out waiting for " + what)
        ready, _, _ = select.select([counter, tool.proc.stdout], [], [], min(left, 0.5))
        if counter in ready:
            counter.drain()
        if tool.proc.stdout in ready:
            tool.read()
        if tool.proc.poll() is not None:
            tool.read()
            sys.exit("poll_measure: the tool exited early (status %s)" % tool.proc.returncode)


def descendants(pid):
    """pid and every process below it."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu(pid):
    """CPU ns of pid's tree: live threads (schedstat), reaped children (ticks); and user, sys ticks."""
    total, user, system = 0.0, 0, 0
    for p in descendants(pid):
        try:
            for tid in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/schedstat" % (p, tid)) as f:
                    total += int(f.read().split()[0])
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        total += (cutime + cstime) * TICK_NS
        user += utime + cutime
        system += stime + cstime
    return total, user, system


def rss_kb(pid):
    rss = hwm = 0
    for p in descendants(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except OSError:
            continue
    return rss, hwm


def write_file(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"new file\n")
    os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listed", required=True, help="the folder whose opens count cycles")
    ap.add_argument("--write", required=True, help="where new files are written")
    ap.add_argument("--interval", type=float, required=True)
    ap.add_argument("--warm", type=int, default=6, help="cycles before measuring")
    ap.add_argument("--warm-seconds", type=float, default=0,
                    help="seconds before measuring, for tools whose cycles cannot be counted (FUSE)")
    ap.add_argument("--cycles", type=int, default=10, help="cycles of CPU measurement")
    ap.add_argument("--strace-cycles", type=int, default=0)
    ap.add_argument("--delays", type=int, default=5)
    ap.add_argument("--log", required=True)
    ap.add_argument("--strace-out", default=None)
    ap.add_argument("argv", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    argv = a.argv[1:] if a.argv and a.argv[0] == "--" else a.argv
    tag = "%d-%d" % (os.getpid(), int(time.time()))

    counter = CycleCounter(a.listed, a.interval)
    with open(a.log, "ab") as log:
        tool = Tool(argv, log)
    try:
        t0 = now()
        # Ready: the tool reports a file written after it started (files
        # written before it listed the folder are not new to it: write
        # probes until one is reported).
        probes = []

        def probe_seen():
            if any(p[0].encode() in l for l in tool.lines for p in probes):
                return True
            if not probes or now() - probes[-1][1] > max(1.0, 2 * a.interval):
                name = "probe-%s-%d" % (tag, len(probes))
                write_file(os.path.join(a.write, name))
                probes.append((name, now()))
            return False

        wait_until(counter, tool, probe_seen, 300, "the probe")
        print("ready_s=%.2f" % (now() - t0))
        first = counter.cycles
        wait_until(counter, tool, lambda: counter.cycles >= first + a.warm, 600, "warm-up cycles")
        settle = now() + a.warm_seconds
        wait_until(counter, tool, lambda: now() >= settle, 600, "warm-up")
        if a.cycles:
            # CPU over whole cycles, idle (nothing written meanwhile).
            start_cycle = counter.cycles
            c0, u0, s0 = tree_cpu(tool.proc.pid)
            t_start = counter.starts[-1]
            wait_until(counter, tool, lambda: counter.cycles >= start_cycle + a.cycles, 600, "measured cycles")
            c1, u1, s1 = tree_cpu(tool.proc.pid)
            n = counter.cycles - start_cycle
            period = (counter.starts[-1] - t_start) / n
            print("cycles=%d" % n)
            print("cycle_period_s=%.3f" % period)
            print("cpu_ms_per_cycle=%.2f" % ((c1 - c0) / 1e6 / n))
            print("user_ms_per_cycle=%.1f" % ((u1 - u0) * TICK_NS / 1e6 / n))
            print("sys_ms_per_cycle=%.1f" % ((s1 - s0) * TICK_NS / 1e6 / n))
            rss, hwm = rss_kb(tool.proc.pid)
            print("rss_kb=%d" % rss)
            print("hwm_kb=%d" % hwm)

        # System calls over whole cycles: strace attached to the running tool
        # while it is idle (just after it closed the folder), detached while it
        # is idle again after the cycles counted.
        if a.cycles and a.strace_cycles:
            out = a.strace_out or (a.log + ".strace")
            first = counter.cycles
            wait_until(counter, tool, lambda: counter.cycles > first, 600, "a cycle before strace")
            closes = counter.closes
            wait_until(counter, tool, lambda: counter.closes > closes, 600, "the end of a cycle")
            settle = now() + 0.1 * a.interval
            wait_until(counter, tool, lambda: now() >= settle, 60, "a pause")
            st = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(tool.proc.pid)],
                                  stderr=subprocess.DEVNULL)
            first = counter.cycles
            wait_until(counter, tool, lambda: counter.cycles >= first + a.strace_cycles, 1200, "straced cycles")
            closes = counter.closes
            wait_until(counter, tool, lambda: counter.closes > closes, 600, "the end of a cycle")
            settle = now() + 0.3 * a.interval
            wait_until(counter, tool, lambda: now() >= settle, 60, "a pause")
            n = counter.cycles - first
            st.send_signal(signal.SIGINT)
            st.wait(timeout=60)
            calls = 0
            top = []
            with open(out) as f:
                for line in f:
                    parts = line.split()
                    if parts and parts[-1] == "total":
                        calls = int(parts[3])
                    elif len(parts) >= 5 and parts[0][0].isdigit():
                        top.append((int(parts[3]), parts[-1]))
            top.sort(reverse=True)
            print("strace_cycles=%d" % n)
            print("syscalls_per_cycle=%.0f" % (calls / n))
            print("syscalls_top=%s" % ",".join("%s:%d" % (name, c // n) for c, name in top[:4]))
        # Detection delay: a new file at a random moment of the cycle.
        delays = []
        for i in range(a.delays):
            deadline = now() + random.uniform(0, a.interval)
            wait_until(counter, tool, lambda: now() >= deadline, 60, "a pause")
            name = "new-%s-%d" % (tag, i)
            seen_before = len(tool.lines)
            start = now()
            write_file(os.path.join(a.write, name))
            wait_until(counter, tool, lambda: any(name.encode() in l for l in tool.lines[seen_before:]), 600,
                       "new file " + name)
            delays.append(now() - start)
        if delays:
            delays.sort()
            print("delay_ms_median=%.1f" % (1000 * delays[len(delays) // 2]))
            print("delay_ms_max=%.1f" % (1000 * delays[-1]))
            print("delay_ms_all=%s" % ",".join("%.0f" % (1000 * d) for d in delays))

    finally:
        tool.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
