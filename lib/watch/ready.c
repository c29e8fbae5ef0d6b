/* ready.c: ready policies at work: deciding when a file is completely written.
 *
 * What each policy is (name, argument, needs, description, explanation) is
 * policy.c's table; its change function, here, runs the policy's part of a
 * small state machine (see enum ferry__state) that each file runs, fed by
 * the changes the tree reports. A file is reported ready once per version: a
 * version is the (inode, size, mtime) seen when it was reported, and a file
 * becomes a new version when it is written to, arrives by rename, or is found
 * by a scan with a different stat. That is what makes readiness survive queue
 * overflows (a rescan re-offers every file; reported ones are recognised) and
 * ignore late duplicate closes (NFSv4 servers close their cached fd later).
 *
 * Delays are kept in timer queues of one fixed delay each, so a queue is
 * ordered by appending and the next deadline is always its head.
 */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool ferry__ready_is_marker(const struct ferry_watch *w, const char *name, size_t len)
{
        const struct ferry__policy *p = &w->policy;
        size_t mlen;

        if (p->kind != FERRY__POLICY_DONE_FILE)
                return false;
        mlen = strlen(p->marker);
        if (!p->marker_is_suffix)
                return len == mlen && memcmp(name, p->marker, len) == 0;
        return len > mlen && memcmp(name + len - mlen, p->marker, mlen) == 0;
}

/* Judged by stat alone: events can be stale (a rescan may already have
 * reported what they describe), the file's (inode, size, mtime) cannot. Since
 * Linux 6.13 a timestamp read by stat is fine-grained for the next write, so a
 * rewrite is seen even within one clock tick. */
static bool is_new_version(const struct ferry__file *f, const struct ferry__version *v)
{
        return !f->was_reported || !ferry__same_version(&f->reported, v);
}

/* ---- timer queues ---------------------------------------------------------- */

static void timer_unlink(struct ferry_watch *w, struct ferry__file *f)
{
        struct ferry__timer_queue *q;

        if (f->state != FERRY__GUARD && f->state != FERRY__SETTLE && f->state != FERRY__QUIET)
                return;
        q = &w->timers[f->timer];
        if (f->timer_prev)
                f->timer_prev->timer_next = f->timer_next;
        else
                q->head = f->timer_next;
        if (f->timer_next)
                f->timer_next->timer_prev = f->timer_prev;
        else
                q->tail = f->timer_prev;
        f->timer_prev = f->timer_next = NULL;
}

static void set_state(struct ferry_watch *w, struct ferry__file *f, enum ferry__state state)
{
        timer_unlink(w, f);
        f->state = (uint8_t)state;
        f->guard_unasked = false;
}

/* (Re)starts the file's delay in timer queue `timer`. */
static void schedule(struct ferry_watch *w, struct ferry__file *f, enum ferry__state state, int timer)
{
        struct ferry__timer_queue *q = &w->timers[timer];

        set_state(w, f, state);
        f->timer = (uint8_t)timer;
        f->deadline = ferry__now() + q->delay_ns;
        f->timer_next = NULL;
        f->timer_prev = q->tail;
        if (q->tail)
                q->tail->timer_next = f;
        else
                q->head = f;
        q->tail = f;
}

void ferry__ready_forget(struct ferry_watch *w, struct ferry__file *f)
{
        ferry__verify_forget(w, f);
        set_state(w, f, FERRY__IDLE);
}

int64_t ferry__ready_next_deadline(const struct ferry_watch *w)
{
        int64_t next = FERRY__FOREVER;

        for (int i = 0; i < FERRY__TIMER_COUNT; i++)
                if (w->timers[i].head && w->timers[i].head->deadline < next)
                        next = w->timers[i].head->deadline;
        return next;
}

/* ---- decisions ------------------------------------------------------------- */

static ssize_t file_path(struct ferry_watch *w, struct ferry__file *f)
{
        return ferry__dir_path(w, f->entry.parent, f->entry.name, f->entry.name_len, NULL);
}

