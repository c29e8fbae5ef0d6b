/* scan.c: listing directories: at start-up, for new subdirectories, to
 * recover after the kernel dropped events, and to poll.
 *
 * A scan walks a subtree breadth-first with an explicit stack, watching each
 * new subdirectory before listing it, so that a file created in a directory
 * before its watch existed is still found. In RESCAN mode it compares the
 * listing with the mirror and reports the difference as events flagged
 * FERRY_EVENT_FOUND; the ready policy re-examines every file that is not
 * known to be reported in its current version.
 *
 * POLL mode is RESCAN made cheap enough to run every interval on a folder of
 * 100,000 files. Listing and stat-ing every file costs about 1.6 us a file in
 * the kernel (tmpfs, 2026 VM), so a poll does only what can have changed:
 *
 *   - The folder itself is stat-ed first. Names come, go or are replaced only
 *     with a change of its mtime or ctime; while those stay as at the last
 *     listing, the folder is not listed again and the mirror stands in for
 *     the listing. A folder is listed at every poll for RACY_NS after a
 *     change was seen, so that a second change within the same tick of a
 *     coarse clock (FAT: 2 s) is not hidden behind an equal mtime.
 *   - A write into an existing file changes only that file: files that
 *     changed lately, or whose ready state is pending, are stat-ed at every
 *     poll; files quiet for QUIET_POLLS polls and reported (or, without a
 *     policy, known) in their current version are stat-ed in slices, at most
 *     SLICES_MAX of them, so each is looked at every SLICES_MAX-th poll at
 *     worst. Folders of up to SLICE_FILES files are not sliced: every file at
 *     every poll.
 *   - A stat that finds a file gone while the folder looked unchanged (an
 *     attribute cache, as FUSE keeps) lists the folder after all.
 */
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RACY_NS (2 * FERRY__NSEC_PER_SEC)
#define QUIET_POLLS 4
#define SLICE_FILES 4096
#define SLICES_MAX 8
#define LISTING_BUFFER (64 * 1024)

/* What getdents64(2) fills in; glibc declares no type for it. */
struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

struct pending {
        struct ferry__dir *dir;
        enum ferry__scan_mode mode;
};

struct stack {
        struct pending *items;
        size_t count, capacity;
        char *listing; /* LISTING_BUFFER bytes for getdents64, allocated at the first listing */
};

static int push(struct stack *s, struct ferry__dir *dir, enum ferry__scan_mode mode)
{
        if (s->count == s->capacity) {
                size_t capacity = s->capacity ? s->capacity * 2 : 64;
                struct pending *items = realloc(s->items, capacity * sizeof(*items));

                if (!items)
                        return -ENOMEM;
                s->items = items;
                s->capacity = capacity;
        }
        s->items[s->count++] = (struct pending){dir, mode};
        return 0;
}

/* Modes that compare a listing with the mirror and report the difference. */
static bool compares(enum ferry__scan_mode mode)
{
        return mode == FERRY__SCAN_RESCAN || mode == FERRY__SCAN_POLL;
}

static bool differs(const struct ferry__file *f, const struct ferry__version *v)
{
        return f->dirty || !f->stat_known || !ferry__same_version(&f->known, v);
}

/* Nothing is pending for the file: the policy is idle and has reported the
 * version known (or there is no policy). A scan that finds it unchanged has
 * nothing to tell anyone: every policy would conclude "not a new version". */
static bool settled(const struct ferry_watch *w, const struct ferry__file *f)
{
        return f->stat_known && !f->dirty && f->state == FERRY__IDLE &&
               (w->policy.kind == FERRY__POLICY_NONE ||
                (f->was_reported && ferry__same_version(&f->reported, &f->known)));
}

/* Whether this poll must stat f, or may trust the mirror (see the top). */
static bool poll_must_stat(const struct ferry_watch *w, const struct ferry__file *f, uint32_t slices, uint32_t poll)
{
        if (slices <= 1 || f->quiet_polls < QUIET_POLLS || !settled(w, f))
                return true;
        return (f->entry.by_name.hash + poll) % slices == 0;
}

static uint32_t slices_for(uint32_t file_count)
{
        uint32_t slices = file_count / SLICE_FILES + 1;

        return slices < SLICES_MAX ? slices : SLICES_MAX;
}

