/* backend.c: choosing how each root is watched, from the file system it is on.
 *
 * inotify reports what happens through this machine's kernel. On a network
 * or FUSE file system that is only this machine's own writes: the server's
 * and other clients' changes never show (../shared/lab/FINDINGS.md, E2). Such
 * roots are also polled: listed and compared with the mirror every interval,
 * which reports what others did; inotify still reports our own writes at once.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>

static const struct {
        unsigned long magic;
        const char *name;
} remote[] = {
        {0x6969, "nfs"},         {0xFF534D42, "cifs"},    {0xFE534D42, "smb2"},   {0x517B, "smb"},
        {0x65735546, "fuse"},    {0x00C36400, "ceph"},    {0x01021997, "9p"},     {0x5346414F, "afs"},
        {0x6B414653, "kafs"},    {0x73757245, "coda"},    {0x564C, "ncp"},        {0x7461636F, "ocfs2"},
        {0x01161970, "gfs2"},    {0x0BD00BD0, "lustre"},  {0x47504653, "gpfs"},   {0x13661366, "orangefs"},
        {0x19830326, "fhgfs"},   {0xAAD7AAEA, "panfs"},
};

/* For FUSE, the subtype from /proc/self/mountinfo ("fuse.sshfs") says more. */
static void fuse_subtype(const char *path, char *name, size_t size)
{
        char line[4096], best[256] = "";
        size_t best_len = 0;
        FILE *f = fopen("/proc/self/mountinfo", "re");

        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                char mount_point[2048], type[256];
                const char *dash = strstr(line, " - ");
                size_t len;

                if (!dash || sscanf(line, "%*s %*s %*s %*s %2047s", mount_point) != 1 ||
                    sscanf(dash + 3, "%255s", type) != 1 || strncmp(type, "fuse", 4) != 0)
                        continue;
                len = strlen(mount_point);
                /* The longest mount point that contains path. */
                if (strncmp(path, mount_point, len) == 0 && (path[len] == '/' || path[len] == '\0' || len == 1) &&
                    len >= best_len) {
                        best_len = len;
                        snprintf(best, sizeof(best), "%s", type);
                }
        }
        fclose(f);
        if (best[0])
                snprintf(name, size, "%s", best);
}

bool ferry__fs_is_remote(const char *path, char *name, size_t size)
{
        struct statfs st;

        snprintf(name, size, "local");
        if (statfs(path, &st) < 0)
                return false;
        for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
                if ((unsigned long)st.f_type != remote[i].magic)
                        continue;
                snprintf(name, size, "%s", remote[i].name);
                if (strcmp(remote[i].name, "fuse") == 0) {
                        char real[PATH_MAX];

                        if (realpath(path, real))
                                fuse_subtype(real, name, size);
                }
                return true;
        }
        return false;
}

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
                        n = snprintf(buf, size, "poll every %.3gs and inotify (%s file system; --backend poll)",
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
