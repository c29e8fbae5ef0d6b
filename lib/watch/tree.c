/* tree.c: the watcher's mirror of the watched trees: directories, files, moves.
 *
 * Backends and scans report what happened in terms of (directory, name); this
 * file keeps the mirror true (entries created, renamed, reparented, removed),
 * turns each change into public events, and hands file changes to the ready
 * policy. Paths are never stored: a directory knows its parent and its own
 * name, so moving a whole subtree is one relink, and paths are built on
 * demand by walking up to the root.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t name_hash(const struct ferry_watch *w, const struct ferry__dir *parent, const char *name, size_t len)
{
        return ferry__hash_bytes(name, len, w->hash_seed ^ (uint64_t)(uintptr_t)parent);
}

static bool prefix_needs_separator(const char *prefix, size_t len)
{
        return len > 0 && prefix[len - 1] != '/';
}

ssize_t ferry__dir_path(struct ferry_watch *w, const struct ferry__dir *dir, const char *name, size_t name_len,
                        char *buf)
{
        char *out = buf ? buf : w->path;
        const size_t cap = sizeof(w->path);
        const char *prefix = dir->root->prefix;
        size_t prefix_len = strlen(prefix);
        bool sep = prefix_needs_separator(prefix, prefix_len);
        size_t total = prefix_len;
        size_t components = 0;

        /* Every component but the first gets a '/' before it; the first gets
         * one when the prefix does not already end with one. */
        for (const struct ferry__dir *d = dir; d->entry.parent; d = d->entry.parent) {
                total += d->entry.name_len;
                components++;
        }
        if (name)
                total += name_len, components++;
        if (components > 0)
                total += components - 1 + (sep ? 1 : 0);
        if (total == 0) {
                out[0] = '.';
                out[1] = '\0';
                return 1;
        }
        if (total + 1 > cap)
                return -ENAMETOOLONG;

        char *end = out + total;
        *end = '\0';
        if (name) {
                end -= name_len;
                memcpy(end, name, name_len);
                if (end > out + prefix_len)
                        *--end = '/';
        }
        for (const struct ferry__dir *d = dir; d->entry.parent; d = d->entry.parent) {
                end -= d->entry.name_len;
                memcpy(end, d->entry.name, d->entry.name_len);
                if (end > out + prefix_len)
                        *--end = '/';
        }
        memcpy(out, prefix, prefix_len);
        return (ssize_t)total;
}

struct ferry__entry *ferry__entry_find(struct ferry_watch *w, const struct ferry__dir *parent, const char *name,
                                       size_t len)
{
        uint32_t hash = name_hash(w, parent, name, len);

        for (struct ferry__hash_node *n = ferry__hash_chain(&w->by_name, hash); n; n = n->next) {
                struct ferry__entry *e = (struct ferry__entry *)n;

                if (n->hash == hash && e->parent == parent && e->name_len == len && memcmp(e->name, name, len) == 0)
                        return e;
        }
        return NULL;
}

/* Sets the entry's name and links it under parent. */
static int entry_link(struct ferry_watch *w, struct ferry__entry *e, struct ferry__dir *parent, const char *name,
                      size_t len)
{
        char *copy;

        if (len > UINT16_MAX)
                return -ENAMETOOLONG;
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, name, len);
        copy[len] = '\0';
        if (ferry__hash_insert(&w->by_name, &e->by_name, name_hash(w, parent, name, len)) < 0) {
                free(copy);
                return -ENOMEM;
        }
        free(e->name);
        e->name = copy;
        e->name_len = (uint16_t)len;
        e->parent = parent;
        e->sibling_prev = NULL;
        e->sibling_next = parent->children;
        if (parent->children)
                parent->children->sibling_prev = e;
        parent->children = e;
        return 0;
}

static void entry_unlink(struct ferry_watch *w, struct ferry__entry *e)
{
        if (!e->parent)
                return;
        ferry__hash_remove(&w->by_name, &e->by_name);
        if (e->sibling_prev)
                e->sibling_prev->sibling_next = e->sibling_next;
        else
                e->parent->children = e->sibling_next;
        if (e->sibling_next)
                e->sibling_next->sibling_prev = e->sibling_prev;
        e->parent = NULL;
        e->sibling_prev = e->sibling_next = NULL;
}

