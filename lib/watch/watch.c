/* watch.c: the public watcher: creating it, adding roots, and the event loop
 * behind ferry_watch_next().
 *
 * The loop has one wait point: an epoll set holding the inotify fd and a
 * timerfd armed for the earliest internal deadline (ready guards, settling,
 * a gone root's next check). The same epoll fd is what ferry_watch_fd() hands
 * to callers who run their own poll loop.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* How often a gone root is looked for, with FERRY_WATCH_FOLLOW. */
#define ROOT_RETRY_NS (250 * FERRY__NSEC_PER_MSEC)

void ferry__watch_set_busy(struct ferry_watch *w, void (*busy)(void *data), void *data)
{
        w->busy = busy;
        w->busy_data = data;
}

void ferry__watch_hold_roots(struct ferry_watch *w)
{
        w->hold_roots = true;
}

uint64_t ferry__watch_found_at_start(const struct ferry_watch *w)
{
        return w->found_at_start;
}

int ferry_watch_new(struct ferry_watch **ret_watch, unsigned flags)
{
        struct ferry_watch *w;
        struct epoll_event ev = {.events = EPOLLIN};
        int r;

        if (!ret_watch || (flags & ~(unsigned)(FERRY_WATCH_RECURSIVE | FERRY_WATCH_FOLLOW | FERRY_WATCH_EXISTING)))
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->flags = flags;
        w->event_mask = FERRY_EVENT_ALL;
        w->epoll_fd = w->timer_fd = -1;
        w->retry_at = FERRY__FOREVER;
        w->timer_armed = FERRY__FOREVER;
        w->poll_interval_ns = 2 * FERRY__NSEC_PER_SEC;
        w->timers[FERRY__TIMER_POLL_SETTLE].delay_ns = 2 * w->poll_interval_ns;
        if (getrandom(&w->hash_seed, sizeof(w->hash_seed), GRND_NONBLOCK) != sizeof(w->hash_seed))
                w->hash_seed = (uint64_t)ferry__now() ^ (uint64_t)(uintptr_t)w;
        w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (w->epoll_fd < 0 || w->timer_fd < 0 || epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->timer_fd, &ev) < 0) {
                r = -errno;
                goto fail;
        }
        *ret_watch = w;
        return 0;
fail:
        ferry_watch_free(w);
        return r;
}

static void globs_done(struct ferry__globs *globs)
{
        for (size_t i = 0; i < globs->count; i++)
                free(globs->items[i].pattern);
        free(globs->items);
}

static void root_free(struct ferry_watch *w, struct ferry__root *root)
{
        if (root->dir)
                ferry__dir_detach(w, root->dir);
        free(root->given);
        free(root->prefix);
        free(root->watch_path);
        free(root->only_name);
        free(root);
}

void ferry_watch_free(struct ferry_watch *w)
{
        if (!w)
                return;
        ferry__verify_free(w);
        while (w->roots) {
                struct ferry__root *root = w->roots;

                w->roots = root->next;
                root_free(w, root);
        }
        ferry__queue_done(&w->queue);
        ferry__hash_done(&w->by_name);
        ferry__hash_done(&w->by_id);
        globs_done(&w->include);
        globs_done(&w->exclude);
        ferry__backends_close(w);
        if (w->timer_fd >= 0)
                close(w->timer_fd);
        if (w->epoll_fd >= 0)
                close(w->epoll_fd);
        free(w);
}

int ferry_watch_set_ready(struct ferry_watch *w, const char *policy)
{
        struct ferry__policy p;
        int64_t blind_ns;
        int r;

        if (!w || !policy || w->roots)
                return -EINVAL;
        r = ferry__policy_parse(policy, &p);
        if (r < 0)
                return r;
        w->policy = p;
        w->timers[FERRY__TIMER_GUARD].delay_ns = p.guard_ns;
        /* done-file uses it for an empty marker only (ready.c: consider_marked) */
        blind_ns = p.kind == FERRY__POLICY_DONE_FILE ? FERRY__EMPTY_MARKER_NS : FERRY__NSEC_PER_SEC;
        w->timers[FERRY__TIMER_BLIND_GUARD].delay_ns = p.guard_ns > blind_ns ? p.guard_ns : blind_ns;
        w->timers[FERRY__TIMER_SETTLE].delay_ns = p.settle_ns;
        w->timers[FERRY__TIMER_QUIET].delay_ns = p.settle_ns;
        return 0;
}