static void report(struct ferry_watch *w, struct ferry__file *f, const struct ferry__version *v)
{
        ssize_t n = file_path(w, f);

        set_state(w, f, FERRY__IDLE);
        if (n < 0)
                return;
        if (w->event_mask & FERRY_EVENT_READY)
                (void)ferry__queue_push(w, FERRY_EVENT_READY, 0, f->entry.parent->root, w->path, (size_t)n, NULL, 0, 0,
                                        v->size);
        f->reported = *v;
        f->reported_read = w->read_seq;
        f->was_reported = true;
        f->refused = false;
        ferry__file_set_known(f, v);
}

/* done-file: the path of the file's marker into buf (PATH_MAX * 2 bytes). */
static bool marker_path(struct ferry_watch *w, struct ferry__file *f, char *buf)
{
        const struct ferry__policy *p = &w->policy;
        char name[NAME_MAX + 1];
        size_t total = f->entry.name_len + strlen(p->marker);

        if (!p->marker_is_suffix)
                return ferry__dir_path(w, f->entry.parent, p->marker, strlen(p->marker), buf) >= 0;
        if (total > NAME_MAX)
                return false;
        memcpy(name, f->entry.name, f->entry.name_len);
        memcpy(name + f->entry.name_len, p->marker, strlen(p->marker) + 1);
        return ferry__dir_path(w, f->entry.parent, name, total, buf) >= 0;
}

static bool held_path(const struct ferry__file *f, char *path, size_t size);

/* w->path, the file's path, led nowhere: the same file through the root's
 * held descriptor instead, into w->path. The root's path may lead nowhere
 * for a moment while its files are all there (a file system above it
 * unmounted lazily and mounted again; another machine writing meanwhile):
 * they are not taken for gone. False when there is no such way. */
static bool through_held_root(struct ferry_watch *w, const struct ferry__file *f)
{
        return held_path(f, w->path, sizeof(w->path));
}

/* The same for path (of size bytes), a path beneath the file's root. */
static bool held_path(const struct ferry__file *f, char *path, size_t size)
{
        const struct ferry__root *root = f->entry.parent->root;
        size_t prefix_len = strlen(root->prefix);
        char held[2 * PATH_MAX];
        int n;

        if (root->held_fd < 0 || strncmp(path, root->prefix, prefix_len) != 0)
                return false;
        n = snprintf(held, sizeof(held), "/proc/self/fd/%d/%s", root->held_fd, path + prefix_len);
        if (n < 0 || (size_t)n >= sizeof(held) || (size_t)n >= size)
                return false;
        memcpy(path, held, (size_t)n + 1);
        return true;
}

/* ferry__writers_check and ferry__stat_version of the file at w->path, or
 * through its root's held descriptor when that path leads nowhere. */
static int writers_check(struct ferry_watch *w, const struct ferry__file *f, struct ferry__version *ret_version)
{
        int r = ferry__writers_check(w->path, ret_version);

        return r == -ENOENT && through_held_root(w, f) ? ferry__writers_check(w->path, ret_version) : r;
}

static int stat_version(struct ferry_watch *w, const struct ferry__file *f, struct ferry__version *ret_version)
{
        int r = ferry__stat_version(w->path, ret_version, NULL);

        return r == -ENOENT && through_held_root(w, f) ? ferry__stat_version(w->path, ret_version, NULL) : r;
}

/* Guards version v of f as after a close, without asking the kernel about
 * writers now: the guard's end asks, and where it cannot (another owner's
 * file), the blind guard follows. without_close: no close of it was seen. */
static void guard_without_asking(struct ferry_watch *w, struct ferry__file *f, const struct ferry__version *v,
                                 bool without_close)
{
        f->guard_without_close = without_close;
        ferry__file_set_known(f, v);
        if (!is_new_version(f, v))
                return set_state(w, f, FERRY__IDLE);
        f->rechecks = 0;
        schedule(w, f, FERRY__GUARD, FERRY__TIMER_GUARD);
        f->guard_unasked = true;
}

/* Asks the kernel about the file's writers and version (ferry__writers_check);
 * a file that is gone, or whose path cannot be built, is set IDLE: -ENOENT. */
static int probe(struct ferry_watch *w, struct ferry__file *f, struct ferry__version *ret_version)
{
        int r;

        ferry__watch_busy(w);
        r = file_path(w, f) < 0 ? -ENOENT : writers_check(w, f, ret_version);
        if (r == -ENOENT)
                set_state(w, f, FERRY__IDLE);
        if (r == FERRY__NO_WRITER || r == FERRY__WRITER_OPEN)
                f->entry.parent->root->leases_answer = true;
        return r;
}