bool ferry__is_temp_name(const char *name, size_t len)
{
        static const char *const suffixes[] = {".tmp", ".part", ".swp", ".crdownload", "~"};

        if (len == 0 || name[0] == '.')
                return true; /* hidden, editors' and rsync's temp files, .nfsXXXX, .ferry* */
        for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
                size_t n = strlen(suffixes[i]);

                if (len >= n && memcmp(name + len - n, suffixes[i], n) == 0)
                        return true;
        }
        return false;
}

bool ferry__glob_match(const char *pattern, const char *name, const char *relative)
{
        /* Without '/', the name; with '/', the path relative to the root, where '*' also matches '/'. */
        if (!strchr(pattern, '/'))
                return fnmatch(pattern, name, FNM_PERIOD) == 0;
        return fnmatch(pattern, relative, 0) == 0;
}

/* rel: the file's path relative to the root, or NULL to build it from dir. */
static bool glob_matches(struct ferry_watch *w, const struct ferry__globs *globs, struct ferry__dir *dir,
                         const char *name, const char *rel)
{
        char relative[2 * PATH_MAX];

        for (size_t i = 0; i < globs->count; i++) {
                const struct ferry__glob *g = &globs->items[i];

                if (!g->has_slash) {
                        if (ferry__glob_match(g->pattern, name, NULL))
                                return true;
                        continue;
                }
                if (!rel) {
                        ssize_t len = ferry__dir_path(w, dir, name, strlen(name), relative);
                        size_t skip = strlen(dir->root->prefix);

                        if (len < 0)
                                return false;
                        skip += prefix_needs_separator(dir->root->prefix, skip);
                        rel = relative + ((size_t)len >= skip ? skip : 0);
                }
                if (ferry__glob_match(g->pattern, name, rel))
                        return true;
        }
        return false;
}

bool ferry__dir_wanted(const struct ferry_watch *w, const struct ferry__dir *parent, const char *name, size_t len)
{
        if (!(w->flags & FERRY_WATCH_RECURSIVE) || parent->root->only_name)
                return false;
        /* In ready mode hidden and temporary folders hold work in progress
         * (ferry's own .ferry/, rsync's, editors'): never descend into them. */
        return w->policy.kind == FERRY__POLICY_NONE || !ferry__is_temp_name(name, len);
}

/* The one judgement of a file's name, for the watcher and for explain: dir
 * (the watcher's) or relative (explain's, NULL dir) says where it is. */
static enum ferry__verdict verdict(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len,
                                   const char *relative, bool markers)
{
        if (w->policy.kind != FERRY__POLICY_NONE && ferry__is_temp_name(name, len))
                return FERRY__VERDICT_TEMP;
        if (markers && ferry__ready_is_marker(w, name, len))
                return FERRY__VERDICT_MARKER;
        if (w->include.count && !glob_matches(w, &w->include, dir, name, relative))
                return FERRY__VERDICT_NO_MATCH;
        if (w->exclude.count && glob_matches(w, &w->exclude, dir, name, relative))
                return FERRY__VERDICT_EXCLUDED;
        return FERRY__VERDICT_WANTED;
}

bool ferry__file_wanted(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len)
{
        const char *only = dir->root->only_name;

        if (only)
                return strlen(only) == len && memcmp(only, name, len) == 0;
        return verdict(w, dir, name, len, NULL, false) == FERRY__VERDICT_WANTED;
}

enum ferry__verdict ferry__name_verdict(struct ferry_watch *w, const char *relative)
{
        const char *slash = strrchr(relative, '/'), *name = slash ? slash + 1 : relative;

        return verdict(w, NULL, name, strlen(name), relative, true);
}

void ferry__emit(struct ferry_watch *w, unsigned type, unsigned flags, struct ferry__dir *dir, const char *name,
                 size_t len)
{
        ssize_t n;

        if (!(w->event_mask & type))
                return;
        n = ferry__dir_path(w, dir, name, len, NULL);
        if (n < 0)
                return;
        (void)ferry__queue_push(w, type, flags, dir->root, w->path, (size_t)n, NULL, 0, 0, -1);
}

static struct ferry__file *file_get(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len)
{
        struct ferry__entry *e = ferry__entry_find(w, dir, name, len);
        struct ferry__file *f;