int ferry_watch_set_events(struct ferry_watch *w, unsigned mask)
{
        if (!w || (mask & ~FERRY_EVENT_ALL) || w->roots)
                return -EINVAL;
        w->event_mask = mask | FERRY_EVENT_RESCAN | FERRY_EVENT_ROOT_GONE | FERRY_EVENT_ROOT_BACK | FERRY_EVENT_ERROR;
        return 0;
}

static int globs_add(struct ferry__globs *globs, const char *glob)
{
        struct ferry__glob *items;
        char *copy;

        if (!glob || !*glob)
                return -EINVAL;
        copy = strdup(glob);
        if (!copy)
                return -ENOMEM;
        items = realloc(globs->items, (globs->count + 1) * sizeof(*items));
        if (!items) {
                free(copy);
                return -ENOMEM;
        }
        items[globs->count++] = (struct ferry__glob){.pattern = copy, .has_slash = strchr(glob, '/') != NULL};
        globs->items = items;
        return 0;
}

int ferry_watch_include(struct ferry_watch *w, const char *glob)
{
        return w ? globs_add(&w->include, glob) : -EINVAL;
}

int ferry_watch_exclude(struct ferry_watch *w, const char *glob)
{
        return w ? globs_add(&w->exclude, glob) : -EINVAL;
}

/* The path without trailing slashes ("/" stays "/"). */
static char *strip_slashes(const char *path, size_t len)
{
        while (len > 1 && path[len - 1] == '/')
                len--;
        return strndup(path, len);
}

/* The kernel events this watcher's configuration needs. Ready policies judge
 * a file by the last close and by stat, so writes themselves (IN_MODIFY, one
 * event per write) are needed only when asked for, to settle, or for auto's
 * writers that never close. */
static unsigned kernel_needs(const struct ferry_watch *w)
{
        unsigned needs = ferry__policy_needs(&w->policy), events = w->event_mask;

        /* New subfolders come this way, and files that appear complete by
         * link(2) or linkat(2) (O_TMPFILE): their only event. */
        if ((events & FERRY_EVENT_CREATE) || (w->flags & FERRY_WATCH_RECURSIVE))
                needs |= FERRY__NEED_CREATE;
        if (events & FERRY_EVENT_MODIFY)
                needs |= FERRY__NEED_MODIFY;
        if (events & FERRY_EVENT_ATTRIB)
                needs |= FERRY__NEED_ATTRIB;
        if (events & FERRY_EVENT_CLOSE_WRITE)
                needs |= FERRY__NEED_CLOSE_WRITE;
        return needs;
}

static int root_add(struct ferry_watch *w, const char *path, bool is_file)
{
        struct ferry__root *root, **tail;
        struct stat st;
        int r = -ENOMEM;

        if (!w || !path || !*path)
                return -EINVAL;
        root = calloc(1, sizeof(*root));
        if (root)
                root->held_fd = -1;
        if (!root)
                return -ENOMEM;
        root->retry_at = FERRY__FOREVER;
        root->given = strdup(path);
        if (!root->given)
                goto fail;
        if (is_file) {
                const char *slash = strrchr(path, '/');
                const char *name = slash ? slash + 1 : path;

                if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
                        r = -EISDIR;
                        goto fail;
                }
                root->only_name = strdup(name);
                root->prefix = slash ? strip_slashes(path, slash == path ? 1 : (size_t)(slash - path)) : strdup("");
        } else {
                root->prefix = strip_slashes(path, strlen(path));
        }
        if (!root->only_name && is_file)
                goto fail;
        if (!root->prefix)
                goto fail;
        root->watch_path = strdup(*root->prefix ? root->prefix : ".");
        if (!root->watch_path)
                goto fail;
        if (is_file && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
                r = -EISDIR;
                goto fail;
        }
        if (!is_file && stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
                r = -ENOTDIR;
                goto fail;
        }
        if (!w->backend_count) {
                r = ferry__backends_open(w);
                if (r < 0)
                        goto fail;
        }
        if (!w->roots)
                ferry__backends_set_needs(w, kernel_needs(w));
        for (tail = &w->roots; *tail; tail = &(*tail)->next)
                ;
        *tail = root;
        ferry__root_choose_backend(w, root);
        r = ferry__root_attach(w, root, FERRY__SCAN_START);
        if (r < 0) {
                *tail = NULL;
                goto fail;
        }
        return 0;