static void consider_settling(struct ferry_watch *w, struct ferry__file *f, enum ferry__state state, int timer);

/* The file may be complete: ask the kernel about writers, then guard.
 * closed: a close was seen (not a rename, not a scan). */
static void consider_closed(struct ferry_watch *w, struct ferry__file *f, bool closed)
{
        struct ferry__version v;
        int r;

        /* Reported while this batch of events was handled: the version it had
         * after the batch was read, with no writer then. This close is of the
         * batch, so it came before: nothing new to look at, not even a stat. */
        if (closed && f->was_reported && f->state == FERRY__IDLE && w->read_seq && f->reported_read == w->read_seq) {
                f->guard_without_close = false;
                return;
        }
        /* Reported already in the version it has now (its close comes after
         * the create that found it complete): a stat tells, no lease probe. */
        if (f->was_reported && file_path(w, f) >= 0 && stat_version(w, f, &v) == 0 && !is_new_version(f, &v)) {
                f->guard_without_close = false;
                return set_state(w, f, FERRY__IDLE);
        }
        /* The close of the writer whose content its create found, unchanged
         * since: guarded again from now, as after any close, and the guard's
         * end asks the kernel about writers (no need to ask twice). */
        if (closed && f->state == FERRY__GUARD && f->guard_without_close && f->timer == FERRY__TIMER_GUARD &&
            file_path(w, f) >= 0 && stat_version(w, f, &v) == 0 && ferry__same_version(&v, &f->known)) {
                f->guard_without_close = false;
                f->rechecks = 0;
                return schedule(w, f, FERRY__GUARD, FERRY__TIMER_GUARD);
        }
        /* A guard follows whatever the kernel says now (a writer seen may be
         * the one closing: looked at again), and the guard's end asks it
         * anyway: where lease probes answer, a stat now is enough, for the
         * version that end compares. (An empty file under auto is asked now:
         * without a writer it waits quietly instead.) */
        if (w->timers[FERRY__TIMER_GUARD].delay_ns > 0 && f->entry.parent->root->leases_answer &&
            file_path(w, f) >= 0 && stat_version(w, f, &v) == 0 &&
            !(w->policy.kind == FERRY__POLICY_AUTO && closed && v.size == 0)) {
                return guard_without_asking(w, f, &v, false);
        }
        r = probe(w, f, &v);
        f->guard_without_close = false;
        if (r == -ENOENT)
                return;
        ferry__file_set_known(f, &v);
        if (r == FERRY__WRITER_OPEN) {
                /* The kernel queues IN_CLOSE_WRITE before it drops the
                 * closing writer's count, so the writer seen may be the one
                 * that just closed: look again before trusting it. */
                f->rechecks = 0;
                schedule(w, f, FERRY__GUARD, FERRY__TIMER_GUARD);
                return;
        }
        if (!is_new_version(f, &v))
                return set_state(w, f, FERRY__IDLE);
        /* auto: a close at size 0 may come before the writing: smbnetfs
         * creates, closes and reopens every file, the reopen 20ms later on
         * an idle machine, more than the guard on a busy one. Ready once it
         * stayed empty for the quiet time. */
        if (w->policy.kind == FERRY__POLICY_AUTO && closed && v.size == 0)
                return consider_settling(w, f, FERRY__QUIET, FERRY__TIMER_QUIET);
        /* No quiet time asked for (close=0) and the kernel says no writer
         * holds it: ready now, not after a timer's round trip and a second
         * look that can only say the same. */
        if (r == FERRY__NO_WRITER && w->timers[FERRY__TIMER_GUARD].delay_ns == 0)
                return report(w, f, &v);
        schedule(w, f, FERRY__GUARD, r == FERRY__NO_WRITER ? FERRY__TIMER_GUARD : FERRY__TIMER_BLIND_GUARD);
}