        if (e && e->kind == FERRY__FILE)
                return (struct ferry__file *)e;
        if (e) /* a directory of that name went away unnoticed */
                ferry__dir_detach(w, (struct ferry__dir *)e);
        if (ferry__files_full(w))
                return NULL; /* left to the listing that follows once half are gone */
        f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        f->entry.kind = FERRY__FILE;
        if (entry_link(w, &f->entry, dir, name, len) < 0) {
                free(f);
                return NULL;
        }
        w->file_count++;
        return f;
}

void ferry__file_set_known(struct ferry__file *f, const struct ferry__version *v)
{
        f->known = *v;
        f->stat_known = true;
        f->dirty = false;
}

void ferry__file_baseline(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len,
                          const struct ferry__version *v)
{
        struct ferry__file *f = file_get(w, dir, name, len);

        if (!f)
                return;
        ferry__file_set_known(f, v);
        f->reported = *v;
        f->was_reported = true;
        /* Nothing is known to be writing it: a poll looks at it as at a file
         * long quiet (scan.c), not at every cycle. */
        f->quiet_polls = UINT8_MAX;
}

static void refresh_stat(struct ferry_watch *w, struct ferry__file *f)
{
        struct ferry__version v;
        ssize_t n = ferry__dir_path(w, f->entry.parent, f->entry.name, f->entry.name_len, NULL);

        if (n >= 0 && ferry__stat_version(w->path, &v, NULL) == 0)
                ferry__file_set_known(f, &v);
}

/* A close the kernel reports of f, which a listing told closed already (see
 * scan.c, found_closed): the same close if f is still the version the listing
 * saw. Said once: a later close is new. */
static bool close_told(struct ferry_watch *w, struct ferry__file *f)
{
        struct ferry__version listed = f->known;

        f->found_closed = false;
        refresh_stat(w, f);
        return ferry__same_version(&listed, &f->known);
}

struct ferry__file *ferry__file_changed(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len,
                                        enum ferry__change change, unsigned emit_type, unsigned emit_flags)
{
        struct ferry__file *f;

        /* Markers are the policy's business, whatever the filters say: the
         * files they mark are checked against the filters instead. */
        if (ferry__ready_is_marker(w, name, len)) {
                /* (a folder-wide marker touched again vouches for the files written since) */
                if (change == FERRY__CHANGE_CLOSE_WRITE || change == FERRY__CHANGE_ARRIVED ||
                    change == FERRY__CHANGE_FOUND || (change == FERRY__CHANGE_ATTRIB && !w->policy.marker_is_suffix))
                        ferry__ready_marker(w, dir, name, len);
                return NULL;
        }
        if (!ferry__file_wanted(w, dir, name, len))
                return NULL;
        f = file_get(w, dir, name, len);
        if (f && f->found_closed && change == FERRY__CHANGE_CLOSE_WRITE && close_told(w, f))
                return NULL;
        if (emit_type)
                ferry__emit(w, emit_type, emit_flags, dir, name, len);
        if (!f)
                return NULL;
        switch (change) {
        case FERRY__CHANGE_CREATE:
        case FERRY__CHANGE_MODIFY:
        case FERRY__CHANGE_WRITING: f->dirty = true; break;
        case FERRY__CHANGE_ARRIVED:
                f->found_closed = false; /* another file now */
                /* fall through */
        case FERRY__CHANGE_CLOSE_WRITE:
                /* Without a policy nobody else stats the file; keep the
                 * version the rescan compares against. */
                if (w->policy.kind == FERRY__POLICY_NONE)
                        refresh_stat(w, f);
                break;
        case FERRY__CHANGE_ATTRIB:
        case FERRY__CHANGE_FOUND: break;
        }
        if (w->policy.kind != FERRY__POLICY_NONE)
                ferry__ready_change(w, f, change);
        return f;
}

void ferry__file_remove(struct ferry_watch *w, struct ferry__file *f)
{
        ferry__ready_forget(w, f);
        entry_unlink(w, &f->entry);
        free(f->entry.name);
        free(f);
        w->file_count--;
}

bool ferry__files_full(struct ferry_watch *w)
{
        if (!w->max_files || w->file_count < w->max_files)
                return false;
        w->files_deferred = true;
        return true;
}