fail:
        root_free(w, root);
        return r;
}

int ferry_watch_add(struct ferry_watch *w, const char *path)
{
        return root_add(w, path, false);
}

int ferry_watch_add_file(struct ferry_watch *w, const char *path)
{
        return root_add(w, path, true);
}

int ferry_watch_set_max_dirs(struct ferry_watch *w, size_t max)
{
        if (!w)
                return -EINVAL;
        w->max_dirs = max;
        return 0;
}

int ferry_watch_set_max_files(struct ferry_watch *w, size_t max)
{
        /* Names left out are found by a later listing: as new ones, so only
         * where the files already there are reported too. */
        if (!w || (max && !(w->flags & FERRY_WATCH_EXISTING)))
                return -EINVAL;
        w->max_files = max;
        return 0;
}

int ferry_watch_fd(struct ferry_watch *w)
{
        return w ? w->epoll_fd : -EINVAL;
}

size_t ferry_watch_count(struct ferry_watch *w)
{
        return w ? w->dir_count : 0;
}

/* Roots that went away: look for them again (FERRY_WATCH_FOLLOW). */
static void retry_roots(struct ferry_watch *w, int64_t now)
{
        for (struct ferry__root *root = w->roots; root; root = root->next) {
                if (root->dir || root->retry_at > now)
                        continue;
                /* As at start: what is there is the baseline, or reported
                 * with FERRY_WATCH_EXISTING (which ferry run uses). */
                if (ferry__root_attach(w, root, FERRY__SCAN_START) == 0)
                        (void)ferry__queue_push(w, FERRY_EVENT_ROOT_BACK, FERRY_EVENT_IS_DIR, root, root->given,
                                                strlen(root->given), NULL, 0, 0, -1);
                else
                        root->retry_at = now + ROOT_RETRY_NS;
        }
}

static int64_t next_deadline(const struct ferry_watch *w)
{
        int64_t next = ferry__ready_next_deadline(w), backends = ferry__backends_deadline(w);

        if (backends < next)
                next = backends;
        if (w->retry_at < next)
                next = w->retry_at;
        for (const struct ferry__root *root = w->roots; root; root = root->next) {
                if (!root->dir && root->retry_at < next)
                        next = root->retry_at;
        }
        return next;
}

/* Arms the timerfd for the caller's poll loop (FOREVER disarms); a syscall
 * only when the deadline changes. */