/* A new or changed file that a scan found (after lost events, or in a new
 * subfolder) had its close happen unseen: a consumer of close_write events
 * gets one, flagged found, once no writer holds the file open. Its close may
 * still be in the kernel's queue (events that came while the queue was full
 * are lost, those after are not): without a policy, the file remembers that
 * this version was told (tree.c). */
static void found_closed(struct ferry_watch *w, struct ferry__file *f, struct ferry__dir *dir, const char *name,
                         size_t len)
{
        struct ferry__version v;
        ssize_t n;
        int r;

        if (!(w->event_mask & FERRY_EVENT_CLOSE_WRITE))
                return;
        n = ferry__dir_path(w, dir, name, len, NULL);
        if (n < 0)
                return;
        r = ferry__writers_check(w->path, &v);
        if (r != FERRY__WRITER_OPEN && r != -ENOENT) {
                ferry__emit(w, FERRY_EVENT_CLOSE_WRITE, FERRY_EVENT_FOUND, dir, name, len);
                f->found_closed = w->policy.kind == FERRY__POLICY_NONE && f->stat_known;
        }
}

/* One file found by the listing of dir; e is its entry when the caller
 * looked it up already (NULL: look it up here). */
static void found_file(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len,
                       const struct ferry__version *v, enum ferry__scan_mode mode, struct ferry__entry *e)
{
        struct ferry__file *f;
        unsigned type = 0;

        if (!e)
                e = ferry__entry_find(w, dir, name, len);
        f = e && e->kind == FERRY__FILE ? (struct ferry__file *)e : NULL;

        if (mode == FERRY__SCAN_START)
                w->found_at_start++;
        if (mode == FERRY__SCAN_START && !(w->flags & FERRY_WATCH_EXISTING)) {
                if (ferry__file_wanted(w, dir, name, len) && !ferry__ready_is_marker(w, name, len))
                        ferry__file_baseline(w, dir, name, len, v);
                return;
        }
        if (!f)
                type = FERRY_EVENT_CREATE;
        else if (differs(f, v))
                type = FERRY_EVENT_MODIFY;
        if (f && !type && settled(w, f)) {
                f->entry.seen = 1;
                if (f->quiet_polls < UINT8_MAX)
                        f->quiet_polls++;
                return;
        }
        f = ferry__file_changed(w, dir, name, len, FERRY__CHANGE_FOUND, type, FERRY_EVENT_FOUND);
        if (f && !f->stat_known)
                ferry__file_set_known(f, v);
        else if (f && type == FERRY_EVENT_MODIFY && w->policy.kind == FERRY__POLICY_NONE)
                ferry__file_set_known(f, v);
        if (f) {
                f->entry.seen = 1;
                f->quiet_polls = 0;
        }
        if (f && type)
                found_closed(w, f, dir, name, len);
}

/* One subdirectory found by the listing of dir. */
static int found_dir(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len,
                     enum ferry__scan_mode mode, struct stack *stack)
{
        struct ferry__entry *e = ferry__entry_find(w, dir, name, len);
        struct ferry__dir *child;
        int r;

        if (e && e->kind == FERRY__DIR) {
                e->seen = 1;
                return compares(mode) ? push(stack, (struct ferry__dir *)e, mode) : 0;
        }
        if (e)
                ferry__file_remove(w, (struct ferry__file *)e);
        r = ferry__dir_attach(w, dir, name, len, dir->root, &child);
        if (r == -ENOENT || r == -ENOTDIR || r == -EEXIST)
                return 0; /* gone already, or reached twice */
        if (r < 0) {
                ferry__dir_unwatched(w, dir, name, len, r);
                return mode == FERRY__SCAN_START ? r : 0;
        }
        child->entry.seen = 1;
        if (mode != FERRY__SCAN_START || (w->flags & FERRY_WATCH_EXISTING))
                ferry__emit(w, FERRY_EVENT_CREATE, FERRY_EVENT_IS_DIR | FERRY_EVENT_FOUND, dir, name, len);
        return push(stack, child, compares(mode) ? FERRY__SCAN_NEW : mode);
}

