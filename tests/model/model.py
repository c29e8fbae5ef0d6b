#!/usr/bin/env python3
"""tests/model/model.py: a seeded, randomized test of ferry run against a model.

Each round (one seed) makes a fresh folder, starts one to three real `ferry run`
workers of one rule on it, and plays a random list of producer actions and
faults: files written and closed (one by one, or forty in a burst), renamed
into place, hard-linked in, linked in from an O_TMPFILE, written in a new
folder, moved in with their folder, delivered with `ferry put --marker`,
truncated and written again, deleted before they were ready, a writer killed
half-way (under done-file it never wrote its marker); workers killed with
SIGKILL and started again, more workers started, the folder deleted and made
again, the folder moved away (a file written into it there) and back. As
root, in a third of the rounds the folder is on a tmpfs of its own, which is
unmounted (a file written on it meanwhile, where it is kept) and mounted
again, whose done or failed folder refuses new files for a while (chattr +i),
and which fills up (producers meet ENOSPC) and is freed; in a quarter of the
rounds, workers whose kernel event queue holds 16 events (a burst overflows
it: they must rescan); in a quarter, workers that only poll the folder
(--backend poll: no inotify at all, every change found by listing); and a
hostile uploader (an unprivileged user made for the round) plays its moves at
the same time: links to a root-only canary folder, fifos, subfolders swapped
for links, writes into .ferry. At the end it checks:

  - every file a producer completed was handled at least once, with its final
    content; exactly once when no worker was killed;
  - with done-file, no handler ever saw content other than the final one, and
    no file whose writer died before its marker;
  - nothing is left in the work areas, and every completed file is in the
    done folder (once the done folder takes files again);
  - the canary folder is exactly as it was, and no canary content reached a
    handler.

On a failure it prints the seed and the actions, reduces the list to a
shorter one that still fails (--reduce), and exits 1.

  model.py --ferry build/ferry [--seconds 60] [--seed N] [--actions N] [--reduce]
"""
import argparse
import ctypes
import errno
import fcntl
import hashlib
import os
import pwd
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

HANDLER = r"""#!/bin/sh
# handler LOG DIR FILE DELAY HOW: one line per run: the name relative to DIR, and the SHA-256 of
# what it read; then a pause, so that files queue up behind it.
if [ "$5" = stdin ]; then sum=$(sha256sum | cut -c1-64); else sum=$(sha256sum <"$3" | cut -c1-64); fi
[ -n "$sum" ] || exit 1
rel=${FERRY_ORIGINAL_PATH#"$2"/}
printf '%s %s\n' "$rel" "$sum" >>"$1"
[ "$4" = 0 ] || sleep "$4"
"""

PRODUCER_ACTIONS = ["write", "rename", "chunks", "newdir", "movedir", "put", "delete", "link", "tmpfile", "burst",
                    "rewrite", "diewriting"]
