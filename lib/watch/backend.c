/* backend.c: choosing how each root is watched, and the backends in use as one.
 *
 * inotify reports what happens through this machine's kernel. On a network
 * or FUSE file system that is only this machine's own writes: the server's
 * and other clients' changes never show. Such roots are also polled: listed
 * and compared with the mirror every interval, which reports what others
 * did; inotify still reports our own writes at once. Asked to poll, the
 * watcher polls every root and uses no inotify watch at all.
 */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ferry_watch_set_backend(struct ferry_watch *w, const char *backend)
{
        if (!w || !backend || w->roots || w->backend_count)
                return -EINVAL;
        if (strcmp(backend, "auto") == 0)
                w->backend = FERRY__BACKEND_AUTO;
        else if (strcmp(backend, "inotify") == 0)
                w->backend = FERRY__BACKEND_INOTIFY;
        else if (strcmp(backend, "poll") == 0)
                w->backend = FERRY__BACKEND_POLL;
        else
                return -EINVAL;
        return 0;
}

int ferry_watch_set_poll_interval(struct ferry_watch *w, int64_t interval_ns)
{
        if (!w || interval_ns < FERRY__NSEC_PER_MSEC * 10 || w->roots)
                return -EINVAL;
        w->poll_interval_ns = interval_ns;
        w->timers[FERRY__TIMER_POLL_SETTLE].delay_ns = 2 * interval_ns;
        return 0;
}

int ferry__backends_open(struct ferry_watch *w)
{
        if (w->backend != FERRY__BACKEND_POLL)
                w->backends[w->backend_count++] = &ferry__inotify_backend;
        w->backends[w->backend_count++] = &ferry__poll_backend;
        for (unsigned i = 0; i < w->backend_count; i++) {
                int r = w->backends[i]->open ? w->backends[i]->open(w) : 0;

                if (r < 0) {
                        w->backend_count = i;
                        ferry__backends_close(w);
                        return r;
                }
        }
        return 0;
}

void ferry__backends_close(struct ferry_watch *w)
{
        while (w->backend_count > 0) {
                const struct ferry__backend *b = w->backends[--w->backend_count];

                if (b->close)
                        b->close(w);
        }
}

void ferry__backends_set_needs(struct ferry_watch *w, unsigned needs)
{
        for (unsigned i = 0; i < w->backend_count; i++)
                if (w->backends[i]->set_needs)
                        w->backends[i]->set_needs(w, needs);
}

int ferry__backends_attach(struct ferry_watch *w, struct ferry__dir *dir, const char *path, bool top)
{
        for (unsigned i = 0; i < w->backend_count; i++) {
                int r = w->backends[i]->attach ? w->backends[i]->attach(w, dir, path, top) : 0;

                if (r < 0) {
                        while (i-- > 0)
                                if (w->backends[i]->detach)
                                        w->backends[i]->detach(w, dir);
                        return r;
                }
        }
        return 0;
}

void ferry__backends_detach(struct ferry_watch *w, struct ferry__dir *dir)
{
        for (unsigned i = 0; i < w->backend_count; i++)
                if (w->backends[i]->detach)
                        w->backends[i]->detach(w, dir);
}

int ferry__backends_read(struct ferry_watch *w, int64_t now)
{
        int any = 0;

        for (unsigned i = 0; i < w->backend_count; i++) {
                int r = w->backends[i]->read(w, now);

                if (r < 0)
                        return r;
                any |= r > 0;
        }
        return any;
}

int64_t ferry__backends_deadline(const struct ferry_watch *w)
{
        int64_t next = FERRY__FOREVER;

        for (unsigned i = 0; i < w->backend_count; i++) {
                int64_t d = w->backends[i]->deadline ? w->backends[i]->deadline(w) : FERRY__FOREVER;

                if (d < next)
                        next = d;
        }
        return next;
}

static const char *const backend_names[] =
        {[FERRY__BACKEND_AUTO] = "auto", [FERRY__BACKEND_INOTIFY] = "inotify", [FERRY__BACKEND_POLL] = "poll"};

bool ferry__backend_polls(const char *backend, bool remote)
{
        return strcmp(backend, "poll") == 0 || (strcmp(backend, "auto") == 0 && remote);
}

void ferry__root_choose_backend(struct ferry_watch *w, struct ferry__root *root)
{
        bool remote_fs = ferry__fs_is_remote(root->watch_path, root->fs_name, sizeof(root->fs_name));

        root->poll = ferry__backend_polls(backend_names[w->backend], remote_fs);
        root->next_poll = root->poll ? ferry__now() + w->poll_interval_ns : FERRY__FOREVER;
}

int ferry__describe_watching(const char *backend, bool remote, const char *fs, int64_t poll_interval_ns, char *buf,
                             size_t size)
{
        char every[32];
        int n;

        if (poll_interval_ns < FERRY__NSEC_PER_SEC)
                snprintf(every, sizeof(every), "%.3gs", (double)poll_interval_ns / FERRY__NSEC_PER_SEC);
        else
                (void)ferry__format_duration(poll_interval_ns, every, sizeof(every));
        if (strcmp(backend, "poll") == 0)
                n = snprintf(buf, size, "poll every %s, no inotify (%s file system; polling asked for)", every, fs);
        else if (ferry__backend_polls(backend, remote))
                n = snprintf(buf, size,
                             "poll every %s and inotify (%s: inotify sees only this machine's own writes "
                             "there)",
                             every, fs);
        else
                n = snprintf(buf, size, "inotify (%s file system)", fs);
        return n < 0 ? -EIO : 0;
}

int ferry_watch_describe_root(struct ferry_watch *w, const char *path, char *buf, size_t size)
{
        if (!w || !path || !buf || size == 0)
                return -EINVAL;
        for (struct ferry__root *root = w->roots; root; root = root->next)
                if (strcmp(root->given, path) == 0)
                        return ferry__describe_watching(backend_names[w->backend], root->poll, root->fs_name,
                                                        w->poll_interval_ns, buf, size);
        return -ENOENT;
}