/* Reports and drops what the mirror has in dir but the listing did not show. */
static void drop_unseen(struct ferry_watch *w, struct ferry__dir *dir)
{
        for (struct ferry__entry *e = dir->children; e;) {
                struct ferry__entry *next = e->sibling_next;

                if (!e->seen) {
                        if (e->kind == FERRY__DIR) {
                                ferry__emit(w, FERRY_EVENT_DELETE, FERRY_EVENT_IS_DIR | FERRY_EVENT_FOUND, dir, e->name,
                                            e->name_len);
                                ferry__dir_detach(w, (struct ferry__dir *)e);
                        } else {
                                ferry__file_gone(w, dir, e->name, e->name_len, FERRY_EVENT_DELETE, FERRY_EVENT_FOUND);
                        }
                }
                e = next;
        }
}

/* A root watching one file: look at that name only, however big the folder. */
static void scan_one_name(struct ferry_watch *w, struct ferry__dir *dir, enum ferry__scan_mode mode)
{
        const char *name = dir->root->only_name;
        size_t len = strlen(name);
        struct ferry__version v;
        bool is_dir;
        ssize_t n = ferry__dir_path(w, dir, name, len, NULL);

        if (n < 0 || ferry__stat_version(w->path, &v, &is_dir) < 0 || is_dir) {
                struct ferry__entry *e = ferry__entry_find(w, dir, name, len);

                if (e && e->kind == FERRY__FILE && compares(mode))
                        ferry__file_gone(w, dir, name, len, FERRY_EVENT_DELETE, FERRY_EVENT_FOUND);
                return;
        }
        found_file(w, dir, name, len, &v, mode, NULL);
}

/* Stats name in the folder open as fd. Polling a network or FUSE file
 * system asks the server (AT_STATX_FORCE_SYNC): the kernel's attribute cache
 * would hide, for a second or more, a writer on another machine, and without
 * a listing at every poll nothing else refreshes it. */
static int stat_at(int fd, const char *name, bool fresh, struct ferry__version *ret_version, bool *ret_is_dir)
{
        struct statx sx;
        struct stat st;

        if (!fresh) {
                if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                ferry__version_from_stat(&st, ret_version);
                *ret_is_dir = S_ISDIR(st.st_mode);
                return 0;
        }
        if (statx(fd, name, AT_SYMLINK_NOFOLLOW | AT_STATX_FORCE_SYNC,
                  STATX_TYPE | STATX_INO | STATX_SIZE | STATX_MTIME, &sx) < 0)
                return -errno;
        ret_version->ino = sx.stx_ino;
        ret_version->size = (int64_t)sx.stx_size;
        ret_version->mtime_ns = (int64_t)sx.stx_mtime.tv_sec * FERRY__NSEC_PER_SEC + sx.stx_mtime.tv_nsec;
        *ret_is_dir = S_ISDIR(sx.stx_mode);
        return 0;
}

static bool poll_fresh(const struct ferry__dir *dir, enum ferry__scan_mode mode)
{
        return mode == FERRY__SCAN_POLL && strcmp(dir->root->fs_name, "local") != 0;
}

/* The folder's identity and last change, as one number: a listing is due
 * when it differs from the one taken before the last listing. */
static uint64_t dir_stamp(const struct statx *st)
{
        uint64_t h = (uint64_t)st->stx_ino * UINT64_C(0x9E3779B97F4A7C15);

        h = (h ^ (uint64_t)st->stx_mtime.tv_sec) * UINT64_C(0xBF58476D1CE4E5B9);
        h = (h ^ (uint64_t)st->stx_mtime.tv_nsec) * UINT64_C(0x94D049BB133111EB);
        h = (h ^ (uint64_t)st->stx_ctime.tv_sec) * UINT64_C(0x9E3779B97F4A7C15);
        h = (h ^ (uint64_t)st->stx_ctime.tv_nsec) * UINT64_C(0xBF58476D1CE4E5B9);
        return h ^ (h >> 31);
}

/* A poll of a folder whose names did not change: the mirror's files are the
 * listing. Returns -EAGAIN when the mirror proves stale (a file it knows is
 * gone, or became a folder), and the caller lists after all. */
