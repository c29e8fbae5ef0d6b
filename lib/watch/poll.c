/* poll.c: the poll backend: each polled root listed every poll interval.
 *
 * A listing compared with the mirror (scan.c's poll mode, which lists again
 * only folders that changed and looks at quiet files in slices) reports
 * what happened since the last one, whoever did it: the file server, its
 * other clients, a FUSE daemon. Nothing is kept per folder: the mirror is
 * the state. Where no kernel backend watches a root, the poll also notices
 * the root itself gone or replaced, which inotify would have said.
 */
#include "engine.h"

#include <errno.h>
#include <sys/stat.h>

/* The root's folder is still the one attached: its path leads to the same inode. */
static bool root_still_there(const struct ferry__root *root)
{
        struct stat st;

        if (stat(root->watch_path, &st) < 0)
                return errno != ENOENT && errno != ENOTDIR; /* unreadable for a moment is not gone */
        return S_ISDIR(st.st_mode) && st.st_dev == root->dev && st.st_ino == root->ino;
}

static int poll_read(struct ferry_watch *w, int64_t now)
{
        int listed = 0;

        for (struct ferry__root *root = w->roots; root; root = root->next) {
                if (!root->poll || now < root->next_poll)
                        continue;
                root->polls++;
                if (root->dir && root->dir->watch < 0 && !root_still_there(root)) {
                        ferry__root_lost(w, root);
                        continue;
                }
                if (root->dir) {
                        (void)ferry__scan(w, root->dir, FERRY__SCAN_POLL);
                        listed = 1;
                }
                /* From the end of this cycle: a slow listing never piles up. */
                root->next_poll = ferry__now() + w->poll_interval_ns;
        }
        return listed;
}

static int64_t poll_deadline(const struct ferry_watch *w)
{
        int64_t next = FERRY__FOREVER;

        for (const struct ferry__root *root = w->roots; root; root = root->next)
                if (root->dir && root->poll && root->next_poll < next)
                        next = root->next_poll;
        return next;
}

const struct ferry__backend ferry__poll_backend = {
        .name = "poll",
        .read = poll_read,
        .deadline = poll_deadline,
};
