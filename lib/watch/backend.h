/* backend.h: the seam between the mirror of the watched trees and what
 * tells it about changes.
 *
 * A backend learns what changed in the watched folders and tells the mirror
 * (tree.c: ferry__file_changed, ferry__file_gone, ferry__moved,
 * ferry__root_lost, ...). There are two:
 *
 *   inotify.c   the kernel's events, for every folder it is attached to; it
 *               owns the map from its watch numbers to folders
 *   poll.c      lists each polled root every poll interval and reports the
 *               differences (scan.c's poll mode); it keeps nothing per folder
 *
 * A root is watched by inotify unless polling alone was asked for, and also
 * polled when that was asked for or its file system hides other machines'
 * writes from inotify (backend.c chooses). The watcher knows the backends
 * only through these operations: a new one (fanotify, SMB change notify)
 * is one more table.
 */
#ifndef FERRY_BACKEND_H
#define FERRY_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

struct ferry_watch;
struct ferry__dir;

struct ferry__backend {
        const char *name;
        /* Sets the backend up for w; a descriptor it reads joins the
         * watcher's epoll set. 0 or -errno. */
        int (*open)(struct ferry_watch *w);
        void (*close)(struct ferry_watch *w);
        /* The events the ready policy needs reported (FERRY__NEED_*); NULL: all it reports anyway. */
        void (*set_needs)(struct ferry_watch *w, unsigned needs);
        /* Starts watching dir, reached at path (top: a root's own folder,
         * a symbolic link to it followed). 0, or -errno: -ENOSPC when the
         * kernel's watches ran out. NULL: nothing kept per folder. */
        int (*attach)(struct ferry_watch *w, struct ferry__dir *dir, const char *path, bool top);
        void (*detach)(struct ferry_watch *w, struct ferry__dir *dir);
        /* Applies what is pending or due, without blocking: > 0 when
         * something was, 0 when nothing, -errno. */
        int (*read)(struct ferry_watch *w, int64_t now);
        /* When read must run again at the latest, whatever the epoll set
         * says (FERRY__FOREVER: only when it is readable). */
        int64_t (*deadline)(const struct ferry_watch *w);
};

extern const struct ferry__backend ferry__inotify_backend;
extern const struct ferry__backend ferry__poll_backend;

#endif