static int poll_known(struct ferry_watch *w, struct ferry__dir *dir, int fd, struct stack *stack)
{
        uint32_t slices = slices_for(dir->file_count), poll = dir->root->polls, count = 0;
        bool fresh = poll_fresh(dir, FERRY__SCAN_POLL);
        size_t pushed = stack->count;

        for (struct ferry__entry *e = dir->children; e;) {
                struct ferry__entry *next = e->sibling_next;
                struct ferry__version v;
                bool is_dir;
                int r;

                if (e->kind == FERRY__DIR) {
                        r = push(stack, (struct ferry__dir *)e, FERRY__SCAN_POLL);
                        if (r < 0)
                                return r;
                        e = next;
                        continue;
                }
                count++;
                if (poll_must_stat(w, (struct ferry__file *)e, slices, poll)) {
                        ferry__watch_busy(w);
                        if (stat_at(fd, e->name, fresh, &v, &is_dir) < 0 || is_dir) {
                                stack->count = pushed;
                                return -EAGAIN;
                        }
                        /* Changes here touch e only: the mirror's links stay as they are. */
                        found_file(w, dir, e->name, e->name_len, &v, FERRY__SCAN_POLL, e);
                }
                e = next;
        }
        dir->file_count = count;
        return 0;
}

static int scan_dir(struct ferry_watch *w, struct ferry__dir *dir, enum ferry__scan_mode mode, struct stack *stack)
{
        uint32_t slices = 1, count = 0;
        bool fresh = poll_fresh(dir, mode);
        ssize_t n;
        int fd, r = 0;

        if (dir->root->only_name) {
                scan_one_name(w, dir, mode);
                return 0;
        }
        n = ferry__dir_path(w, dir, NULL, 0, NULL);
        if (n < 0)
                return 0;
        fd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return 0; /* gone meanwhile: its removal event follows */
        if (dir->root->poll) {
                struct statx st;

                /* FORCE_SYNC: from the server, not an attribute cache (FUSE, NFS). */
                if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_INO | STATX_MTIME | STATX_CTIME, &st) ==
                    0) {
                        uint64_t stamp = dir_stamp(&st);
                        int64_t now = ferry__now();

                        if (stamp != dir->listed_stamp) {
                                dir->listed_stamp = stamp;
                                dir->list_until = now + RACY_NS;
                        } else if (mode == FERRY__SCAN_POLL && now >= dir->list_until) {
                                r = poll_known(w, dir, fd, stack);
                                if (r != -EAGAIN) {
                                        close(fd);
                                        return r;
                                }
                                r = 0;
                                dir->list_until = now + RACY_NS;
                        }
                } else {
                        dir->listed_stamp = 0;
                }
                if (mode == FERRY__SCAN_POLL)
                        slices = slices_for(dir->file_count);
        }
        if (!stack->listing) {
                stack->listing = malloc(LISTING_BUFFER);
                if (!stack->listing) {
                        close(fd);
                        return -ENOMEM;
                }
        }
        for (struct ferry__entry *e = dir->children; e; e = e->sibling_next)
                e->seen = 0;
        for (;;) {
                long got = syscall(SYS_getdents64, fd, stack->listing, LISTING_BUFFER);

                if (got <= 0)
                        break; /* the end, or the folder went away meanwhile (its removal event follows) */
                for (long offset = 0; offset < got && r == 0;) {
                        const struct linux_dirent64 *de = (const void *)(stack->listing + offset);
                        const char *name = de->d_name;
                        size_t len = strlen(name);
                        struct ferry__entry *e = NULL;
                        struct ferry__version v;
                        bool is_dir = true;

                        offset += de->d_reclen;
                        if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
                                continue;
                        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN &&
                            !ferry__file_wanted(w, dir, name, len) && !ferry__ready_is_marker(w, name, len))
                                continue;
                        if (w->max_files && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) {
                                e = ferry__entry_find(w, dir, name, len);
                                /* At the cap a new name costs no stat: it is found by a later listing. */
                                if (!e && !ferry__ready_is_marker(w, name, len) && ferry__files_full(w))
                                        continue;
                        }
                        if (mode == FERRY__SCAN_POLL && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) {
                                if (!w->max_files)
                                        e = ferry__entry_find(w, dir, name, len);
                                if (e && e->kind == FERRY__FILE) {
                                        struct ferry__file *f = (struct ferry__file *)e;

                                        count++;
                                        /* The same inode under the same name, quiet: as in poll_known. */
                                        if (f->stat_known && f->known.ino == de->d_ino &&
                                            !poll_must_stat(w, f, slices, dir->root->polls)) {
                                                e->seen = 1;
                                                continue;
                                        }
                                }
                        }
                        ferry__watch_busy(w);
                        if (de->d_type != DT_DIR && stat_at(fd, name, fresh, &v, &is_dir) < 0)
                                continue; /* gone meanwhile */
                        if (is_dir) {
                                if (ferry__dir_wanted(w, dir, name, len))
                                        r = found_dir(w, dir, name, len, mode, stack);
                                continue;
                        }
                        found_file(w, dir, name, len, &v, mode, e && e->kind == FERRY__FILE ? e : NULL);
                }
                if (r < 0)
                        break;
        }
        close(fd);
        if (mode == FERRY__SCAN_POLL)
                dir->file_count = count;
        if (r == 0 && compares(mode))
                drop_unseen(w, dir);
        return r;
}

