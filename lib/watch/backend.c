/* backend.c: choosing how each root is watched, from the file system it is on.
 *
 * inotify reports what happens through this machine's kernel. On a network
 * or FUSE file system that is only this machine's own writes: the server's
 * and other clients' changes never show. Such
 * roots are also polled: listed and compared with the mirror every interval,
 * which reports what others did; inotify still reports our own writes at once.
 */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ferry_watch_set_backend(struct ferry_watch *w, const char *backend)
{
        if (!w || !backend || w->roots)
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

void ferry__root_choose_backend(struct ferry_watch *w, struct ferry__root *root)
{
        bool remote_fs = ferry__fs_is_remote(root->watch_path, root->fs_name, sizeof(root->fs_name));

        root->poll = w->backend == FERRY__BACKEND_POLL || (w->backend == FERRY__BACKEND_AUTO && remote_fs);
        root->next_poll = root->poll ? ferry__now() + w->poll_interval_ns : FERRY__FOREVER;
}

void ferry__poll_due(struct ferry_watch *w, int64_t now)
{
        for (struct ferry__root *root = w->roots; root; root = root->next) {
                if (!root->poll || now < root->next_poll)
                        continue;
                root->polls++;
                if (root->dir)
                        (void)ferry__scan(w, root->dir, FERRY__SCAN_POLL);
                /* From the end of this cycle: a slow listing never piles up. */
                root->next_poll = ferry__now() + w->poll_interval_ns;
        }
}

int ferry_watch_describe_root(struct ferry_watch *w, const char *path, char *buf, size_t size)
{
        int n = -1;

        if (!w || !path || !buf || size == 0)
                return -EINVAL;
        for (struct ferry__root *root = w->roots; root; root = root->next) {
                if (strcmp(root->given, path) != 0)
                        continue;
                if (!root->poll)
                        n = snprintf(buf, size, "inotify (%s file system)", root->fs_name);
                else if (w->backend == FERRY__BACKEND_POLL)
                        n = snprintf(buf, size, "poll every %.3gs and inotify (%s file system; polling asked for)",
                                     (double)w->poll_interval_ns / FERRY__NSEC_PER_SEC, root->fs_name);
                else
                        n = snprintf(buf, size,
                                     "poll every %.3gs and inotify (%s: inotify sees only this machine's own "
                                     "writes there)",
                                     (double)w->poll_interval_ns / FERRY__NSEC_PER_SEC, root->fs_name);
                return n < 0 ? -EIO : 0;
        }
        return -ENOENT;
}