/* Arrived by rename under a final name: ready at once unless a writer still holds it. */
static void consider_arrived(struct ferry_watch *w, struct ferry__file *f)
{
        struct ferry__version v;
        int r = probe(w, f, &v);

        if (r == -ENOENT)
                return;
        if (r == FERRY__WRITER_OPEN) {
                /* Still held open: by a local writer, which will close it,
                 * or by a file server that keeps its descriptor (nfs-ganesha
                 * keeps NFSv3 and v4 files open long after a rename), which
                 * will not. The quiet wait tells them apart (auto: its quiet
                 * time; rename: 1 s). */
                if (w->policy.kind == FERRY__POLICY_AUTO || w->policy.kind == FERRY__POLICY_RENAME)
                        return consider_settling(w, f, FERRY__QUIET, FERRY__TIMER_QUIET);
                return set_state(w, f, FERRY__WRITING);
        }
        if (is_new_version(f, &v))
                report(w, f, &v);
        else
                set_state(w, f, FERRY__IDLE);
}

static void judge_marked(struct ferry_watch *w, struct ferry__file *f, const struct ferry__version *vp, ssize_t n,
                         int r);

/* The later of a file's modification and change times (ns): when it was
 * last written, or arrived (a copy may keep an older modification time). */
static int64_t newest_time(const struct stat *st)
{
        int64_t m = (int64_t)st->st_mtim.tv_sec * FERRY__NSEC_PER_SEC + st->st_mtim.tv_nsec;
        int64_t c = (int64_t)st->st_ctim.tv_sec * FERRY__NSEC_PER_SEC + st->st_ctim.tv_nsec;

        return m > c ? m : c;
}

/* done-file: ready when the marker exists and, when it says what the file
 * is (size, SHA-256), the file is that. A mismatch is an ERROR event: the
 * writer died half-way, or the file changed after its marker was written.
 * expired: called by the end of the empty marker's wait. */
static void consider_marked(struct ferry_watch *w, struct ferry__file *f, bool expired)
{
        char marker[2 * PATH_MAX];
        struct ferry__version v;
        struct stat marker_st;
        ssize_t n;
        int r;

        if (!marker_path(w, f, marker))
                return set_state(w, f, FERRY__WAIT_MARKER);
        if (stat(marker, &marker_st) < 0 &&
            (errno != ENOENT || !held_path(f, marker, sizeof(marker)) || stat(marker, &marker_st) < 0))
                return set_state(w, f, FERRY__WAIT_MARKER);
        /* An empty marker checks nothing, but a marker being written is empty
         * at first, and some clients close it empty before they write it
         * (smbnetfs creates, closes and reopens every file, and on a busy
         * machine the reopen comes a second or more later): only a marker
         * still empty at the end of its own wait (FERRY__TIMER_BLIND_GUARD,
         * 3 s at least), and that nobody holds open for writing then (the
         * file server writing its content), is taken as empty. Another
         * close of it while it waits does not end the wait. */
        if (w->policy.marker_is_suffix && marker_st.st_size == 0) {
                struct ferry__version mv = {0};
                int held;

                if (!expired && f->state == FERRY__GUARD)
                        return;
                held = expired ? ferry__writers_check(marker, &mv) : 0;
                if (held == -ENOENT)
                        return set_state(w, f, FERRY__WAIT_MARKER);
                if (!expired || held == FERRY__WRITER_OPEN || mv.size != 0)
                        return schedule(w, f, FERRY__GUARD, FERRY__TIMER_BLIND_GUARD);
        }
        n = file_path(w, f);
        if (n < 0 || stat_version(w, f, &v) < 0)
                return set_state(w, f, FERRY__IDLE);
        if (!is_new_version(f, &v))
                return set_state(w, f, FERRY__IDLE);
        /* A folder-wide marker vouches for the files that were there before
         * it was written (or touched): one left behind does not make a file
         * that arrives later ready at once; the producer's next marker does. */
        if (!w->policy.marker_is_suffix) {
                struct stat st;

                if (lstat(w->path, &st) < 0)
                        return set_state(w, f, FERRY__IDLE);
                if (newest_time(&st) > newest_time(&marker_st))
                        return set_state(w, f, FERRY__WAIT_MARKER);
        }
        r = 0;
        if (w->policy.marker_is_suffix) {
                struct ferry__marker_claim claim;

                r = ferry__marker_read(marker, &claim);
                if (r == 0 && claim.has_size && (uint64_t)v.size != claim.size)
                        r = -EBADMSG;
                else if (r == 0 && claim.hex[0]) {
                        /* The hash is read off the loop (verify.c); its verdict comes back to ferry__ready_verified. */
                        r = ferry__verify_start(w, f, w->path, &v, &claim);
                        if (r == 0)
                                return set_state(w, f, FERRY__WAIT_MARKER);
                }
        }
        judge_marked(w, f, &v, n, r);
}