static void arm_timer(struct ferry_watch *w, int64_t deadline)
{
        struct itimerspec its = {0};

        if (deadline == w->timer_armed)
                return;
        w->timer_armed = deadline;
        if (deadline != FERRY__FOREVER) {
                if (deadline <= 0)
                        deadline = 1;
                its.it_value.tv_sec = deadline / FERRY__NSEC_PER_SEC;
                its.it_value.tv_nsec = deadline % FERRY__NSEC_PER_SEC;
        }
        (void)timerfd_settime(w->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Does all work that is due without blocking; returns -errno on failure. */
static int work(struct ferry_watch *w)
{
        int64_t now = ferry__now();
        uint64_t expirations;
        int r;

        /* A fired timer must not keep the epoll set readable; deadlines are
         * recomputed when the caller waits again. */
        if (w->timer_armed != FERRY__FOREVER && now >= w->timer_armed) {
                (void)read(w->timer_fd, &expirations, sizeof(expirations));
                w->timer_armed = FERRY__FOREVER;
        }

        ferry__verify_collect(w);
        ferry__ready_expire(w, now);
        retry_roots(w, now);
        r = ferry__backends_read(w, now);
        if (r < 0)
                return r;
        /* Names left out at the cap of files: listed again once half are gone. */
        if (w->files_deferred && w->file_count <= w->max_files / 2) {
                w->files_deferred = false;
                w->rescan_needed = true;
        }
        if (w->rescan_needed)
                ferry__rescan_all(w);
        if (now >= w->retry_at)
                ferry__retry_unwatched(w);
        return 0;
}

int ferry_watch_next(struct ferry_watch *w, const struct ferry_event **ret_event, int timeout_ms)
{
        int64_t until;

        if (!w || !ret_event)
                return -EINVAL;
        until = timeout_ms < 0 ? FERRY__FOREVER : ferry__now() + (int64_t)timeout_ms * FERRY__NSEC_PER_MSEC;
        for (;;) {
                struct epoll_event ev;
                int64_t now, deadline, wait_ns;
                int r;

                if (ferry__queue_pop(&w->queue, ret_event))
                        return 1;
                r = work(w);
                if (r < 0)
                        return r;
                if (w->queue.head)
                        continue;
                now = ferry__now();
                deadline = next_deadline(w);
                if (now >= until) {
                        arm_timer(w, deadline);
                        return 0;
                }
                if (deadline > until)
                        deadline = until;
                /* A deadline that passed while work() ran (timers set by a
                 * long read) is due now: no wait, never an endless one. */
                wait_ns = deadline == FERRY__FOREVER ? -1 : deadline > now ? deadline - now : 0;
                r = epoll_wait(w->epoll_fd, &ev, 1,
                               wait_ns < 0 ? -1 : (int)((wait_ns + FERRY__NSEC_PER_MSEC - 1) / FERRY__NSEC_PER_MSEC));
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}

int ferry_watch_explain(struct ferry_watch *w, int error, const char *path, char *buf, size_t size)
{
        int n;

        if (!w || !buf || size == 0 || error >= 0)
                return -EINVAL;
        if (!path)
                path = "";
        if (error == -ENOSPC) {
                int64_t now = ferry__now();

                /* Counting the watches in use reads every process's fdinfo:
                 * once a second at most, however many folders failed. */
                if (!w->limits_at || now - w->limits_at > FERRY__NSEC_PER_SEC) {
                        ferry__inotify_limits(&w->limit, &w->in_use);
                        w->limits_at = now;
                }
                long limit = w->limit, in_use = w->in_use;
                bool root = false;

                for (const struct ferry__root *r = w->roots; r && !root; r = r->next)
                        root = strcmp(r->watch_path, path) == 0 || strcmp(r->given, path) == 0;
                n = snprintf(buf, size,
                             "cannot watch %s: %s (inotify watch limit %ld reached, %ld in use by this user; "
                             "raise fs.inotify.max_user_watches, e.g. sysctl fs.inotify.max_user_watches=%ld)%s",
                             path, strerror(ENOSPC), limit, in_use, limit > 0 ? limit * 4 : 524288,
                             root || w->start_failed ? "" : "; until then it is listed every 5 s instead");
        } else if (error == -EDQUOT) {
                n = snprintf(buf, size,
                             "cannot watch %s: this rule's cap of %zu watched folders is reached (so that a tree "
                             "others can fill does not use up the inotify watches every process of this user "
                             "shares); it is listed every 5 s instead, and watched once folders go away or the "
                             "cap is raised",
                             path, w->max_dirs);
        } else if (error == -EOVERFLOW) {
                n = snprintf(buf, size,
                             "cannot watch %s: %zu folders are watched and %zu listed every 5 s, the most there "
                             "may be; its files wait until folders go away or the cap is raised",
                             path, w->dir_count, w->polled_count);
        } else if (error == -EBADMSG) {
                n = snprintf(buf, size,
                             "%s does not match its done-marker (size or SHA-256): its writer did not finish, or it "
                             "changed after the marker was written; not handed out",
                             path);
        } else if (error == -EMFILE) {
                n = snprintf(buf, size,
                             "cannot watch %s: too many inotify instances for this user; raise "
                             "fs.inotify.max_user_instances",
                             path);
        } else if (error == -EEXIST) {
                n = snprintf(buf, size, "cannot watch %s: already watched by this watcher", path);
        } else if (error == -ENOTDIR) {
                n = snprintf(buf, size, "cannot watch %s: not a directory", path);
        } else if (error == -EISDIR) {
                n = snprintf(buf, size,
                             "cannot wait for %s: it is a directory (give a file, or watch the directory for names "
                             "that match)",
                             path);
        } else {
                n = snprintf(buf, size, "cannot watch %s: %s", path, strerror(-error));
        }
        return n < 0 ? -EIO : 0;
}
