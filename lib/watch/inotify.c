/* inotify.c: the inotify backend: watches, and the translation of kernel events.
 *
 * This is the only file that includes <sys/inotify.h>. It turns each raw event
 * into a call on the mirror (tree.c): file changes, directories appearing and
 * going away, and renames, which inotify reports as a MOVED_FROM/MOVED_TO
 * pair sharing a cookie. The pair is matched here; a MOVED_FROM with no
 * partner is a move out of the tree, a MOVED_TO with no partner a move in.
 * The kernel queues the two one after the other, but a read can fall between
 * them: a MOVED_FROM last in the queue waits MOVE_PARTNER_NS for its partner
 * before it counts as a move out.
 * IN_Q_OVERFLOW becomes a RESCAN event and a rescan of every root.
 */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Always: what keeps the mirror true (names going away, renames, the
 * watched folder itself) and what fails a duplicate watch. */
#define BASE_MASK                                                                                                \
        (IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK | \
         IN_MASK_CREATE)

/* Buffers read per call before events are handed out, so a flood cannot
 * delay the first events indefinitely. */
#define READS_PER_CALL 8
#define DRAIN_READS 64    /* after an overflow: 4 MiB of events, more than a full default queue */
#define CLOSE_LOOKAHEAD 8 /* events looked ahead for a file's close (close_follows) */

/* How long a MOVED_FROM last in the queue waits for its MOVED_TO: the renamer
 * queues it at once unless it is preempted between the two. */
#define MOVE_PARTNER_NS (50 * FERRY__NSEC_PER_MSEC)

struct ferry__inotify {
        int fd;
        struct ferry__hash by_watch; /* folders by their wd: dir->by_watch */
        uint32_t mask;               /* what the watches ask for: only what the watcher needs wakes it */
        bool close_ahead;            /* FERRY__NEED_CLOSE_AHEAD: look for a create's or write's close (writing) */
        bool drained;                /* the last read was short: the queue was empty then */
        /* A MOVED_FROM waiting for its MOVED_TO. */
        bool move_pending;
        bool move_is_dir;
        uint32_t move_cookie;
        int64_t move_deadline; /* then it left the tree */
        int move_wd;
        size_t move_len;
        char move_name[NAME_MAX + 1];
        char buffer[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
};

static int inotify_open(struct ferry_watch *w)
{
        struct ferry__inotify *in = calloc(1, sizeof(*in));
        struct epoll_event ev = {.events = EPOLLIN};
        int r;

        if (!in)
                return -ENOMEM;
        in->mask = BASE_MASK | IN_CREATE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE;
        in->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (in->fd < 0 || epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, in->fd, &ev) < 0) {
                r = -errno;
                if (in->fd >= 0)
                        close(in->fd);
                free(in);
                return r;
        }
        w->inotify = in;
        return 0;
}

static void inotify_close(struct ferry_watch *w)
{
        struct ferry__inotify *in = w->inotify;

        if (!in)
                return;
        ferry__hash_done(&in->by_watch);
        close(in->fd);
        free(in);
        w->inotify = NULL;
}

static void inotify_set_needs(struct ferry_watch *w, unsigned needs)
{
        struct ferry__inotify *in = w->inotify;

        in->mask = BASE_MASK;
        in->close_ahead = (needs & FERRY__NEED_CLOSE_AHEAD) != 0;
        if (needs & FERRY__NEED_CREATE)
                in->mask |= IN_CREATE;
        if (needs & FERRY__NEED_MODIFY)
                in->mask |= IN_MODIFY;
        if (needs & FERRY__NEED_ATTRIB)
                in->mask |= IN_ATTRIB;
        if (needs & FERRY__NEED_CLOSE_WRITE)
                in->mask |= IN_CLOSE_WRITE;
}

static struct ferry__dir *dir_of(const struct ferry__inotify *in, int wd)
{
        for (struct ferry__hash_node *n = ferry__hash_chain(&in->by_watch, (uint32_t)wd); n; n = n->next) {
                struct ferry__dir *d = (struct ferry__dir *)((char *)n - offsetof(struct ferry__dir, by_watch));

                if (d->watch == wd)
                        return d;
        }
        return NULL;
}