void ferry__ready_verified(struct ferry_watch *w, struct ferry__file *f, const struct ferry__version *verified,
                           int result)
{
        struct ferry__version v;
        ssize_t n = file_path(w, f);

        /* Judged only if the file is still the version that was read. */
        if (n < 0 || stat_version(w, f, &v) < 0 || !ferry__same_version(&v, verified))
                return;
        if (!is_new_version(f, &v))
                return set_state(w, f, FERRY__IDLE);
        judge_marked(w, f, &v, n, result);
}

/* What a marker's check (r) makes of version v of the file at w->path (n bytes). */
static void judge_marked(struct ferry_watch *w, struct ferry__file *f, const struct ferry__version *vp, ssize_t n,
                         int r)
{
        struct ferry__version v = *vp;

        if (r == -EBADMSG) {
                /* Once per version of the file: a client that closes the
                 * marker twice (smbnetfs) does not make it a second error. */
                /* Said with the file's own path (w->path may lead through the root's descriptor). */
                if ((!f->refused || !ferry__same_version(&f->reported, &v)) && (n = file_path(w, f)) >= 0)
                        (void)ferry__queue_push(w, FERRY_EVENT_ERROR, 0, f->entry.parent->root, w->path, (size_t)n,
                                                NULL, 0, r, v.size);
                f->reported = v;
                f->was_reported = false;
                f->refused = true;
                return set_state(w, f, FERRY__WAIT_MARKER);
        }
        if (r < 0) /* the marker could not be read: not verified, so not ready; its next change retries */
                return set_state(w, f, FERRY__WAIT_MARKER);
        report(w, f, &v);
}

/* What a name that just appeared (IN_CREATE) is. A file open(2) made is
 * empty then, unless a quick writer is done already; a file link(2)ed in
 * from a staging folder has its content, no writer and more than one link;
 * an O_TMPFILE linkat(2)ed in has its content, often still its writer (it
 * is closed just after, and no close of that name is ever reported).
 *
 *   APPEARED_EMPTY    empty or gone: its close will tell
 *   APPEARED_LINKED   content, no writer, other links: as if renamed in
 *   APPEARED_CONTENT  content: looked at after the guard, as after a close
 *                     (*ret_version: what it is now)
 */
enum appeared { APPEARED_EMPTY, APPEARED_LINKED, APPEARED_CONTENT };

static enum appeared appeared(struct ferry_watch *w, struct ferry__file *f, struct ferry__version *ret_version)
{
        struct ferry__version v;
        struct stat st;

        if (file_path(w, f) < 0)
                return APPEARED_EMPTY;
        if (lstat(w->path, &st) < 0 && (errno != ENOENT || !through_held_root(w, f) || lstat(w->path, &st) < 0))
                return APPEARED_EMPTY;
        if (!S_ISREG(st.st_mode) || st.st_size == 0)
                return APPEARED_EMPTY;
        ferry__version_from_stat(&st, &v);
        if (st.st_nlink > 1 && ferry__writers_check(w->path, &v) == FERRY__NO_WRITER)
                return APPEARED_LINKED;
        *ret_version = v;
        return APPEARED_CONTENT;
}

static void consider_settling(struct ferry_watch *w, struct ferry__file *f, enum ferry__state state, int timer)
{
        /* The version at the start of the wait; compared when it ends. */
        if (f->state != state || !f->stat_known) {
                struct ferry__version v;
                ssize_t n = file_path(w, f);

                if (n < 0 || ferry__stat_version(w->path, &v, NULL) < 0)
                        return set_state(w, f, FERRY__IDLE);
                ferry__file_set_known(f, &v);
                if (!is_new_version(f, &v))
                        return set_state(w, f, FERRY__IDLE);
        }
        schedule(w, f, state, timer);
}

/* ---- one change function per policy (policy.c's table) ---------------------- */