void ferry__file_gone(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len, unsigned event_type,
                      unsigned event_flags)
{
        struct ferry__entry *e = ferry__entry_find(w, dir, name, len);

        if (ferry__file_wanted(w, dir, name, len))
                ferry__emit(w, event_type, event_flags, dir, name, len);
        if (e && e->kind == FERRY__FILE)
                ferry__file_remove(w, (struct ferry__file *)e);
}

struct ferry__dir *ferry__dir_find_id(struct ferry_watch *w, uint64_t id)
{
        for (struct ferry__hash_node *n = ferry__hash_chain(&w->by_id, (uint32_t)id); n; n = n->next) {
                struct ferry__dir *d = (struct ferry__dir *)((char *)n - offsetof(struct ferry__dir, by_id));

                if (d->id == id)
                        return d;
        }
        return NULL;
}

int ferry__dir_attach(struct ferry_watch *w, struct ferry__dir *parent, const char *name, size_t len,
                      struct ferry__root *root, struct ferry__dir **ret_dir)
{
        struct ferry__dir *d;
        ssize_t n;
        int r;

        if (parent)
                n = ferry__dir_path(w, parent, name, len, NULL);
        else
                n = (ssize_t)strlen(root->watch_path);
        if (n < 0)
                return (int)n;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->entry.kind = FERRY__DIR;
        d->root = root;
        d->watch = -1;
        d->id = ++w->last_dir_id;
        /* Subfolders beyond the cap are left unwatched (a root always is watched). */
        if (parent && w->max_dirs && w->dir_count >= w->max_dirs)
                r = -EDQUOT;
        else
                r = ferry__backends_attach(w, d, parent ? w->path : root->watch_path, !parent);
        /* The kernel's limit reached while the folders given are set up is
         * an error for the caller to say (raise it); later, and for our own
         * cap (whoever fills the tree must not stop the watcher), polled. */
        if (r < 0 && parent && (r == -EDQUOT || (r == -ENOSPC && !w->starting))) {
                if (w->polled_count >= (w->max_dirs ? w->max_dirs : FERRY__DEFAULT_MAX_FOLDERS)) {
                        free(d);
                        return -EOVERFLOW; /* as many listed as watched already: it waits */
                }
                /* No watch to be had: the folder is listed every few seconds
                 * instead. Said once. */
                if (!w->retrying)
                        (void)ferry__queue_push(w, FERRY_EVENT_ERROR, FERRY_EVENT_IS_DIR, root, w->path, (size_t)n,
                                                NULL, 0, r, -1);
                d->polled = true;
                r = 0;
        }
        if (r < 0) {
                free(d);
                return r;
        }
        if (parent) {
                r = entry_link(w, &d->entry, parent, name, len);
                if (r < 0)
                        goto fail;
        }
        r = ferry__hash_insert(&w->by_id, &d->by_id, (uint32_t)d->id);
        if (r < 0) {
                entry_unlink(w, &d->entry);
                free(d->entry.name);
                goto fail;
        }
        if (d->polled) {
                w->polled_count++;
                d->incomplete = true; /* listed again with the retries */
                if (w->retry_at == FERRY__FOREVER)
                        w->retry_at = ferry__now() + FERRY__RETRY_UNWATCHED_NS;
        } else {
                w->dir_count++;
        }
        *ret_dir = d;
        return 0;
fail:
        if (!d->polled)
                ferry__backends_detach(w, d);
        free(d);
        return r;
}

int ferry__dir_watch_again(struct ferry_watch *w, struct ferry__dir *dir)
{
        ssize_t n;
        int r;

        if (!dir->polled || (w->max_dirs && w->dir_count >= w->max_dirs))
                return -EDQUOT;
        n = ferry__dir_path(w, dir, NULL, 0, NULL);
        if (n < 0)
                return (int)n;
        r = ferry__backends_attach(w, dir, w->path, false);
        if (r < 0)
                return r;
        dir->polled = false;
        w->polled_count--;
        w->dir_count++;
        return 0;
}