static int inotify_attach(struct ferry_watch *w, struct ferry__dir *dir, const char *path, bool top)
{
        struct ferry__inotify *in = w->inotify;
        int wd = inotify_add_watch(in->fd, path, in->mask | (top ? 0 : IN_DONT_FOLLOW));
        int r;

        if (wd < 0)
                return -errno;
        /* The same folder reached twice (a bind mount, a link followed to a
         * root) shares one wd: the first keeps it. */
        if (dir_of(in, wd))
                return -EEXIST;
        r = ferry__hash_insert(&in->by_watch, &dir->by_watch, (uint32_t)wd);
        if (r < 0) {
                (void)inotify_rm_watch(in->fd, wd);
                return r;
        }
        dir->watch = wd;
        return 0;
}

static void inotify_detach(struct ferry_watch *w, struct ferry__dir *dir)
{
        struct ferry__inotify *in = w->inotify;

        if (dir->watch < 0)
                return;
        /* Fails harmlessly when the kernel already dropped the watch. */
        (void)inotify_rm_watch(in->fd, dir->watch);
        ferry__hash_remove(&in->by_watch, &dir->by_watch);
        dir->watch = -1;
}

static long read_number(const char *path)
{
        FILE *f = fopen(path, "re");
        long value = -1;

        if (f) {
                if (fscanf(f, "%ld", &value) != 1)
                        value = -1;
                fclose(f);
        }
        return value;
}

struct watch_count {
        uid_t uid;
        long total;
};

static bool owned_by_user(int pid, void *data)
{
        const struct watch_count *c = data;
        char path[32];
        struct stat st;

        snprintf(path, sizeof(path), "/proc/%d", pid);
        return stat(path, &st) == 0 && st.st_uid == c->uid;
}

static int count_watches(int pid, int fd, void *data)
{
        struct watch_count *c = data;
        char line[256];
        FILE *f = ferry__proc_fdinfo(pid, fd);

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "inotify wd:", 11) == 0)
                        c->total++;
        fclose(f);
        return 0;
}

/* Counts the inotify watches held by this user's processes, from /proc/PID/fdinfo. */
static long count_user_watches(void)
{
        struct watch_count c = {.uid = getuid()};

        return ferry__proc_each_fd(owned_by_user, count_watches, &c) < 0 ? -1 : c.total;
}

void ferry__inotify_limits(long *ret_limit, long *ret_in_use)
{
        *ret_limit = read_number("/proc/sys/fs/inotify/max_user_watches");
        *ret_in_use = count_user_watches();
}

/* A MOVED_FROM whose partner never came: the name left the tree. */
static void flush_move(struct ferry_watch *w)
{
        struct ferry__inotify *in = w->inotify;
        struct ferry__dir *dir;

        if (!in->move_pending)
                return;
        in->move_pending = false;
        dir = dir_of(in, in->move_wd);
        if (!dir)
                return;
        if (in->move_is_dir) {
                struct ferry__entry *e = ferry__entry_find(w, dir, in->move_name, in->move_len);

                ferry__emit(w, FERRY_EVENT_MOVED_FROM, FERRY_EVENT_IS_DIR, dir, in->move_name, in->move_len);
                if (e && e->kind == FERRY__DIR)
                        ferry__dir_detach(w, (struct ferry__dir *)e);
                return;
        }
        ferry__file_gone(w, dir, in->move_name, in->move_len, FERRY_EVENT_MOVED_FROM, 0);
}

/* A directory appeared inside dir (created or moved in): watch it, then list
 * it, so that whatever was made in it before the watch existed is found. */
