/* scan.c: listing directories: at start-up, for new subdirectories, and to
 * recover after the kernel dropped events.
 *
 * A scan walks a subtree breadth-first with an explicit stack, watching each
 * new subdirectory before listing it, so that a file created in a directory
 * before its watch existed is still found. In RESCAN mode it compares the
 * listing with the mirror and reports the difference as events flagged
 * FERRY_EVENT_FOUND; the ready policy re-examines every file that is not
 * known to be reported in its current version.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pending {
        struct ferry__dir *dir;
        enum ferry__scan_mode mode;
};

struct stack {
        struct pending *items;
        size_t count, capacity;
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

static bool differs(const struct ferry__file *f, const struct ferry__version *v)
{
        return f->dirty || !f->stat_known || f->known.ino != v->ino || f->known.size != v->size ||
               f->known.mtime_ns != v->mtime_ns;
}

/* A new or changed file that a scan found (after lost events, or in a new
 * subfolder) had its close happen unseen: a consumer of close_write events
 * gets one, flagged found, once no writer holds the file open. */
static void found_closed(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len)
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
        if (r != FERRY__WRITER_OPEN && r != -ENOENT)
                ferry__emit(w, FERRY_EVENT_CLOSE_WRITE, FERRY_EVENT_FOUND, dir, name, len);
}

/* One file found by the listing of dir. */
static void found_file(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len,
                       const struct ferry__version *v, enum ferry__scan_mode mode)
{
        struct ferry__entry *e = ferry__entry_find(w, dir, name, len);
        struct ferry__file *f = e && e->kind == FERRY__FILE ? (struct ferry__file *)e : NULL;
        unsigned type = 0;

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
        f = ferry__file_changed(w, dir, name, len, FERRY__CHANGE_FOUND, type, FERRY_EVENT_FOUND);
        if (f && !f->stat_known)
                ferry__file_set_known(f, v);
        else if (f && type == FERRY_EVENT_MODIFY && w->policy.kind == FERRY__POLICY_NONE)
                ferry__file_set_known(f, v);
        if (f)
                f->entry.seen = 1;
        if (f && type)
                found_closed(w, dir, name, len);
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
                return mode == FERRY__SCAN_RESCAN ? push(stack, (struct ferry__dir *)e, mode) : 0;
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
        return push(stack, child, mode == FERRY__SCAN_RESCAN ? FERRY__SCAN_NEW : mode);
}

/* Reports and drops what the mirror has in dir but the listing did not show. */
static void drop_unseen(struct ferry_watch *w, struct ferry__dir *dir)
{
        for (struct ferry__entry *e = dir->children; e;) {
                struct ferry__entry *next = e->sibling_next;

                if (!e->seen) {
                        if (e->kind == FERRY__DIR) {
                                ferry__emit(w, FERRY_EVENT_DELETE, FERRY_EVENT_IS_DIR | FERRY_EVENT_FOUND, dir,
                                            e->name, e->name_len);
                                ferry__dir_detach(w, (struct ferry__dir *)e);
                        } else {
                                ferry__file_gone(w, dir, e->name, e->name_len, FERRY_EVENT_DELETE,
                                                 FERRY_EVENT_FOUND);
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

                if (e && e->kind == FERRY__FILE && mode == FERRY__SCAN_RESCAN)
                        ferry__file_gone(w, dir, name, len, FERRY_EVENT_DELETE, FERRY_EVENT_FOUND);
                return;
        }
        found_file(w, dir, name, len, &v, mode);
}

static int scan_dir(struct ferry_watch *w, struct ferry__dir *dir, enum ferry__scan_mode mode, struct stack *stack)
{
        struct dirent *de;
        ssize_t n;
        DIR *listing;
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
        listing = fdopendir(fd);
        if (!listing) {
                close(fd);
                return -ENOMEM;
        }
        for (struct ferry__entry *e = dir->children; e; e = e->sibling_next)
                e->seen = 0;
        while ((de = readdir(listing))) {
                const char *name = de->d_name;
                size_t len = strlen(name);
                struct ferry__version v;
                struct stat st;

                if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
                        continue;
                if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN && !ferry__file_wanted(w, dir, name, len) &&
                    !ferry__ready_is_marker(w, name, len))
                        continue;
                if (de->d_type == DT_DIR)
                        st.st_mode = S_IFDIR;
                else if (fstatat(dirfd(listing), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* gone meanwhile */
                if (S_ISDIR(st.st_mode)) {
                        if (ferry__dir_wanted(w, dir, name, len)) {
                                r = found_dir(w, dir, name, len, mode, stack);
                                if (r < 0)
                                        break;
                        }
                        continue;
                }
                ferry__version_from_stat(&st, &v);
                found_file(w, dir, name, len, &v, mode);
        }
        closedir(listing);
        if (r == 0 && mode == FERRY__SCAN_RESCAN)
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
        int *wds;

        w->retry_at = FERRY__FOREVER;
        wds = malloc(w->dir_count * sizeof(*wds) + 1);
        if (!wds) {
                w->retry_at = ferry__now() + FERRY__RETRY_UNWATCHED_NS;
                return;
        }
        /* Collect first: a rescan changes the table, and may detach a folder
         * collected here (when it went away); each is looked up again. */
        for (size_t b = 0; b < w->by_wd.bucket_count; b++)
                for (struct ferry__hash_node *n = w->by_wd.buckets[b]; n; n = n->next) {
                        struct ferry__dir *d = (struct ferry__dir *)((char *)n - offsetof(struct ferry__dir, by_wd));

                        if (d->incomplete && count < w->dir_count) {
                                d->incomplete = false;
                                wds[count++] = d->wd;
                        }
                }
        w->retrying = true;
        for (size_t i = 0; i < count; i++) {
                struct ferry__dir *d = ferry__dir_find_wd(w, wds[i]);

                if (d)
                        (void)ferry__scan(w, d, FERRY__SCAN_RESCAN);
        }
        w->retrying = false;
        free(wds);
}