void ferry__dir_detach(struct ferry_watch *w, struct ferry__dir *dir)
{
        while (dir->children) {
                struct ferry__entry *child = dir->children;

                if (child->kind == FERRY__DIR)
                        ferry__dir_detach(w, (struct ferry__dir *)child);
                else
                        ferry__file_remove(w, (struct ferry__file *)child);
        }
        if (!dir->polled)
                ferry__backends_detach(w, dir);
        ferry__hash_remove(&w->by_id, &dir->by_id);
        entry_unlink(w, &dir->entry);
        if (dir->root->dir == dir) {
                dir->root->dir = NULL;
                if (dir->root->held_fd >= 0)
                        close(dir->root->held_fd);
                dir->root->held_fd = -1;
        }
        if (dir->polled)
                w->polled_count--;
        else
                w->dir_count--;
        free(dir->entry.name);
        free(dir);
}

void ferry__dir_unwatched(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len, int error)
{
        ssize_t n = ferry__dir_path(w, dir, name, len, NULL);

        /* Said once: the retries every few seconds are silent. */
        if (n >= 0 && !w->retrying)
                (void)ferry__queue_push(w, FERRY_EVENT_ERROR, FERRY_EVENT_IS_DIR, dir->root, w->path, (size_t)n, NULL,
                                        0, error, -1);
        dir->incomplete = true;
        if (w->retry_at == FERRY__FOREVER)
                w->retry_at = ferry__now() + FERRY__RETRY_UNWATCHED_NS;
}

static void set_root(struct ferry__dir *dir, struct ferry__root *root)
{
        dir->root = root;
        for (struct ferry__entry *e = dir->children; e; e = e->sibling_next)
                if (e->kind == FERRY__DIR)
                        set_root((struct ferry__dir *)e, root);
}

/* Emits MOVED_FROM old and MOVED_TO new (with old_path) for a move inside the tree. */
static void emit_move(struct ferry_watch *w, unsigned flags, struct ferry__dir *from_dir, const char *from_name,
                      size_t from_len, bool from_wanted, struct ferry__dir *to_dir, const char *to_name, size_t to_len,
                      bool to_wanted)
{
        char old_path[2 * PATH_MAX];
        ssize_t old_len = ferry__dir_path(w, from_dir, from_name, from_len, old_path);

        if (old_len < 0)
                return;
        if (from_wanted && (w->event_mask & FERRY_EVENT_MOVED_FROM))
                (void)ferry__queue_push(w, FERRY_EVENT_MOVED_FROM, flags, from_dir->root, old_path, (size_t)old_len,
                                        NULL, 0, 0, -1);
        if (to_wanted && (w->event_mask & FERRY_EVENT_MOVED_TO)) {
                ssize_t n = ferry__dir_path(w, to_dir, to_name, to_len, NULL);

                if (n >= 0)
                        (void)ferry__queue_push(w, FERRY_EVENT_MOVED_TO, flags, to_dir->root, w->path, (size_t)n,
                                                from_wanted ? old_path : NULL, (size_t)old_len, 0, -1);
        }
}

static void move_dir(struct ferry_watch *w, struct ferry__dir *from_dir, const char *from_name, size_t from_len,
                     struct ferry__dir *to_dir, const char *to_name, size_t to_len)
{
        struct ferry__entry *e = ferry__entry_find(w, from_dir, from_name, from_len);
        struct ferry__entry *old = ferry__entry_find(w, to_dir, to_name, to_len);
        struct ferry__dir *d;

        emit_move(w, FERRY_EVENT_IS_DIR, from_dir, from_name, from_len, true, to_dir, to_name, to_len, true);
        if (old && old != e) {
                if (old->kind == FERRY__DIR)
                        ferry__dir_detach(w, (struct ferry__dir *)old);
                else
                        ferry__file_remove(w, (struct ferry__file *)old);
        }
        if (!e || e->kind != FERRY__DIR) {
                /* Not known (unwatched, or lost): treat it as new. */
                if (e)
                        ferry__file_remove(w, (struct ferry__file *)e);
                if (ferry__dir_wanted(w, to_dir, to_name, to_len) &&
                    ferry__dir_attach(w, to_dir, to_name, to_len, to_dir->root, &d) == 0)
                        (void)ferry__scan(w, d, FERRY__SCAN_NEW);
                return;
        }
        d = (struct ferry__dir *)e;
        if (!ferry__dir_wanted(w, to_dir, to_name, to_len)) {
                ferry__dir_detach(w, d);
                return;
        }
        entry_unlink(w, e);
        if (entry_link(w, e, to_dir, to_name, to_len) < 0) {
                /* Out of memory: forget the subtree rather than mislabel it. */
                ferry__dir_detach(w, d);
                return;
        }
        if (d->root != to_dir->root)
                set_root(d, to_dir->root);
}