static void new_subdir(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len)
{
        struct ferry__dir *child;
        struct ferry__entry *old;
        int r;

        if (!ferry__dir_wanted(w, dir, name, len))
                return;
        old = ferry__entry_find(w, dir, name, len);
        if (old && old->kind == FERRY__DIR)
                return; /* already found by a scan */
        if (old)
                ferry__file_remove(w, (struct ferry__file *)old);
        r = ferry__dir_attach(w, dir, name, len, dir->root, &child);
        if (r == -ENOENT || r == -ENOTDIR || r == -EEXIST)
                return;
        if (r < 0)
                return ferry__dir_unwatched(w, dir, name, len, r);
        r = ferry__scan(w, child, FERRY__SCAN_NEW);
        (void)r; /* errors were queued as ERROR events */
}

/* Whether the writer's close of ev's file is among the next few events of
 * the same read, with nothing in between but its writes: a file created or
 * written and closed by the time the events are read (every burst). Its
 * close then decides, and the policy need not look at the name it saw
 * appear, or at a write that a close may never end. */
static bool close_follows(const struct inotify_event *ev, const char *end)
{
        const char *p = (const char *)ev + sizeof(*ev) + ev->len;

        for (int i = 0; i < CLOSE_LOOKAHEAD && p < end; i++) {
                const struct inotify_event *next = (const struct inotify_event *)p;

                if (next->mask & IN_Q_OVERFLOW)
                        return false;
                if (next->wd == ev->wd && next->len && strcmp(next->name, ev->name) == 0) {
                        if (next->mask & IN_CLOSE_WRITE)
                                return true;
                        if (!(next->mask & (IN_MODIFY | IN_ATTRIB)))
                                return false;
                }
                p += sizeof(*next) + next->len;
        }
        return false;
}

/* change, or FERRY__CHANGE_WRITING when the watcher asked (FERRY__NEED_CLOSE_AHEAD) and the close follows. */
static enum ferry__change writing(const struct ferry_watch *w, const struct inotify_event *ev, const char *end,
                                  enum ferry__change change)
{
        return w->inotify->close_ahead && close_follows(ev, end) ? FERRY__CHANGE_WRITING : change;
}

static void handle(struct ferry_watch *w, const struct inotify_event *ev, const char *end)
{
        struct ferry__inotify *in = w->inotify;
        struct ferry__dir *dir;
        const char *name = ev->len ? ev->name : "";
        size_t len = ev->len ? strlen(ev->name) : 0;
        bool is_dir = (ev->mask & IN_ISDIR) != 0;

        if (ev->mask & IN_Q_OVERFLOW) {
                flush_move(w);
                (void)ferry__queue_push(w, FERRY_EVENT_RESCAN, 0, NULL, "", 0, NULL, 0, 0, -1);
                w->rescan_needed = true;
                return;
        }
        if (in->move_pending && !((ev->mask & IN_MOVED_TO) && ev->cookie == in->move_cookie))
                flush_move(w);
        dir = dir_of(in, ev->wd);
        if (!dir)
                return; /* a watch already dropped; its last events trail behind */
        if (ev->mask & IN_IGNORED) {
                if (!dir->entry.parent)
                        ferry__root_lost(w, dir->root);
                else
                        ferry__dir_detach(w, dir);
                return;
        }
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
                /* Subdirectories are handled through their parent's events. */
                if (!dir->entry.parent)
                        ferry__root_lost(w, dir->root);
                return;
        }
        if (ev->mask & IN_MOVED_FROM) {
                in->move_pending = true;
                in->move_is_dir = is_dir;
                in->move_cookie = ev->cookie;
                in->move_deadline = ferry__now() + MOVE_PARTNER_NS;
                in->move_wd = ev->wd;
                in->move_len = len;
                memcpy(in->move_name, name, len + 1);
                return;
        }
        if (ev->mask & IN_MOVED_TO) {
                if (in->move_pending) {
                        struct ferry__dir *from = dir_of(in, in->move_wd);

                        in->move_pending = false;
                        if (from) {
                                ferry__moved(w, from, in->move_name, in->move_len, dir, name, len, is_dir);
                                return;
                        }
                }
                if (is_dir) {
                        ferry__emit(w, FERRY_EVENT_MOVED_TO, FERRY_EVENT_IS_DIR, dir, name, len);
                        new_subdir(w, dir, name, len);
                } else {
                        ferry__file_changed(w, dir, name, len, FERRY__CHANGE_ARRIVED, FERRY_EVENT_MOVED_TO, 0);
                }
                return;
        }
        if (is_dir) {
                if (ev->mask & IN_CREATE) {
                        ferry__emit(w, FERRY_EVENT_CREATE, FERRY_EVENT_IS_DIR, dir, name, len);
                        new_subdir(w, dir, name, len);
                } else if (ev->mask & IN_DELETE) {
                        struct ferry__entry *e = ferry__entry_find(w, dir, name, len);

                        ferry__emit(w, FERRY_EVENT_DELETE, FERRY_EVENT_IS_DIR, dir, name, len);
                        if (e && e->kind == FERRY__DIR)
                                ferry__dir_detach(w, (struct ferry__dir *)e);
                }
                return;
        }
        if (ev->mask & IN_CREATE)
                ferry__file_changed(w, dir, name, len, writing(w, ev, end, FERRY__CHANGE_CREATE), FERRY_EVENT_CREATE,
                                    0);
        else if (ev->mask & IN_MODIFY)
                ferry__file_changed(w, dir, name, len, writing(w, ev, end, FERRY__CHANGE_MODIFY), FERRY_EVENT_MODIFY,
                                    0);
        else if (ev->mask & IN_CLOSE_WRITE)
                ferry__file_changed(w, dir, name, len, FERRY__CHANGE_CLOSE_WRITE, FERRY_EVENT_CLOSE_WRITE, 0);
        else if (ev->mask & IN_ATTRIB)
                ferry__file_changed(w, dir, name, len, FERRY__CHANGE_ATTRIB, FERRY_EVENT_ATTRIB, 0);
        else if (ev->mask & IN_DELETE)
                ferry__file_gone(w, dir, name, len, FERRY_EVENT_DELETE, 0);
}