/* close, and auto on folders it sees closes in. */
static void change_closing(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change)
{
        struct ferry__version v;

        switch (change) {
        case FERRY__CHANGE_CREATE:
                switch (appeared(w, f, &v)) {
                case APPEARED_LINKED:
                        if (w->policy.kind == FERRY__POLICY_AUTO)
                                return consider_arrived(w, f);
                        return consider_closed(w, f, false);
                case APPEARED_CONTENT:
                        /* No guard time (close=0): asked now, and ready now
                         * when no writer holds it. */
                        if (w->timers[FERRY__TIMER_GUARD].delay_ns == 0) {
                                consider_closed(w, f, false);
                                f->guard_without_close = f->state == FERRY__GUARD;
                                return;
                        }
                        /* Guarded as after a close: a writer's close is
                         * mostly in the same read of events, and would only
                         * ask the same again (consider_closed). */
                        return guard_without_asking(w, f, &v, true);
                case APPEARED_EMPTY: break;
                }
                /* fall through */
        case FERRY__CHANGE_MODIFY:
                /* auto: a close may never come (a server's fd cache); a
                 * local writer's will, and cancels the quiet wait. */
                if (w->policy.kind == FERRY__POLICY_AUTO && (f->state != FERRY__GUARD || f->guard_without_close))
                        return consider_settling(w, f, FERRY__QUIET, FERRY__TIMER_QUIET);
                return set_state(w, f, FERRY__WRITING);
        case FERRY__CHANGE_WRITING:
                /* Its close is next: what a name with content or a write
                 * without a close would need looking at, the close decides. */
                return set_state(w, f, FERRY__WRITING);
        case FERRY__CHANGE_ATTRIB: return;
        case FERRY__CHANGE_ARRIVED:
                if (w->policy.kind == FERRY__POLICY_AUTO)
                        return consider_arrived(w, f);
                return consider_closed(w, f, false);
        case FERRY__CHANGE_CLOSE_WRITE:
        case FERRY__CHANGE_FOUND:
                if (f->state == FERRY__GUARD && change == FERRY__CHANGE_FOUND)
                        return;
                return consider_closed(w, f, change == FERRY__CHANGE_CLOSE_WRITE);
        }
}

void ferry__ready_change_auto(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change)
{
        /* On a polled root no close from other machines is ever seen, so a
         * file is ready when it stopped changing for two poll intervals. */
        if (f->entry.parent->root->poll) {
                if (change == FERRY__CHANGE_FOUND && f->state == FERRY__SETTLE)
                        return;
                return consider_settling(w, f, FERRY__SETTLE, FERRY__TIMER_POLL_SETTLE);
        }
        change_closing(w, f, change);
}

void ferry__ready_change_close(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change)
{
        change_closing(w, f, change);
}

void ferry__ready_change_rename(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change)
{
        struct ferry__version v;

        switch (change) {
        case FERRY__CHANGE_ARRIVED: return consider_arrived(w, f);
        case FERRY__CHANGE_CREATE:
                /* Hard-linked into place from elsewhere: as good as renamed;
                 * a file written in place under its final name is not (nor
                 * an O_TMPFILE linked in). */
                if (appeared(w, f, &v) == APPEARED_LINKED)
                        return consider_arrived(w, f);
                return;
        case FERRY__CHANGE_FOUND:
                /* History unknown: a final name found by a scan is taken as
                 * renamed into place, as the convention says. */
                return consider_arrived(w, f);
        default: return;
        }
}

void ferry__ready_change_done_file(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change)
{
        struct ferry__version v;

        switch (change) {
        case FERRY__CHANGE_CREATE:
                if (appeared(w, f, &v) != APPEARED_EMPTY)
                        return consider_marked(w, f, false);
                return set_state(w, f, FERRY__WRITING);
        case FERRY__CHANGE_MODIFY:
        case FERRY__CHANGE_WRITING: return set_state(w, f, FERRY__WRITING);
        case FERRY__CHANGE_ATTRIB: return;
        default: return consider_marked(w, f, false);
        }
}

void ferry__ready_change_settle(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change)
{
        if (change == FERRY__CHANGE_FOUND && f->state == FERRY__SETTLE)
                return;
        consider_settling(w, f, FERRY__SETTLE, FERRY__TIMER_SETTLE);
}