FAULTS = ["kill", "add", "recreate", "moveroot"]
# Faults of the file system the folder is on: only in rounds where it is a tmpfs of its own.
MOUNT_FAULTS = ["unmount", "readonly", "full"]
QUEUE_SYSCTL = "/proc/sys/fs/inotify/max_queued_events"
SYSCTL_LOCK = "/run/lock/ferry-tests-sysctl.lock"  # as tests/system/helpers.bash
HOSTILE = ["symlink", "fifo", "swapdir", "plant", "dotferry", "swapferry"]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def wait_until(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Round:
    def __init__(self, args, seed, actions):
        self.args = args
        args.ferry = os.path.abspath(args.ferry)
        self.seed = seed
        self.rng = random.Random(seed)
        self.actions = actions
        self.root = tempfile.mkdtemp(prefix="ferry-model.")
        os.chmod(self.root, 0o755)
        self.dir = os.path.join(self.root, "in")
        self.stage = os.path.join(self.root, "stage")
        self.log = os.path.join(self.root, "handled")
        self.secret = os.path.join(self.root, "secret")
        self.workers = []
        self.worker_errs = []
        self.killed = 0
        self.expected = {}  # name relative to the folder -> final content's SHA-256
        self.partial_ok = set()  # names whose writer reopened: auto may hand out a part first
        self.never = set()  # names that must never be handed out (no marker under done-file)
        self.counter = 0
        self.attacker = None
        self.swapped_ferry = False
        self.problems = []
        self.overflows = 0
        self.small_queue = False
        self.fs = None  # mount rounds: the tmpfs that holds the folder and the stage
        self.kept = None  # while unmounted: where that tmpfs is kept
        self.immutable = set()  # folders made immutable now
        self.full = False  # the tmpfs is full now: producers may get ENOSPC
        self.made = []  # every name made, in order

    # ---- set-up ------------------------------------------------------------------

    def setup(self, policy, hostile, mount, backend="auto"):
        self.policy = policy
        self.backend = backend
        if mount:
            # The folder and the stage on a file system of their own, small enough to fill.
            self.fs = os.path.join(self.root, "fs")
            os.mkdir(self.fs, 0o755)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=755", "ferry-model", self.fs], check=True)
            self.dir = os.path.join(self.fs, "in")
            self.stage = os.path.join(self.fs, "stage")
        os.mkdir(self.stage, 0o755)
        os.mkdir(self.dir, 0o755)
        os.mkdir(self.secret, 0o700)
        for i in range(3):
            path = os.path.join(self.secret, "canary%d" % i)
            with open(path, "wb") as f:
                f.write(b"CANARY-%d-%d\n" % (self.seed, i))
            os.chmod(path, 0o600)
        self.canaries = {sha(b"CANARY-%d-%d\n" % (self.seed, i)) for i in range(3)}
        self.snapshot = self.snap(self.secret)
        with open(self.log, "w"):
            pass
        os.chmod(self.log, 0o666)
        handler = os.path.join(self.root, "handler")
        with open(handler, "w") as f:
            f.write(HANDLER)
        os.chmod(handler, 0o755)
        self.handler = handler
        if hostile:
            self.attacker = "ferry-model-%d" % (os.getpid() % 100000)
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", self.attacker],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            pw = pwd.getpwnam(self.attacker)
            self.att_uid, self.att_gid = pw.pw_uid, pw.pw_gid
            self.mode = self.rng.choice([0o1777, 0o775])
            os.chown(self.dir, 0, self.att_gid)
            os.chmod(self.dir, self.mode)
        # Without the sticky bit an uploader can rename .ferry while a handler runs, and the
        # path it was given then leads elsewhere: ferry-run(1) says to read standard input.
        self.stdin = bool(hostile and not os.stat(self.dir).st_mode & stat.S_ISVTX) or self.rng.random() < 0.3
        # Slow handlers and one job: files wait in the queue, where a swap can meet them.
        self.jobs = self.rng.choice([1, 1, 2, 4])
        self.delay = self.rng.choice(["0", "0.02", "0.1"])
        self.small_queue = os.geteuid() == 0 and self.rng.random() < 0.25
        if hostile and self.rng.random() < 0.25:
            self.preplanted_ferry()
        for _ in range(self.rng.randint(1, 2)):
            self.start_worker()

    def preplanted_ferry(self):
        """Before ferry's first start the uploader makes .ferry, its done and failed folders
        links to the canaries: ferry must refuse to start; the administrator removes it."""
        self.as_attacker('mkdir "$1/.ferry" && ln -s "$2" "$1/.ferry/done" && ln -s "$2" "$1/.ferry/failed"')
        errpath = os.path.join(self.root, "refused.err")
        with open(errpath, "wb") as err:
            code = subprocess.run([self.args.ferry, "run", "-r", "--name", "model", "--ready", self.policy,
                                   self.dir, "--", self.handler, self.log, self.dir, "{}", "0", "path"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=self.root,
                                  timeout=30).returncode
        with open(errpath, "rb") as f:
            said = f.read()
        if code == 0 or b"/.ferry is not owned by" not in said:
            self.problems.append("a .ferry planted by the uploader was not refused (exit %d): %s"
                                 % (code, said.decode(errors="replace")[-300:]))
        shutil.rmtree(os.path.join(self.dir, ".ferry"))

    def start_worker(self):
        self.restore_ferry()  # a worker would refuse the uploader's .ferry, rightly
        if not self.small_queue:
            return self.start_worker_now()
        # A kernel event queue of 16 for this worker's watches (taken when its inotify
        # instance is made): any burst overflows it, and the worker must rescan. Restored
        # at once, whatever happens.
        # The system tests' sysctl lock: no other test run saves this value meanwhile.
        with open(SYSCTL_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(QUEUE_SYSCTL) as f:
                before = f.read().strip()
            try:
                with open(QUEUE_SYSCTL, "w") as f:
                    f.write("16")
                self.start_worker_now()
            finally:
                with open(QUEUE_SYSCTL, "w") as f:
                    f.write(before)

    def start_worker_now(self):
        errpath = os.path.join(self.root, "worker%d.err" % len(self.workers))
        command = [self.args.ferry, "run", "-r", "--name", "model", "--lease", "2s", "--retries", "0",
                   "--ready", self.policy, "--jobs", str(self.jobs)]
        if self.backend == "poll":
            command += ["--backend", "poll", "--poll-interval", "200ms"]
        if self.attacker:
            command += ["--user", "nobody"]
        if self.stdin:
            command += ["--stdin"]
        command += [self.dir, "--", self.handler, self.log, self.dir, "{}", self.delay,
                    "stdin" if self.stdin else "path"]
        with open(errpath, "wb") as err:
            p = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                 cwd=self.root)
        self.workers.append(p)
        self.worker_errs.append(errpath)

        def started():
            with open(errpath, "rb") as f:
                return b": watching " in f.read()

        if not wait_until(lambda: p.poll() is not None or started(), 30) or p.poll() is not None:
            with open(errpath, "rb") as f:
                self.problems.append("a worker did not start: %s" % f.read().decode(errors="replace")[-300:])

    def snap(self, folder):
        out = []
        for name in sorted(os.listdir(folder)):
            st = os.lstat(os.path.join(folder, name))
            with open(os.path.join(folder, name), "rb") as f:
                digest = sha(f.read())
            out.append((name, st.st_ino, st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                        st.st_nlink, digest))
        return out

    # ---- the producers -------------------------------------------------------------

    def name(self, prefix="f"):
        self.counter += 1
        name = "%s%03d-%d" % (prefix, self.counter, self.rng.randint(0, 9999))
        self.made.append(name)
        return name

    def content(self):
        return os.urandom(self.rng.choice([1, 100, 5000, 70000]))

    def write_staged(self, data):
        path = os.path.join(self.stage, self.name("s"))
        with open(path, "wb") as f:
            f.write(data)
        return path

    def do(self, action):
        if not self.full:
            return getattr(self, "act_" + action)()
        made = len(self.made)
        try:
            getattr(self, "act_" + action)()
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            # A careful producer: what it could not write whole is not published; a part
            # that was closed may be handed out, as any closed file is.
            for name in self.made[made:]:
                self.partial_ok.add(name)

    def act_write(self):
        if self.policy != "auto":
            return self.act_put()
        name, data = self.name(), self.content()
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)
        self.expected[name] = sha(data)

    def act_burst(self):
        # Forty small files as fast as they can be written: more events than a small
        # kernel queue holds.
        if self.policy != "auto":
            return self.act_put()
        for _ in range(40):
            name, data = self.name("b"), os.urandom(self.rng.choice([1, 100]))
            fd = os.open(os.path.join(self.dir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)
            self.expected[name] = sha(data)

    def act_rewrite(self):
        # Written, then truncated and written again under the same name: the last version
        # must come out (the first may too).
        if self.policy != "auto":
            return self.act_put()
        name, first, second = self.name(), self.content(), self.content()
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(first)
        time.sleep(self.rng.random() * 0.15)
        with open(path, "wb") as f:
            f.write(second)
        try:
            whole = os.path.getsize(path) == len(second)
        except FileNotFoundError:
            whole = False
        if whole:
            self.expected[name] = sha(second)
        else:
            # Claimed between the truncation and the write: that claim got the rest.
            self.partial_ok.add(name)

    def act_diewriting(self):
        # A writer killed half-way: under done-file it never wrote the marker, so the file
        # must never be handed out; under auto it is complete as it is (documented).
        if self.policy == "auto":
            return self.act_write()
        name = self.name("k")
        writer = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                                   "f = open(sys.argv[1], 'wb'); f.write(b'half' * 1000); f.flush()\n"
                                   "time.sleep(30)", os.path.join(self.dir, name)])
        time.sleep(0.05 + self.rng.random() * 0.1)
        writer.kill()
        writer.wait()
        self.never.add(name)

    def act_chunks(self):
        # Written in three opens: auto may hand out a part first (documented); the last
        # version must come out all the same.
        if self.policy != "auto":
            return self.act_put()
        name, parts = self.name(), [self.content() for _ in range(3)]
        path = os.path.join(self.dir, name)
        for i, part in enumerate(parts):
            with open(path, "ab" if i else "wb") as f:
                f.write(part)
        if os.path.exists(path) and os.path.getsize(path) == sum(len(p) for p in parts):
            self.expected[name] = sha(b"".join(parts))
            self.partial_ok.add(name)
        else:
            # A worker took the first part before the rest came: the rest made a new file
            # (appended to a name that was free again); each is one complete version.
            self.partial_ok.add(name)

    def act_rename(self):
        if self.policy != "auto":
            return self.act_put()
        name, data = self.name(), self.content()
        os.rename(self.write_staged(data), os.path.join(self.dir, name))
        self.expected[name] = sha(data)

    def act_newdir(self):
        if self.policy != "auto":
            return self.act_put()
        sub = self.name("d")
        os.mkdir(os.path.join(self.dir, sub))
        for _ in range(self.rng.randint(1, 3)):
            name, data = self.name(), self.content()
            with open(os.path.join(self.dir, sub, name), "wb") as f:
                f.write(data)
            self.expected[sub + "/" + name] = sha(data)

    def act_movedir(self):
        if self.policy != "auto":
            return self.act_put()
        sub = self.name("m")
        staged = os.path.join(self.stage, sub)
        os.mkdir(staged)
        files = {}
        for _ in range(self.rng.randint(1, 3)):
            name, data = self.name(), self.content()
            with open(os.path.join(staged, name), "wb") as f:
                f.write(data)
            files[sub + "/" + name] = sha(data)
        os.rename(staged, os.path.join(self.dir, sub))
        self.expected.update(files)

    def act_link(self):
        # Published by a hard link from a staging folder: its only event is IN_CREATE.
        if self.policy != "auto":
            return self.act_put()
        name, data = self.name(), self.content()
        os.link(self.write_staged(data), os.path.join(self.dir, name))
        self.expected[name] = sha(data)

    def act_tmpfile(self):
        # An O_TMPFILE written, linked in (linkat through /proc/self/fd), then closed.
        if self.policy != "auto":
            return self.act_put()
        name, data = self.name(), self.content()
        fd = os.open(self.dir, os.O_TMPFILE | os.O_WRONLY, 0o644)
        try:
            os.write(fd, data)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.linkat(-100, b"/proc/self/fd/%d" % fd, -100, os.fsencode(os.path.join(self.dir, name)),
                           0x400) != 0:
                return  # the file system refuses O_TMPFILE links: nothing was published
        finally:
            os.close(fd)
        self.expected[name] = sha(data)

    def act_put(self):
        name, data = self.name(), self.content()
        staged = self.write_staged(data)
        target = os.path.join(self.stage, name)
        os.rename(staged, target)
        command = [self.args.ferry, "put"] + (["--marker"] if self.policy == "done-file" else []) + [target,
                                                                                                      self.dir]
        if subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
            self.expected[name] = sha(data)

    def act_delete(self):
        # Written and removed at once: handled or not, but never wrong.
        name = self.name("x")
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(self.content())
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.partial_ok.add(name)

    # ---- faults --------------------------------------------------------------------

    def act_kill(self):
        alive = [w for w in self.workers if w.poll() is None]
        if not alive:
            return self.start_worker()
        victim = self.rng.choice(alive)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.killed += 1
        self.start_worker()

    def act_add(self):
        if len([w for w in self.workers if w.poll() is None]) < 3:
            self.start_worker()

    def make_dir(self):
        os.mkdir(self.dir, 0o755)
        if self.attacker:
            os.chown(self.dir, 0, self.att_gid)
            os.chmod(self.dir, self.mode)

    def backs(self, said=b" is back: taken up again"):
        """How many times each live worker said it took its folder up again (or said)."""
        out = {}
        for p, errpath in zip(self.workers, self.worker_errs):
            if p.poll() is None:
                with open(errpath, "rb") as f:
                    out[errpath] = f.read().count(said)
        return out

    def losses(self):
        """How many times each live worker said its folder was gone."""
        return self.backs(b": its files wait; it is looked for again")

    def wait_taken_up(self, before):
        """Each worker that was alive takes the folder up again by itself (within the
        documented back-off); only then do the uploads go on."""
        def all_back():
            now = self.backs()
            return all(now.get(k, n + 1) > n for k, n in before.items())

        if not wait_until(all_back, 45):
            self.problems.append("a worker did not take its folder up again within 45s (see %s/worker*.err)"
                                 % self.root)

    def wait_lost_taken_up(self, before, lost_before, look):
        """After the folder is back: the workers that said it was gone within look
        seconds (a look under way then has said it by then) take it up again."""
        time.sleep(look)
        lost = {k: n - lost_before.get(k, 0) for k, n in self.losses().items()}
        self.wait_taken_up({k: n for k, n in before.items() if lost.get(k, 0) > 0})

    def act_recreate(self):
        # The folder deleted with all it holds, and made again: what was in it is gone
        # (handled or not, both right); the workers must take up the new one by themselves.
        self.restore_ferry()
        before = self.backs()
        while os.path.lexists(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)  # workers move files meanwhile
        for name in self.expected:
            self.partial_ok.add(name)
        self.expected = {}
        self.make_dir()
        self.wait_taken_up(before)

    def act_moveroot(self):
        # Moved away, a file written into it there, and moved back: the same folder, the
        # same files. A handler given a path while it is away cannot open it (documented):
        # only with --stdin.
        if not self.stdin:
            return self.act_recreate()
        self.restore_ferry()
        before, lost_before = self.backs(), self.losses()
        away = self.dir + ".away"
        os.rename(self.dir, away)
        self.drop_into(away)
        time.sleep(self.rng.random() * 1.5)
        os.rename(away, self.dir)
        if self.backend == "poll":
            # A worker that only polls sees the folder gone only when a poll falls inside
            # that moment; one that did not never lost it (the same folder, back in place).
            self.wait_lost_taken_up(before, lost_before, 1.0)
        else:
            self.wait_taken_up(before)

    def drop_into(self, folder):
        """One complete file written into the folder while it is away, at folder."""
        name, data = self.name(), self.content()
        if self.policy == "auto":
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
            self.expected[name] = sha(data)
        else:
            target = os.path.join(self.stage, name)
            os.rename(self.write_staged(data), target)
            if subprocess.run([self.args.ferry, "put", "--marker", target, folder], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                self.expected[name] = sha(data)

    # ---- faults of the folder's file system (mount rounds) ----------------------

    def act_unmount(self):
        # The file system above the folder unmounted and mounted again, as a share is: kept
        # reachable elsewhere meanwhile, where a file is written into the folder (as another
        # machine writes on the server). Paths handed out meanwhile lead nowhere: --stdin only.
        if not self.fs or not self.stdin:
            return self.act_recreate()
        self.restore_ferry()
        before, lost_before = self.backs(), self.losses()
        self.kept = os.path.join(self.root, "kept")
        os.makedirs(self.kept, exist_ok=True)
        subprocess.run(["mount", "--bind", self.fs, self.kept], check=True)
        subprocess.run(["umount", "-l", self.fs], check=True)
        stage = self.stage
        self.stage = os.path.join(self.kept, "stage")
        try:
            self.drop_into(os.path.join(self.kept, "in"))
        finally:
            self.stage = stage
        time.sleep(self.rng.random() * 1.5)
        subprocess.run(["mount", "--move", self.kept, self.fs], check=True)
        self.kept = None
        # A worker whose once-a-second look fell outside that moment saw nothing: the
        # folder it holds never went away (the same file system, the same folder).
        self.wait_lost_taken_up(before, lost_before, 0.2)

    def act_readonly(self):
        # The done (or failed) folder refuses new entries for a while, root's too: handled
        # files wait in the work area, and are moved, never handled again, once it takes them.
        if not self.fs or not shutil.which("chattr"):
            return
        self.restore_ferry()
        folder = os.path.join(self.dir, ".ferry", self.rng.choice(["done", "done", "failed"]))
        if not os.path.isdir(folder) or subprocess.run(["chattr", "+i", folder], stdout=subprocess.DEVNULL,
                                                       stderr=subprocess.DEVNULL).returncode != 0:
            return
        self.immutable.add(folder)
        until = time.monotonic() + 0.3 + self.rng.random() * 1.7
        for _ in range(self.rng.randint(1, 3)):
            self.do(self.rng.choice(["write", "rename", "link", "put", "burst"]))
        time.sleep(max(0, until - time.monotonic()))
        subprocess.run(["chattr", "-i", folder], check=True)
        self.immutable.discard(folder)

    def act_full(self):
        # The file system full for a while: producers get ENOSPC (what they could not write
        # is not expected), ferry's notes and moves meet it too; then space comes back.
        if not self.fs:
            return
        filler = os.path.join(self.fs, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)
        self.full = True
        try:
            until = time.monotonic() + 0.3 + self.rng.random() * 1.2
            for _ in range(self.rng.randint(1, 3)):
                self.do(self.rng.choice(["write", "rename", "link", "put", "chunks"]))
            time.sleep(max(0, until - time.monotonic()))
        finally:
            self.full = False
            os.unlink(filler)

    # ---- the hostile uploader ------------------------------------------------------

    def as_attacker(self, code, name=None):
        return subprocess.run(["setpriv", "--reuid=%d" % self.att_uid, "--regid=%d" % self.att_gid,
                               "--clear-groups", "--", "sh", "-c", code, "sh", self.dir, self.secret,
                               name or self.name("h")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode

    def act_symlink(self):
        self.as_attacker('ln -s "$2/canary0" "$1/$3"')

    def act_fifo(self):
        self.as_attacker('mkfifo "$1/$3"')

    def act_swapdir(self):
        # An upload of its own in a subfolder, then the subfolder swapped for a link to the
        # canaries, with a file of the same name behind it.
        # Swapped at once, or after the file may have been seen ready and queued.
        self.as_attacker('mkdir "$1/$3" && printf "mine" >"$1/$3/canary1" && sleep %.3f && '
                         'mv "$1/$3" "$1/$3.old" && ln -s "$2" "$1/$3"' % (self.rng.random() * 0.3))

    def act_plant(self):
        # Names ferry uses for its temporary files, as links to the canaries.
        self.as_attacker('for n in .ferry-tmp.1.0 .ferry-probe.1 .ferry-out.aaaaaa; do '
                         'ln -s "$2/canary2" "$1/$n"; done')

    def act_swapferry(self):
        # In a folder it may rename in (no sticky bit): ferry's .ferry renamed away and one of
        # its own put in place, done and failed linked to the canaries, work linked back.
        if self.swapped_ferry:
            return
        name = self.name("h")
        if self.as_attacker('mv "$1/.ferry" "$1/$3"', name) != 0:
            return  # the sticky bit: not hers to rename
        self.swapped_ferry = name
        self.as_attacker('mkdir "$1/.ferry" && ln -s "$2" "$1/.ferry/done" && '
                         'ln -s "$2" "$1/.ferry/failed" && ln -s "../$3/work" "$1/.ferry/work"', name)

    def restore_ferry(self):
        """What the administrator does after such a swap: the planted one out, ferry's back."""
        if not self.swapped_ferry:
            return
        planted = os.path.join(self.dir, ".ferry")
        if os.path.lexists(planted):
            if os.path.isdir(planted) and not os.path.islink(planted):
                shutil.rmtree(planted)
            else:
                os.unlink(planted)
        os.rename(os.path.join(self.dir, self.swapped_ferry), planted)
        self.swapped_ferry = False

    def act_dotferry(self):
        # Into ferry's own folder: must be refused by the permissions alone.
        if self.as_attacker('ln -s "$2" "$1/.ferry/work/evil" || mkdir "$1/.ferry/done/x"') == 0:
            self.problems.append("the attacker could write into .ferry")

    # ---- the end -------------------------------------------------------------------

    def handled(self):
        out = []
        with open(self.log, "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                rel, _, digest = line.rpartition(" ")
                out.append((rel, digest))
        return out

    def all_handled(self):
        seen = {(rel, digest) for rel, digest in self.handled()}
        return all((name, digest) in seen for name, digest in self.expected.items())

    def check(self):
        if not wait_until(self.all_handled, self.args.settle):
            seen = {(rel, digest) for rel, digest in self.handled()}
            missing = sorted(n for n, d in self.expected.items() if (n, d) not in seen)
            self.problems.append("not handled with their final content after %ds: %s"
                                 % (self.args.settle, " ".join(missing[:10])))
        stopped = [w for w in self.workers if w.poll() is None]
        for w in stopped:
            w.send_signal(signal.SIGTERM)
        for w in stopped:
            try:
                if w.wait(30) != 0:
                    self.problems.append("a worker exited with %d after SIGTERM (see %s/worker*.err)"
                                         % (w.returncode, self.root))
            except subprocess.TimeoutExpired:
                w.kill()
                self.problems.append("a worker did not stop within 30s of SIGTERM")
        self.restore_ferry()
        counts = {}
        for rel, digest in self.handled():
            counts[(rel, digest)] = counts.get((rel, digest), 0) + 1
            if digest in self.canaries:
                self.problems.append("a handler read a canary, as %s" % rel)
            if rel in self.never:
                self.problems.append("%s was handed out, but its writer died before its marker" % rel)
            if rel in self.expected and digest != self.expected[rel] and rel not in self.partial_ok \
                    and self.policy == "done-file":
                self.problems.append("%s handed out with content that is not its final one" % rel)
        if self.killed == 0:
            twice = sorted(k[0] for k, n in counts.items() if n > 1 and k[0] in self.expected
                           and k[0] not in self.partial_ok)
            if twice:
                self.problems.append("handled more than once with no worker killed: %s" % " ".join(twice[:10]))
        work = os.path.join(self.dir, ".ferry", "work")
        left = []
        for top, dirs, files in os.walk(work):
            left += [os.path.join(top, f)[len(work) + 1:] for f in files if f not in (".lease", ".clock")]
        if left:
            self.problems.append("left in the work areas: %s" % " ".join(left[:10]))
        done = os.path.join(self.dir, ".ferry", "done")
        for name in self.expected:
            if not os.path.lexists(os.path.join(done, name)):
                self.problems.append("%s is not in the done folder" % name)
                break
        if self.snap(self.secret) != self.snapshot:
            self.problems.append("the canary folder changed")
        for top, dirs, files in os.walk(self.root):
            for f in files:
                path = os.path.join(top, f)
                if path.startswith(self.secret) or not os.path.isfile(path) or os.path.islink(path):
                    continue
                try:
                    with open(path, "rb") as fh:
                        if b"CANARY-%d-" % self.seed in fh.read(1 << 20):
                            self.problems.append("canary content in %s" % path)
                except OSError:
                    pass
        return not self.problems

    def overflows_seen(self):
        count = 0
        for errpath in self.worker_errs:
            with open(errpath, "rb") as f:
                count += f.read().count(b"the kernel event queue overflowed")
        return count

    def worker_tails(self, lines=8):
        """The last things each worker said, but its claims, starts and outcomes: what a
        failure's cause is told from once the round's folder is gone."""
        out = []
        routine = (b"] claimed ", b": claimed", b": started ", b": done in ", b"is writable by its group",
                   b"fs/protected_symlinks")
        for i, errpath in enumerate(self.worker_errs):
            try:
                with open(errpath, "rb") as f:
                    said = [l for l in f.read().splitlines() if not any(r in l for r in routine)]
            except OSError:
                continue
            state = "running" if self.workers[i].poll() is None else "exited %d" % self.workers[i].returncode
            out.append("model: worker%d (%s) said last:" % (i, state))
            out += ["    " + l.decode(errors="replace") for l in said[-lines:]]
        return out

    def cleanup(self):
        for w in self.workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        for folder in self.immutable:
            subprocess.run(["chattr", "-i", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for mount in (self.kept, self.fs):
            if mount:
                subprocess.run(["umount", "-l", mount], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.attacker:
            subprocess.run(["userdel", self.attacker], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def plan(seed, count, hostile):
    rng = random.Random(seed * 7919 + 1)
    policy = rng.choice(["auto", "auto", "done-file"])
    mount = os.geteuid() == 0 and rng.random() < 1 / 3
    kinds = PRODUCER_ACTIONS * 4 + FAULTS + (MOUNT_FAULTS * 2 if mount else []) + (HOSTILE * 2 if hostile else [])
    actions = [rng.choice(kinds) for _ in range(count)]
    # Drawn last, so that a seed's policy and actions are what they were before backends were drawn.
    backend = "poll" if rng.random() < 1 / 4 else "auto"
    return policy, mount, backend, actions


def play(args, seed, policy, mount, backend, actions, hostile):
    r = Round(args, seed, actions)
    try:
        r.setup(policy, hostile, mount, backend)
        for action in actions:
            r.do(action)
            time.sleep(r.rng.random() * 0.03)
        ok = r.check()
        r.overflows = r.overflows_seen()
        if not ok:
            r.tails = r.worker_tails()
        return ok, r
    finally:
        r.cleanup()


def reduce(args, seed, policy, mount, backend, actions, hostile):
    """Greedy: drops chunks of the list, then single actions, while it still fails."""
    chunk = max(1, len(actions) // 2)
    while chunk >= 1:
        i = 0
        while i < len(actions):
            trial = actions[:i] + actions[i + chunk:]
            if trial and not play(args, seed, policy, mount, backend, trial, hostile)[0]:
                actions = trial
            else:
                i += chunk
        chunk //= 2
    return actions


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferry", required=True)
    parser.add_argument("--seconds", type=float, default=60, help="how long to play new seeds")
    parser.add_argument("--seed", type=int, help="play this seed only")
    parser.add_argument("--actions", type=int, default=40)
    parser.add_argument("--settle", type=int, default=60, help="seconds to wait for the last files")
    parser.add_argument("--reduce", action="store_true", help="on a failure, look for a shorter action list")
    parser.add_argument("--keep", action="store_true", help="keep each round's folder")
    args = parser.parse_args()
    hostile = os.geteuid() == 0 and shutil.which("useradd") and shutil.which("setpriv")
    if not hostile:
        print("model: no hostile uploader (needs root, useradd and setpriv)")
    start = time.monotonic()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    first = seed  # the seeds played follow from it: --seed replays one of them
    rounds = actions_played = kills = overflows = mounts = polled = 0
    played = {}
    while True:
        policy, mount, backend, actions = plan(seed, args.actions, hostile)
        ok, r = play(args, seed, policy, mount, backend, actions, hostile)
        rounds += 1
        mounts += mount
        polled += backend == "poll"
        actions_played += len(actions)
        kills += r.killed
        overflows += r.overflows
        for action in actions:
            played[action] = played.get(action, 0) + 1
        if not ok:
            print("model: FAILED seed %d (policy %s%s%s): %s" % (seed, policy, ", on a tmpfs of its own" if mount else "",
                                                              ", polled only" if backend == "poll" else "",
                                                              "; ".join(r.problems)))
            print("model: actions: %s" % " ".join(actions))
            print("\n".join(r.tails))
            if args.reduce:
                shorter = reduce(args, seed, policy, mount, backend, actions, hostile)
                print("model: reduced to %d actions: %s" % (len(shorter), " ".join(shorter)))
            print("model: replay with: %s --ferry %s --seed %d --actions %d" % (sys.argv[0], args.ferry, seed,
                                                                              args.actions))
            return 1
        if args.seed is not None or time.monotonic() - start >= args.seconds:
            break
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
    print("model: seeds from %d (each next one = (seed * 1103515245 + 12345) mod 2^31)" % first)
    print("model: %d rounds (%d on a tmpfs of their own, %d polled only), %d actions (%d worker kills, %d kernel "
          "queue overflows rescanned), %s, all invariants held" % (rounds, mounts, polled, actions_played, kills,
                                                                  overflows,
                               "with a hostile uploader" if hostile else "no hostile uploader"))
    print("model: actions played: %s" % ", ".join("%s %d" % (k, played[k]) for k in sorted(played)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
