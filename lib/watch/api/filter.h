/* filter.h: what the rest of libferry may know of the watch engine: ready
 * policies by name, which names a watcher takes (temporary names, markers,
 * globs), and the hooks a runner sets on the watchers it makes.
 */
#ifndef FERRY_FILTER_H
#define FERRY_FILTER_H

#include "common.h"

#include <sys/stat.h>

enum ferry__policy_kind {
        FERRY__POLICY_NONE,
        FERRY__POLICY_CLOSE,
        FERRY__POLICY_RENAME,
        FERRY__POLICY_DONE_FILE,
        FERRY__POLICY_SETTLE,
        FERRY__POLICY_AUTO,
};

struct ferry__policy {
        enum ferry__policy_kind kind;
        int64_t guard_ns;  /* CLOSE, AUTO: quiet time after the last close */
        int64_t settle_ns; /* SETTLE; AUTO: quiet time for files written and never closed */
        bool marker_is_suffix;
        char marker[NAME_MAX + 1]; /* DONE_FILE: ".done" suffix, or a folder-wide marker name */
};

int ferry__policy_parse(const char *text, struct ferry__policy *ret_policy);
/* What the policy makes of the file at path (st: its lstat) as it is now,
 * in one line into buf, with the probes a watcher uses: what ferry explain
 * says. poll_interval_ns: its folder's, when it is polled; else 0. */
int ferry__policy_explain(const struct ferry__policy *p, const char *path, const struct stat *st,
                          int64_t poll_interval_ns, char *buf, size_t size);

/* Whether a folder is listed every poll interval under backend "auto",
 * "inotify" or "poll" (remote: its file system hides other machines'
 * writes from inotify): the one rule the watcher and explain follow. */
bool ferry__backend_polls(const char *backend, bool remote);
/* How a folder on file system fs is watched, in words, for backend "auto",
 * "inotify" or "poll" (remote: fs hides other machines' writes from inotify). */
int ferry__describe_watching(const char *backend, bool remote, const char *fs, int64_t poll_interval_ns, char *buf,
                             size_t size);

/* Why a watcher takes a file by its name, or not: what ferry explain says. */
enum ferry__verdict {
        FERRY__VERDICT_WANTED,
        FERRY__VERDICT_TEMP,     /* a temporary or hidden name, in ready mode */
        FERRY__VERDICT_MARKER,   /* a done-marker: counted, never handed out */
        FERRY__VERDICT_NO_MATCH, /* none of the include globs */
        FERRY__VERDICT_EXCLUDED, /* an exclude glob */
};
/* The same judgement as the watcher's, for a path relative to a root. */
enum ferry__verdict ferry__name_verdict(struct ferry_watch *w, const char *relative);

bool ferry__is_temp_name(const char *name, size_t len);

/* A rule's folders watched at most, by default: far below the inotify watches
 * a Debian machine gives each user, so that a tree others can fill cannot
 * take them all from every process of ferry's user (root's, often). */
#define FERRY__DEFAULT_MAX_FOLDERS 65536

/* Called every so many file system calls of a long scan (a large folder
 * behind a slow mount), with data: a runner renews its leases there. */
void ferry__watch_set_busy(struct ferry_watch *w, void (*busy)(void *data), void *data);
/* Holds each root open, so that its files are probed through it while the
 * root's path leads nowhere for a moment (a file system above it unmounted
 * lazily and mounted again). Only for a caller that holds the root open
 * anyway and sees it deleted by itself: inotify says a held directory was
 * deleted only once it is closed. Before ferry_watch_add*(). */
void ferry__watch_hold_roots(struct ferry_watch *w);
/* Files the scans of ferry_watch_add*() found. */
uint64_t ferry__watch_found_at_start(const struct ferry_watch *w);

#endif