static int64_t inotify_deadline(const struct ferry_watch *w)
{
        return w->inotify->move_pending ? w->inotify->move_deadline : FERRY__FOREVER;
}

static int inotify_read(struct ferry_watch *w, int64_t now)
{
        struct ferry__inotify *in = w->inotify;
        int reads = 0;

        /* The queue was empty at the last read: skip the read that would say
         * EAGAIN once; the caller's wait on the fd tells when more came. */
        if (in->drained && !in->move_pending) {
                in->drained = false;
                return 0;
        }
        /* After an overflow the queue is read to its end before the rescan
         * lists the folders (within bounds: a writer that never stops must not
         * hold the rescan off): what happened before the listing is then
         * known, and fewer of its events come again after it. */
        while (reads < READS_PER_CALL || (w->rescan_needed && reads < DRAIN_READS)) {
                ssize_t n = read(in->fd, in->buffer, sizeof(in->buffer));

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return -errno;
                        /* Nothing more: a MOVED_FROM waiting past its time left the tree. */
                        if (in->move_pending && now >= in->move_deadline)
                                flush_move(w);
                        break;
                }
                reads++;
                /* Every event of this batch happened before this read (ready.c: consider_closed). */
                w->read_seq++;
                for (char *p = in->buffer; p < in->buffer + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;

                        handle(w, ev, in->buffer + n);
                        p += sizeof(*ev) + ev->len;
                }
                /* Room was left for another event: the queue is empty now. */
                if ((size_t)n + sizeof(struct inotify_event) + NAME_MAX + 1 <= sizeof(in->buffer) &&
                    !in->move_pending) {
                        in->drained = true;
                        break;
                }
        }
        return reads > 0;
}

const struct ferry__backend ferry__inotify_backend = {
        .name = "inotify",
        .open = inotify_open,
        .close = inotify_close,
        .set_needs = inotify_set_needs,
        .attach = inotify_attach,
        .detach = inotify_detach,
        .read = inotify_read,
        .deadline = inotify_deadline,
};