void ferry__ready_marker(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len)
{
        const struct ferry__policy *p = &w->policy;

        if (p->marker_is_suffix) {
                size_t data_len = len - strlen(p->marker);
                char data[NAME_MAX + 1];
                struct ferry__entry *e;
                struct ferry__version v;
                ssize_t n;

                memcpy(data, name, data_len);
                data[data_len] = '\0';
                e = ferry__entry_find(w, dir, data, data_len);
                if (e && e->kind == FERRY__FILE) {
                        consider_marked(w, (struct ferry__file *)e, false);
                        return;
                }
                /* The data file was never seen (it came before the watch). */
                n = ferry__dir_path(w, dir, data, data_len, NULL);
                if (!e && n >= 0 && ferry__stat_version(w->path, &v, NULL) == 0)
                        ferry__file_changed(w, dir, data, data_len, FERRY__CHANGE_FOUND, 0, 0);
                return;
        }
        for (struct ferry__entry *e = dir->children; e;) {
                struct ferry__entry *next = e->sibling_next;

                if (e->kind == FERRY__FILE)
                        consider_marked(w, (struct ferry__file *)e, false);
                e = next;
        }
}

void ferry__ready_expire(struct ferry_watch *w, int64_t now)
{
        for (int i = 0; i < FERRY__TIMER_COUNT; i++) {
                struct ferry__timer_queue *q = &w->timers[i];

                while (q->head && q->head->deadline <= now) {
                        struct ferry__file *f = q->head;
                        struct ferry__version v;
                        ssize_t n = file_path(w, f);
                        int r;

                        if (n < 0) {
                                set_state(w, f, FERRY__IDLE);
                                continue;
                        }
                        if (w->policy.kind == FERRY__POLICY_DONE_FILE) {
                                /* the wait of an empty marker: look again */
                                consider_marked(w, f, true);
                                continue;
                        }
                        if (i == FERRY__TIMER_QUIET) {
                                r = stat_version(w, f, &v);
                                if (r == 0 && ferry__same_version(&v, &f->known)) {
                                        /* Quiet long enough: ready unless a local program still
                                         * writes. Without lease rights, /proc alone can tell. */
                                        if (ferry__writers_check(w->path, &v) != FERRY__NO_WRITER &&
                                            ferry__writers_are_servers(w->path) == 0) {
                                                set_state(w, f, FERRY__WRITING);
                                                continue;
                                        }
                                }
                        } else if (i == FERRY__TIMER_SETTLE || i == FERRY__TIMER_POLL_SETTLE) {
                                r = stat_version(w, f, &v);
                        } else {
                                r = writers_check(w, f, &v);
                                if (r < 0 && r != -ENOENT && f->guard_unasked) {
                                        /* This file's writers cannot be asked (another
                                         * owner's, where leases need ownership): the
                                         * guard of a close nobody could check. */
                                        schedule(w, f, FERRY__GUARD, FERRY__TIMER_BLIND_GUARD);
                                        continue;
                                }
                                if (r == FERRY__WRITER_OPEN) {
                                        /* Twice more, then trust it: a real
                                         * writer's own close is still to come. */
                                        if (f->rechecks++ < 2) {
                                                f->known = v;
                                                schedule(w, f, FERRY__GUARD, FERRY__TIMER_BLIND_GUARD);
                                        } else if (w->policy.kind == FERRY__POLICY_AUTO) {
                                                /* auto: a file server may keep its
                                                 * descriptor (nfs-ganesha after an
                                                 * NFSv4 CLOSE): the quiet wait. */
                                                consider_settling(w, f, FERRY__QUIET, FERRY__TIMER_QUIET);
                                        } else {
                                                set_state(w, f, FERRY__WRITING);
                                        }
                                        continue;
                                }
                                if (r != -ENOENT)
                                        r = 0;
                        }
                        if (r < 0) {
                                set_state(w, f, FERRY__IDLE);
                                continue;
                        }
                        if (!ferry__same_version(&v, &f->known)) {
                                /* Still changing: wait a full delay again. */
                                ferry__file_set_known(f, &v);
                                schedule(w, f, (enum ferry__state)f->state, i);
                                continue;
                        }
                        report(w, f, &v);
                }
        }
}