void ferry__moved(struct ferry_watch *w, struct ferry__dir *from_dir, const char *from_name, size_t from_len,
                  struct ferry__dir *to_dir, const char *to_name, size_t to_len, bool is_dir)
{
        struct ferry__entry *e, *old;
        bool from_wanted, to_wanted;

        if (is_dir) {
                move_dir(w, from_dir, from_name, from_len, to_dir, to_name, to_len);
                return;
        }
        from_wanted = ferry__file_wanted(w, from_dir, from_name, from_len);
        to_wanted = ferry__file_wanted(w, to_dir, to_name, to_len);
        emit_move(w, 0, from_dir, from_name, from_len, from_wanted, to_dir, to_name, to_len, to_wanted);

        e = ferry__entry_find(w, from_dir, from_name, from_len);
        if (e && e->kind != FERRY__FILE)
                e = NULL;
        if (!to_wanted || ferry__ready_is_marker(w, to_name, to_len)) {
                if (e)
                        ferry__file_remove(w, (struct ferry__file *)e);
                /* A marker counts whatever the globs say (ferry put renames it into place). */
                if (to_wanted || ferry__ready_is_marker(w, to_name, to_len))
                        ferry__file_changed(w, to_dir, to_name, to_len, FERRY__CHANGE_ARRIVED, 0, 0);
                return;
        }
        if (!e) {
                ferry__file_changed(w, to_dir, to_name, to_len, FERRY__CHANGE_ARRIVED, 0, 0);
                return;
        }
        old = ferry__entry_find(w, to_dir, to_name, to_len);
        if (old && old != e) {
                if (old->kind == FERRY__DIR)
                        ferry__dir_detach(w, (struct ferry__dir *)old);
                else
                        ferry__file_remove(w, (struct ferry__file *)old);
        }
        entry_unlink(w, e);
        if (entry_link(w, e, to_dir, to_name, to_len) < 0) {
                ferry__file_remove(w, (struct ferry__file *)e);
                return;
        }
        /* The same content under a new name keeps its history: a file that
         * was already reported ready is not reported again. */
        ferry__ready_change(w, (struct ferry__file *)e, FERRY__CHANGE_ARRIVED);
}

void ferry__root_lost(struct ferry_watch *w, struct ferry__root *root)
{
        if (root->dir)
                ferry__dir_detach(w, root->dir);
        (void)ferry__queue_push(w, FERRY_EVENT_ROOT_GONE, FERRY_EVENT_IS_DIR, root, root->given, strlen(root->given),
                                NULL, 0, 0, -1);
        root->retry_at = (w->flags & FERRY_WATCH_FOLLOW) ? ferry__now() : FERRY__FOREVER;
}

int ferry__root_attach(struct ferry_watch *w, struct ferry__root *root, int scan_mode)
{
        struct stat st;
        struct ferry__dir *d;
        int r = ferry__dir_attach(w, NULL, NULL, 0, root, &d);

        if (r < 0)
                return r;
        root->dir = d;
        if (stat(root->watch_path, &st) == 0) {
                root->dev = st.st_dev;
                root->ino = st.st_ino;
        }
        if (root->held_fd >= 0)
                close(root->held_fd);
        /* Held only for a runner, which holds the folder open anyway and
         * sees it deleted by itself: a held directory is deleted for inotify
         * (IN_DELETE_SELF) only once the last descriptor closes. */
        root->held_fd = w->hold_roots ? open(root->watch_path, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
        w->starting = scan_mode == FERRY__SCAN_START;
        r = ferry__scan(w, d, (enum ferry__scan_mode)scan_mode);
        if (r == -ENOSPC && w->starting)
                w->start_failed = true; /* the error is the caller's to say: nothing is listed instead */
        w->starting = false;
        if (r < 0 && root->dir)
                ferry__dir_detach(w, root->dir);
        return r;
}