int ferry__scan(struct ferry_watch *w, struct ferry__dir *dir, enum ferry__scan_mode mode)
{
        struct stack stack = {0};
        int r = push(&stack, dir, mode);

        while (r == 0 && stack.count > 0) {
                struct pending p = stack.items[--stack.count];

                r = scan_dir(w, p.dir, p.mode, &stack);
        }
        free(stack.items);
        free(stack.listing);
        return r;
}

void ferry__rescan_all(struct ferry_watch *w)
{
        w->rescan_needed = false;
        for (struct ferry__root *root = w->roots; root; root = root->next)
                if (root->dir)
                        (void)ferry__scan(w, root->dir, FERRY__SCAN_RESCAN);
}

/* Folders whose subfolders could not all be watched are listed again: what
 * was made in the unwatched ones meanwhile is found, nothing is lost. */
void ferry__retry_unwatched(struct ferry_watch *w)
{
        size_t count = 0;
        uint64_t *ids;

        size_t most = w->dir_count + w->polled_count;

        w->retry_at = FERRY__FOREVER;
        ids = malloc(most * sizeof(*ids) + 1);
        if (!ids) {
                w->retry_at = ferry__now() + FERRY__RETRY_UNWATCHED_NS;
                return;
        }
        /* Collect first: a rescan changes the table, and may detach a folder
         * collected here (when it went away); each is looked up again. */
        for (size_t b = 0; b < w->by_id.bucket_count; b++)
                for (struct ferry__hash_node *n = w->by_id.buckets[b]; n; n = n->next) {
                        struct ferry__dir *d = (struct ferry__dir *)((char *)n - offsetof(struct ferry__dir, by_id));

                        if (d->incomplete && count < most) {
                                d->incomplete = false;
                                d->retrying = true;
                                ids[count++] = d->id;
                        }
                }
        w->retrying = true;
        for (size_t i = 0; i < count; i++) {
                struct ferry__dir *d = ferry__dir_find_id(w, ids[i]);
                bool covered;

                if (!d)
                        continue;
                /* A polled folder gets a watch once one is free; else it is
                 * listed again now and at the next retry. */
                if (d->polled)
                        (void)ferry__dir_watch_again(w, d);
                /* The rescan of a folder lists its subfolders too: one whose
                 * parent is rescanned here is not listed twice (a chain of
                 * polled folders costs its length, not its square). */
                covered = d->entry.parent && d->entry.parent->retrying;
                if (!covered) {
                        (void)ferry__scan(w, d, FERRY__SCAN_RESCAN);
                        d = ferry__dir_find_id(w, ids[i]); /* the rescan may have detached it */
                }
                if (d && d->polled) {
                        d->incomplete = true;
                        if (w->retry_at == FERRY__FOREVER)
                                w->retry_at = ferry__now() + FERRY__RETRY_UNWATCHED_NS;
                }
        }
        for (size_t i = 0; i < count; i++) {
                struct ferry__dir *d = ferry__dir_find_id(w, ids[i]);

                if (d)
                        d->retrying = false;
        }
        w->retrying = false;
        free(ids);
}
