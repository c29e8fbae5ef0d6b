/* internal.h: what the files of libferry share, and nothing the public may see.
 *
 * The watcher keeps a mirror of the watched trees: a node for every watched
 * directory and an entry for every file it has seen. Backends (inotify.c)
 * translate what the kernel reports into calls on that mirror (tree.c); the
 * mirror turns them into public events (queue.c) and feeds the ready policy
 * (ready.c), which decides when a file is complete. scan.c lists directories
 * for start-up, new subdirectories and rescans after lost events.
 */
#ifndef FERRY_INTERNAL_H
#define FERRY_INTERNAL_H

#include "ferry.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define FERRY__NSEC_PER_MSEC INT64_C(1000000)
#define FERRY__NSEC_PER_SEC INT64_C(1000000000)
#define FERRY__FOREVER INT64_MAX

/* ---- hash.c: intrusive chained hash table --------------------------------- */

/* Embedded in whatever the table holds; the table never allocates per item. */
struct ferry__hash_node {
        struct ferry__hash_node *next;
        uint32_t hash;
};

struct ferry__hash {
        struct ferry__hash_node **buckets;
        size_t bucket_count; /* a power of two, or 0 before the first insert */
        size_t count;
};

int ferry__hash_insert(struct ferry__hash *h, struct ferry__hash_node *node, uint32_t hash);
void ferry__hash_remove(struct ferry__hash *h, struct ferry__hash_node *node);
/* First node of the chain that may hold hash; walk it with ->next, comparing ->hash. */
struct ferry__hash_node *ferry__hash_chain(const struct ferry__hash *h, uint32_t hash);
void ferry__hash_done(struct ferry__hash *h);
uint32_t ferry__hash_bytes(const void *data, size_t size, uint64_t seed);

/* ---- the mirror of the watched trees (tree.c) ------------------------------ */

enum ferry__kind { FERRY__DIR, FERRY__FILE };

/* A name inside a watched directory, file or directory. Owned by the watcher;
 * found by (parent, name) in the watcher's name table. */
struct ferry__entry {
        struct ferry__hash_node by_name;
        struct ferry__dir *parent; /* NULL for the top directory of a root */
        struct ferry__entry *sibling_prev, *sibling_next; /* in parent->children */
        char *name;                /* in the same allocation, NUL-terminated */
        uint16_t name_len;
        uint8_t kind;              /* enum ferry__kind */
        uint8_t seen;              /* rescan bookkeeping: found by the current listing */
};

/* A watched directory. */
struct ferry__dir {
        struct ferry__entry entry;
        struct ferry__hash_node by_wd;
        struct ferry__entry *children;
        struct ferry__root *root;
        int wd;
        bool incomplete; /* a subfolder could not be watched, or this one is polled: list it again later */
        bool polled;     /* no watch (the cap or the kernel's limit): wd is a number of our own, < 0 */
        bool retrying;   /* listed by the retry under way (its subfolders with it) */
        uint32_t file_count;   /* polled roots: files seen by the last poll of this folder */
        uint64_t listed_stamp; /* polled roots: the folder's inode, mtime and ctime, mixed, at the last listing */
        int64_t list_until;    /* polled roots: list at every poll until then (CLOCK_MONOTONIC ns) */
};

/* Ready-tracking state of a file.
 *
 *   state          meaning                                   next
 *   IDLE           nothing pending (reported, or baseline)   a write or arrival
 *   WRITING        written to; waiting for the last close    close, marker
 *   GUARD          closed, no writer; quiet guard running    ready, or WRITING
 *   SETTLE         waiting for size and mtime to settle      ready, or SETTLE
 *   QUIET          auto: written, no close yet; if it stays  ready (writers are servers),
 *                  unchanged, a server's cache may hold it   or WRITING (a local writer)
 *   WAIT_MARKER    complete, waiting for its done-marker     ready
 */
enum ferry__state { FERRY__IDLE, FERRY__WRITING, FERRY__GUARD, FERRY__SETTLE, FERRY__WAIT_MARKER, FERRY__QUIET };

/* Identity of one version of a file's content, as far as stat tells. */
struct ferry__version {
        uint64_t ino;
        int64_t size;
        int64_t mtime_ns;
};

/* A file seen in a watched directory. */
struct ferry__file {
        struct ferry__entry entry;
        struct ferry__file *timer_prev, *timer_next; /* in one timer queue while GUARD/SETTLE */
        int64_t deadline;                            /* CLOCK_MONOTONIC ns, while in a timer queue */
        struct ferry__version known;                 /* last stat, valid when stat_known */
        struct ferry__version reported;              /* last reported ready (was_reported) or refused (refused) */
        uint8_t state;                               /* enum ferry__state */
        uint8_t timer;                               /* which timer queue, while in one */
        uint8_t rechecks;                            /* GUARD: looks at a writer seen after a close */
        uint8_t quiet_polls;                         /* polls in a row that found it unchanged (saturates) */
        bool stat_known : 1;
        bool dirty : 1;        /* written to since the last stat */
        bool was_reported : 1;
        bool refused : 1; /* done-file: reported is a version its marker refused (was_reported false) */
        bool guard_without_close : 1; /* GUARD for a name that appeared with content, no close seen:
                                       * a write then is a writer at work, not one that reopened */
};

/* A path handed to ferry_watch_add*(). */
struct ferry__root {
        struct ferry__root *next;
        char *given;          /* as the caller gave it: event->root */
        char *prefix;         /* event paths start with this; "" for a bare file name */
        char *watch_path;     /* what to open and watch: prefix, or "." */
        char *only_name;      /* file roots: the one name reported; NULL for directories */
        struct ferry__dir *dir; /* NULL while gone */
        int64_t retry_at;     /* FOLLOW: next check for its return, while gone */
        bool poll;            /* also listed every poll interval (network, FUSE, or asked) */
        int64_t next_poll;
        uint32_t polls;       /* poll cycles so far: which slice of the quiet files is checked */
        char fs_name[64];     /* "local", "nfs", "fuse.sshfs", ... */
};

/* Changes a backend reports about a file, or a scan finds. */
enum ferry__change {
        FERRY__CHANGE_CREATE,
        FERRY__CHANGE_MODIFY,
        FERRY__CHANGE_ATTRIB,
        FERRY__CHANGE_CLOSE_WRITE,
        FERRY__CHANGE_ARRIVED, /* renamed into place */
        FERRY__CHANGE_FOUND,   /* found by a scan, history unknown */
};

/* ---- ready.c: policies -------------------------------------------------- */

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

/* Timer queues: each has one fixed delay, so appending keeps it sorted. */
enum {
        FERRY__TIMER_GUARD,       /* close: quiet after the last close */
        FERRY__TIMER_BLIND_GUARD, /* close without the lease check */
        FERRY__TIMER_SETTLE,      /* settle=DURATION */
        FERRY__TIMER_POLL_SETTLE, /* auto on a polled root: two poll intervals */
        FERRY__TIMER_QUIET,       /* auto: written, no close seen (server fd caches) */
        FERRY__TIMER_COUNT
};

struct ferry__timer_queue {
        struct ferry__file *head, *tail;
        int64_t delay_ns;
};

int ferry__policy_parse(const char *text, struct ferry__policy *ret_policy);
void ferry__ready_change(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change);
void ferry__ready_marker(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len);
/* The verdict of a marker's check of version v of f (verify.c): 0, -EBADMSG, -errno. */
void ferry__ready_verified(struct ferry_watch *w, struct ferry__file *f, const struct ferry__version *v, int result);
bool ferry__ready_is_marker(const struct ferry_watch *w, const char *name, size_t len);
void ferry__ready_forget(struct ferry_watch *w, struct ferry__file *f);
void ferry__ready_expire(struct ferry_watch *w, int64_t now);
int64_t ferry__ready_next_deadline(const struct ferry_watch *w);

/* ---- queue.c: the events handed out ---------------------------------------- */

struct ferry__queued;

struct ferry__event_queue {
        struct ferry__queued *head, *tail;
        struct ferry__queued *current; /* handed out; freed on the next call */
};

/* Queues an event about path (len bytes), copying the strings. Returns -ENOMEM. */
int ferry__queue_push(struct ferry_watch *w, unsigned type, unsigned flags, const struct ferry__root *root,
                      const char *path, size_t len, const char *old_path, size_t old_len, int error,
                      int64_t size);
bool ferry__queue_pop(struct ferry__event_queue *q, const struct ferry_event **ret_event);
void ferry__queue_done(struct ferry__event_queue *q);

/* ---- the watcher (watch.c) ------------------------------------------------- */

struct ferry__glob {
        char *pattern;
        bool has_slash;
};

struct ferry__globs {
        struct ferry__glob *items;
        size_t count;
};

enum ferry__backend { FERRY__BACKEND_AUTO, FERRY__BACKEND_INOTIFY, FERRY__BACKEND_POLL };

struct ferry__verifier;

/* A rule's folders watched at most, by default: far below the inotify watches
 * a Debian machine gives each user, so that a tree others can fill cannot
 * take them all from every process of ferry's user (root's, often). */
#define FERRY__DEFAULT_MAX_FOLDERS 65536

struct ferry_watch {
        /* Called every so many file system calls of a long scan (a large
         * folder behind a slow mount): the runner renews its leases there. */
        void (*busy)(void *data);
        void *busy_data;
        unsigned busy_count;
        unsigned flags;         /* FERRY_WATCH_* */
        enum ferry__backend backend;
        int64_t poll_interval_ns;
        unsigned event_mask;    /* FERRY_EVENT_* handed out */
        struct ferry__policy policy;
        struct ferry__globs include, exclude;
        struct ferry__root *roots;
        struct ferry__hash by_name; /* entries by (parent, name) */
        struct ferry__hash by_wd;   /* dirs by watch descriptor */
        uint64_t hash_seed;
        size_t dir_count;
        size_t max_dirs;        /* folders watched at most, roots counted (a root always is); 0: no cap */
        size_t polled_count;    /* folders beyond: listed every few seconds instead (as many at most) */
        int last_polled_wd;     /* the numbers polled folders go by: -2, -3, ... */
        bool starting;          /* a root's first scan: the kernel's limit is an error, not polled */
        bool start_failed;      /* ... and it was reached there */
        struct ferry__timer_queue timers[FERRY__TIMER_COUNT];
        struct ferry__event_queue queue;
        struct ferry__inotify *inotify;
        struct ferry__verifier *verifier; /* markers' hashes, off the loop; NULL until the first */
        int epoll_fd;
        int timer_fd;
        int64_t timer_armed; /* the deadline timer_fd is armed for; FOREVER: disarmed */
        bool rescan_needed;
        int64_t retry_at; /* next retry of folders with unwatched subfolders */
        bool retrying;    /* in that retry: failures were reported already */
        uint64_t found_at_start; /* files the scans of ferry_watch_add*() found */
        int64_t limits_at; /* when limit and in_use were read (explaining ENOSPC) */
        long limit, in_use;
        char path[2 * PATH_MAX]; /* scratch for building paths */
};

/* One more file system call of a scan or probe: every 64th calls w->busy. */
static inline void ferry__watch_busy(struct ferry_watch *w)
{
        if (w->busy && ++w->busy_count % 64 == 0)
                w->busy(w->busy_data);
}

int64_t ferry__now(void);
/* "250ms", "1.5s", "2m30s", "1h05m". */
int ferry__format_duration(int64_t ns, char *buf, size_t size);

/* ---- tree.c ---------------------------------------------------------------- */

/* Builds the path of a directory, or of name inside it, into w->path (or buf
 * when given, of PATH_MAX * 2 bytes). Returns its length, or -ENAMETOOLONG. */
ssize_t ferry__dir_path(struct ferry_watch *w, const struct ferry__dir *dir, const char *name, size_t name_len,
                        char *buf);
struct ferry__entry *ferry__entry_find(struct ferry_watch *w, const struct ferry__dir *parent, const char *name,
                                       size_t len);
bool ferry__file_wanted(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len);
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
/* Whether a subdirectory of that name is watched (recursion, temp names in ready mode). */
bool ferry__dir_wanted(const struct ferry_watch *w, const struct ferry__dir *parent, const char *name, size_t len);
bool ferry__is_temp_name(const char *name, size_t len);
/* A glob against a file: its name, or with '/' in the glob its path relative to the root. */
bool ferry__glob_match(const char *pattern, const char *name, const char *relative);

/* What backends and scans call. */
/* A file changed: keeps the mirror, emits emit_type (0: nothing) and feeds the policy. */
struct ferry__file *ferry__file_changed(struct ferry_watch *w, struct ferry__dir *dir, const char *name,
                                        size_t len, enum ferry__change change, unsigned emit_type,
                                        unsigned emit_flags);
/* A file present when watching started, recorded as already seen at version v. */
void ferry__file_baseline(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len,
                          const struct ferry__version *v);
void ferry__file_gone(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len,
                      unsigned event_type, unsigned event_flags);
void ferry__file_remove(struct ferry_watch *w, struct ferry__file *f);
void ferry__file_set_known(struct ferry__file *f, const struct ferry__version *v);
/* Watches name inside parent (or the root's own directory when parent is NULL)
 * and adds its node, without scanning it. */
int ferry__dir_attach(struct ferry_watch *w, struct ferry__dir *parent, const char *name, size_t len,
                      struct ferry__root *root, struct ferry__dir **ret_dir);
struct ferry__dir *ferry__dir_find_wd(struct ferry_watch *w, int wd);
void ferry__dir_detach(struct ferry_watch *w, struct ferry__dir *dir);
/* A polled folder gets a watch if one is free now: 0, or -errno (it stays polled). */
int ferry__dir_watch_again(struct ferry_watch *w, struct ferry__dir *dir);
/* name inside dir could not be watched (error): reports an ERROR event and
 * marks dir for a later retry. */
void ferry__dir_unwatched(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len, int error);
void ferry__moved(struct ferry_watch *w, struct ferry__dir *from_dir, const char *from_name, size_t from_len,
                  struct ferry__dir *to_dir, const char *to_name, size_t to_len, bool is_dir);
void ferry__root_lost(struct ferry_watch *w, struct ferry__root *root);
int ferry__root_attach(struct ferry_watch *w, struct ferry__root *root, int scan_mode);
void ferry__emit(struct ferry_watch *w, unsigned type, unsigned flags, struct ferry__dir *dir, const char *name,
                 size_t len);

/* ---- scan.c ---------------------------------------------------------------- */

enum ferry__scan_mode {
        FERRY__SCAN_START,  /* root added: files are the baseline (or reported with FERRY_WATCH_EXISTING) */
        FERRY__SCAN_NEW,    /* directory new to the watcher: everything in it is new */
        FERRY__SCAN_RESCAN, /* events were lost: report the difference */
        FERRY__SCAN_POLL,   /* a poll cycle: RESCAN, but a folder that did not change is not listed again,
                             * and files quiet for long are looked at in slices (scan.c) */
};

/* Lists dir and, when recursive, its subdirectories; returns 0 or the first
 * error that must be reported (-ENOSPC). */
int ferry__scan(struct ferry_watch *w, struct ferry__dir *dir, enum ferry__scan_mode mode);
void ferry__rescan_all(struct ferry_watch *w);
/* How often folders with unwatched subfolders are listed again. */
#define FERRY__RETRY_UNWATCHED_NS (5 * FERRY__NSEC_PER_SEC)
void ferry__retry_unwatched(struct ferry_watch *w);
/* ---- backend.c ------------------------------------------------------------- */

/* Whether path is on a network or FUSE file system; name gets its type. */
bool ferry__fs_is_remote(const char *path, char *name, size_t size);
void ferry__root_choose_backend(struct ferry_watch *w, struct ferry__root *root);
/* Lists the polled roots that are due. */
void ferry__poll_due(struct ferry_watch *w, int64_t now);

/* ---- inotify.c: the only file that knows inotify --------------------------- */

int ferry__inotify_new(struct ferry__inotify **ret, int *ret_fd);
void ferry__inotify_free(struct ferry__inotify *in);
/* Watches path; top: a root given by the user (symlinks followed). Returns the wd or -errno. */
int ferry__inotify_add(struct ferry__inotify *in, const char *path, bool top);
/* Which kernel events the watcher needs (FERRY__NEED_*): each one asked for
 * without need is a wake-up per write or per file. */
enum {
        FERRY__NEED_CREATE = 1u << 0,
        FERRY__NEED_MODIFY = 1u << 1,
        FERRY__NEED_ATTRIB = 1u << 2,
        FERRY__NEED_CLOSE_WRITE = 1u << 3,
};
void ferry__inotify_set_needs(struct ferry__inotify *in, unsigned needs);
void ferry__inotify_remove(struct ferry__inotify *in, int wd);
/* Reads what is pending without blocking and applies it; returns > 0 when
 * something was read, 0 when nothing was pending, -errno. */
int ferry__inotify_read(struct ferry_watch *w);
/* When a move seen half must count as a move out of the tree (FERRY__FOREVER: none pending). */
int64_t ferry__inotify_deadline(const struct ferry__inotify *in);
/* Limit and use of inotify watches for the error message. */
void ferry__inotify_limits(long *ret_limit, long *ret_in_use);

/* ---- probe.c --------------------------------------------------------------- */

enum { FERRY__NO_WRITER = 0, FERRY__WRITER_OPEN = 1 };

/* Whether any process holds path open for writing, and its version. Returns
 * FERRY__NO_WRITER, FERRY__WRITER_OPEN, -ENOENT when it cannot be examined
 * (gone), or another -errno when the kernel cannot tell about writers (not
 * the owner, no lease support, not a regular file). Except for -ENOENT,
 * *ret_version is filled. */
int ferry__writers_check(const char *path, struct ferry__version *ret_version);
/* 1 when every process that has path open for writing is a file server
 * (nfs-ganesha, smbd, sftp-server, ...) or none shows (a kernel server such
 * as nfsd), 0 when a local program writes it; -errno. Reads /proc: slow. */
int ferry__writers_are_servers(const char *path);
struct stat;
void ferry__version_from_stat(const struct stat *st, struct ferry__version *ret_version);
/* lstat of path as a version; *ret_is_dir (may be NULL) says whether it is a directory. */
int ferry__stat_version(const char *path, struct ferry__version *ret_version, bool *ret_is_dir);

/* ---- proc.c: every process's open files ----------------------------------- */

#include <stdio.h>
/* Calls fd_cb(pid, fd, data) for each open fd of each process that process_cb
 * (NULL: every one) accepts, until a callback returns nonzero; returns that
 * value, 0 once all were seen, -errno when /proc cannot be listed. */
int ferry__proc_each_fd(bool (*process_cb)(int pid, void *data), int (*fd_cb)(int pid, int fd, void *data),
                        void *data);
/* /proc/PID/fdinfo/FD opened for reading, or NULL (errno). */
FILE *ferry__proc_fdinfo(int pid, int fd);

/* ---- trust.c: folders ferry trusts, and files beneath them --------------- */

#include <sys/stat.h>
/* What is known of the file system ferry's state lives on, and why the last
 * check failed (one line that names the path and the fix). */
struct ferry__trust {
        bool learned;    /* owner and modes_kept were probed */
        uid_t owner;     /* what this file system reports as the owner of what we make */
        bool modes_kept; /* it keeps the modes we ask for */
        char why[768];
};
/* A relative path with no "..", "." or empty part and no leading slash. */
bool ferry__relative_is_clean(const char *relative);
/* Opens relative beneath dir_fd, following no link and never leaving it
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a walk by hand);
 * -ELOOP when a link stands on the way. */
int ferry__open_beneath(int dir_fd, const char *relative, int flags, int *ret_fd);
/* Makes and opens the folders of relative (NULL: dir_fd itself) beneath
 * dir_fd, a folder only we can write; *ret_fd is a new descriptor. */
int ferry__mkdirs_beneath(int dir_fd, const char *relative, mode_t mode, int *ret_fd);
/* Writes a private (0600) file through a new temporary name and a rename. */
int ferry__write_note(int dir_fd, const char *name, const char *text, size_t len);
/* Reads a small regular file (never a link, fifo or device); NUL-terminated. */
ssize_t ferry__read_note(int dir_fd, const char *name, char *buffer, size_t size);
/* renameat(2) that never replaces anything, also where RENAME_NOREPLACE is refused. */
int ferry__rename_noreplace(int from_fd, const char *from, int to_fd, const char *to);
/* Whether fd is a folder ferry may trust: owned by its user, writable by
 * nobody else; -EPERM or -ENOTDIR with t->why. probe_dir_fd: where a file
 * may be made, once, to learn how this file system reports owners and modes. */
int ferry__trust_check(struct ferry__trust *t, int fd, int probe_dir_fd, const char *path);
/* Makes (mode) or opens the folder name in parent_fd, never through a link,
 * and checks it as ferry__trust_check does; ours: set its mode to mode. */
int ferry__trusted_dir(struct ferry__trust *t, int parent_fd, const char *name, mode_t mode, bool ours,
                       const char *path, int *ret_fd);
/* Opens a folder an administrator named, following only links that root or
 * ferry's user made, making missing folders with create_mode (0: never). */
int ferry__open_admin_dir(struct ferry__trust *t, const char *path, mode_t create_mode, int *ret_fd);

/* ---- claim.c: the folder as the queue ------------------------------------- */

/* One worker's area in a rule's folder: DIR/.ferry/work/RULE@WORKER/. Every
 * descriptor was opened once, at start, and checked: renaming or replacing
 * a path later changes nothing that ferry touches. */
struct ferry__workarea {
        char *dir;          /* the rule's folder */
        char *worker;       /* RULE@HOST.PID.START */
        char *rule_prefix;  /* RULE@ */
        char host[256];
        char machine[64];   /* /etc/machine-id, or "-" */
        char boot[64];      /* this boot's id */
        int root_fd;        /* DIR: files are found beneath it */
        int ferry_fd;       /* DIR/.ferry, ours */
        dev_t ferry_dev;    /* .ferry's identity: found under another name, it is still not work */
        ino_t ferry_ino;
        int base_fd;        /* DIR/.ferry/work, ours; -1 when files stay in place */
        int work_fd;        /* our work folder; -1 when files stay in place */
        int output_fd;      /* the output folder, where a dead worker's partial output is removed; -1: none */
        struct ferry__trust trust;
        uint64_t seq;       /* last claim number */
        int64_t lease_ns;
        unsigned restored;  /* times our work folder was found removed and made again */
        char **refused;     /* claim folders left alone, said once each */
        size_t refused_count;
};

/* A claimed file. */
struct ferry__claim {
        uint64_t seq;
        char *name;          /* its name */
        char *origin;        /* its folder relative to DIR, NULL for DIR itself */
        char *claimed_path;  /* where it is now, in the work area */
        char *original_path; /* where it was: DIR/[ORIGIN/]NAME */
        bool in_place;        /* on-success = keep: not moved; claimed_path is original_path */
        bool output_noted;    /* its folder holds an .output note */
        char *outcome;        /* adopted: "done\n" or "failed\nNOTE" when it was handled already, or NULL */
        mode_t type;          /* S_IFREG, S_IFLNK, ...: what was claimed (0: unknown) */
        struct ferry__version version; /* in_place: the version being handled */
};

/* An outcome folder (done, failed), opened and checked once, at start. */
struct ferry__folder {
        char *path; /* for messages and the paths handed out */
        int fd;
        mode_t mode; /* of the folders made in it */
};

/* Opens DIR and its .ferry, made or checked (ours, writable by nobody
 * else); on failure, wa->trust.why says why. */
int ferry__workarea_home(struct ferry__workarea *wa, const char *dir);
/* Opens (makes) the worker's own folder after ferry__workarea_home. */
int ferry__workarea_open(struct ferry__workarea *wa, const char *rule, int64_t lease_ns);
void ferry__workarea_close(struct ferry__workarea *wa);
void ferry__workarea_heartbeat(struct ferry__workarea *wa);
/* lstat(2) of path (DIR/...), walked from DIR without following links;
 * -EPERM for a path inside .ferry under another name. */
int ferry__lstat_beneath(struct ferry__workarea *wa, const char *path, struct stat *ret_st);
/* Claims path (DIR/...) by renaming it into the work area; -ENOENT when
 * another worker was faster or the file is gone; -ELOOP when a link stands
 * on its way; -EPERM when it is inside .ferry renamed. */
int ferry__claim(struct ferry__workarea *wa, const char *path, struct ferry__claim **ret_claim);
/* Opens the claimed file for reading: only a regular file (-EINVAL else). */
int ferry__claim_open(struct ferry__workarea *wa, const struct ferry__claim *c, bool follow, int *ret_fd);
/* Opens an outcome folder: path, or DIR/.ferry/name when path is NULL. */
int ferry__folder_open(struct ferry__workarea *wa, struct ferry__folder *f, const char *path, const char *name);
void ferry__folder_close(struct ferry__folder *f);
/* Writes the note RELATIVE+suffix (cut to NAME_MAX) in the folder. */
int ferry__folder_note(const struct ferry__folder *f, const char *relative, const char *suffix, const char *text,
                       size_t len);
/* Moves the claimed file to folder/ORIGIN/NAME (never replacing: NAME.1, ...),
 * or deletes it when folder is NULL; removes the claim's folder. Where it
 * went, relative to the folder, goes to *ret_relative (may be NULL; caller frees). */
int ferry__claim_finish(struct ferry__workarea *wa, struct ferry__claim *c, const struct ferry__folder *folder,
                        char **ret_relative);
/* Notes that the claim was handled (text "done\n", or "failed\n" and its
 * failure note; NULL: no longer) while its move out waits, so that a worker
 * taking it over moves it without handling it again. */
int ferry__claim_note_outcome(struct ferry__workarea *wa, const struct ferry__claim *c, const char *text);
/* Notes the pid of the claim's running handler (0: none runs), for ferry status. */
void ferry__claim_note_handler(struct ferry__workarea *wa, const struct ferry__claim *c, pid_t pid);
/* Notes the name of the claim's handler output in the output folder (NULL:
 * no longer), so that a worker adopting the claim after a crash removes it. */
void ferry__claim_note_output(struct ferry__workarea *wa, struct ferry__claim *c, const char *name);
/* Makes a new private output file .ferry-out.XXXXXX in dir_fd; its name to ret_name. */
int ferry__output_create(int dir_fd, char *ret_name, size_t size);
/* Puts the claimed file back where it was; -EEXIST when a new file took its name. */
int ferry__claim_return(struct ferry__workarea *wa, struct ferry__claim *c);
void ferry__claim_free(struct ferry__claim *c);
/* A claim of a file left in place (on-success = keep): nothing moves. */
int ferry__claim_in_place(struct ferry__workarea *wa, const char *path, struct ferry__claim **ret_claim);
/* The claim's path relative to the rule's folder (ORIGIN/NAME); caller frees. */
char *ferry__claim_relative(const struct ferry__claim *c);

typedef void (*ferry__adopt_cb)(void *userdata, struct ferry__claim *claim);
typedef void (*ferry__refuse_cb)(void *userdata, const char *path, const char *why);
/* Adopts the claims of dead workers of the same rule into ours; calls adopt
 * for each, which takes ownership, and refused, once, for each claim folder
 * it leaves alone (not ferry's, a link, an origin outside DIR). Returns how
 * many it adopted, or -errno. */
int ferry__recover(struct ferry__workarea *wa, ferry__adopt_cb adopt, ferry__refuse_cb refused, void *userdata);
/* Takes up claims left in our own work folder by an earlier runner of this
 * process, and numbers new claims after them. */
int ferry__recover_own(struct ferry__workarea *wa, ferry__adopt_cb adopt, void *userdata);

/* A claim as ferry status sees it. */
struct ferry__claim_info {
        const char *path;   /* where it came from: DIR/[ORIGIN/]NAME */
        const char *worker; /* RULE@HOST.PID.START */
        int pid;            /* its running handler, 0 when none runs */
        int64_t since;      /* realtime ns: claimed, or its handler started */
        bool worker_alive;
};
typedef void (*ferry__claim_list_cb)(void *userdata, const struct ferry__claim_info *claim);
/* Calls callback for every claim of rule in dir's work area; returns how many, or -errno. */
int ferry__claims_list(const char *dir, const char *rule, ferry__claim_list_cb callback, void *userdata);

/* ---- store.c: what was handled, for files left in place ------------------ */

struct ferry__store;

/* Opens .ferry/state.db in ferry_fd (DIR/.ferry), holding .ferry/keep.lock:
 * -EBUSY when another worker does. */
int ferry__store_open(int ferry_fd, struct ferry__store **ret_store);
/* A worker that moves files holds .ferry/keep.lock shared, in a descriptor
 * it keeps: -EBUSY while a worker keeps files in the folder. */
int ferry__store_share(int ferry_fd, int *ret_fd);
void ferry__store_close(struct ferry__store *s);
/* 1 when path (relative to DIR) was handled in version v, 0 when not, -EIO. */
int ferry__store_handled(struct ferry__store *s, const char *path, const struct ferry__version *v);
/* Records the outcome ("done", "failed") of path in version v. */
int ferry__store_record(struct ferry__store *s, const char *path, const struct ferry__version *v,
                        const char *outcome, const char *reason);

/* ---- marker.c: done-markers with size and SHA-256 --------------------------- */

#define FERRY__SHA256_SIZE 32

int ferry__sha256_file(const char *path, uint8_t digest[FERRY__SHA256_SIZE], uint64_t *ret_size);
void ferry__sha256_hex(const uint8_t digest[FERRY__SHA256_SIZE], char hex[2 * FERRY__SHA256_SIZE + 1]);
/* The marker's text for a file of file_size bytes and that digest; returns its length. */
int ferry__marker_format(char *buf, size_t size, uint64_t file_size, const uint8_t digest[FERRY__SHA256_SIZE]);
/* What a marker says of its file; an empty hex and no size: nothing. */
struct ferry__marker_claim {
        bool has_size;
        uint64_t size;
        char hex[2 * FERRY__SHA256_SIZE + 1];
};
/* Reads a marker (only a regular file, never through a link). */
int ferry__marker_read(const char *marker_path, struct ferry__marker_claim *ret);
/* 0 when the marker carries no claim or its claims (size, sha256) hold for the
 * data file, -EBADMSG when they do not, another -errno when it cannot tell.
 * Reads the whole file at once: the watcher checks off its loop (verify.c). */
int ferry__marker_check(const char *marker_path, const char *data_path);

/* ---- verify.c: markers' SHA-256 checked off the event loop ----------------- */

/* Starts checking version of the file f at data_path against claim, in the
 * verifier's thread; ferry__ready_verified gets the verdict. -EBADMSG when
 * the size alone refutes it; -errno when the file cannot be read. */
int ferry__verify_start(struct ferry_watch *w, struct ferry__file *f, const char *data_path,
                        const struct ferry__version *version, const struct ferry__marker_claim *claim);
/* f goes away or changes: a check under way is dropped when it ends. */
void ferry__verify_forget(struct ferry_watch *w, struct ferry__file *f);
/* Hands finished checks to ferry__ready_verified. */
void ferry__verify_collect(struct ferry_watch *w);
/* Stops the verifier's thread (between two slices) and frees what it held. */
void ferry__verify_free(struct ferry_watch *w);

/* ---- keeper.c: handlers' process groups die with ferry ---------------------- */

struct ferry__keeper {
        int fd;    /* our end of the socket; -1 when there is no keeper */
        pid_t pid; /* the keeper process */
};

/* Forks the keeper. Call before any handler starts. */
int ferry__keeper_start(struct ferry__keeper *k);
/* A handler's process group started, or ended. */
void ferry__keeper_add(struct ferry__keeper *k, pid_t pgid);
void ferry__keeper_remove(struct ferry__keeper *k, pid_t pgid);
/* Says goodbye (nothing is killed) and reaps the keeper. */
void ferry__keeper_stop(struct ferry__keeper *k);

/* Read-only, without the lock: for ferry status and explain. -ENOENT: no record. */
int ferry__store_open_readonly(const char *dir, struct ferry__store **ret_store);
int ferry__store_count(struct ferry__store *s, const char *outcome, uint64_t *ret_count);
struct ferry__record {
        struct ferry__version version;
        char outcome[16];
        char reason[512];
        int64_t at; /* unix time */
};
/* 1 and *ret_record when path has a record, 0 when not, -EIO. Read-only stores only. */
int ferry__store_get(struct ferry__store *s, const char *path, struct ferry__record *ret_record);

/* ---- rule.c ---------------------------------------------------------------- */

enum ferry__on_success { FERRY__ON_SUCCESS_DONE, FERRY__ON_SUCCESS_DELETE, FERRY__ON_SUCCESS_KEEP };

struct ferry_rule {
        struct ferry_rule *next; /* in the runner */
        char *name;
        char *dir;
        char **match, **exclude, **command; /* NULL-terminated */
        size_t match_count, exclude_count, command_count;
        bool recursive;
        bool use_stdin;
        bool follow_symlinks;  /* hand symlinks to the handler; default: skip them */
        char *ready;           /* policy text, checked */
        struct ferry__policy policy; /* the same, parsed */
        unsigned jobs;         /* handlers at once */
        unsigned retries;      /* attempts after the first */
        unsigned batch;        /* files per handler run; 1: no batching */
        unsigned max_folders;  /* folders the rule's watcher watches at most */
        int64_t timeout_ns;    /* 0: none */
        int64_t kill_after_ns; /* SIGTERM to SIGKILL */
        int64_t retry_delay_ns;/* first back-off; doubles per attempt */
        int64_t lease_ns;      /* a claim whose heartbeat is older is a dead worker's */
        enum ferry__on_success on_success;
        char *done_dir, *failed_dir, *output_dir; /* NULL: defaults */
        char *user;
        char *backend;         /* NULL: auto */
        int64_t poll_interval_ns;
        char *require_file;    /* a name DIR must hold to count as there (a mount's marker); NULL: none */
        bool exit_when_lost;   /* on-folder-lost = exit: the runner ends when DIR goes away */
        uid_t uid;
        gid_t gid;
        char explanation[512];
};

/* A watcher set up as the rule's (policy, backend, intervals, cap, globs,
 * its require-file left out), no folder added yet: ferry run watches with
 * it, ferry explain judges names with it, so that the two agree. */
int ferry__rule_watch_new(const struct ferry_rule *rule, unsigned flags, struct ferry_watch **ret_watch);



/* ---- spawn.c ---- */

/* Values for the placeholders of a command template. Borrowed for the call. */
struct ferry__placeholders {
        const char *path;         /* {} and {path}: the file's path as the handler sees it; NULL in batch mode */
        const char *const *paths; /* {paths}: batch mode, NULL-terminated; NULL when not batching */
};

/* Expands a command template into a new NULL-terminated argv (free with ferry__argv_free). Each template
 * argument becomes exactly one argument, placeholders filled in byte for byte, except a standalone {paths},
 * which becomes one argument per path; -EINVAL for an unknown or valueless placeholder, a lone brace, an
 * embedded {paths}, or an empty result. Placeholders: {} {path} {name} {dir} {stem} {ext} {paths}; "{{" and
 * "}}" are literal braces. */
int ferry__argv_expand(char *const *template, const struct ferry__placeholders *values, char ***ret_argv);
/* Validates a template at configuration time, as ferry__argv_expand would for a single file (batch: false,
 * no {paths}) or a batch (true: only {paths}). Returns 0 or -EINVAL. */
int ferry__argv_check(char *const *template, bool batch);
/* Frees an argv from ferry__argv_expand. NULL-safe. */
void ferry__argv_free(char **argv);

/* How to start a handler. Borrowed for the call. */
struct ferry__spawn_request {
        char *const *argv; /* argv[0] is searched in PATH (absolute entries only) when it has no '/' */
        char *const *envp; /* the child's whole environment; its PATH is the one searched */
        int stdin_fd;      /* dup'ed to 0; -1: /dev/null */
        int stdout_fd;     /* dup'ed to 1; -1: /dev/null */
        const char *cwd;   /* NULL: inherit */
        bool switch_user;  /* setgroups (uid's supplementary groups), setresgid, setresuid before exec */
        uid_t uid;
        gid_t gid;
};

#define FERRY__STDERR_TAIL 4096 /* bytes of the child's stderr kept: the newest */

/* A started handler: the leader of its own process group. Owned by the caller; ends with
 * ferry__child_reap or ferry__child_abandon, which close the fds. */
struct ferry__child {
        pid_t pid;
        int pidfd;     /* readable when the child exited; O_CLOEXEC; -1 once reaped */
        int stderr_fd; /* read end of the child's stderr, O_NONBLOCK | O_CLOEXEC; -1 after EOF or reap */
        bool tail_cut; /* older bytes were dropped: tail may begin in the middle of a line */
        size_t tail_len;
        char tail[FERRY__STDERR_TAIL]; /* the last bytes of stderr, oldest first */
};

/* Starts a handler: own process group, default signal dispositions and an empty mask, stdin and stdout as
 * requested, stderr to a pipe, no other fds, optional user switch, chdir, execve. Returns 0, or the -errno of
 * the step that failed in the child (-ENOENT, -EACCES, ...), the child then already reaped. */
int ferry__spawn(const struct ferry__spawn_request *req, struct ferry__child *ret_child);
/* Reads what the child wrote to stderr so far into tail, at most 64 KiB per call; call while stderr_fd is
 * readable: a child blocks once the pipe (64 KiB) is full. */
void ferry__child_read_stderr(struct ferry__child *c);
/* Sends sig to the child's whole process group. */
void ferry__child_signal(struct ferry__child *c, int sig);

struct ferry__exit {
        int code;   /* exit status, or -1 when killed */
        int signal; /* the signal that killed it, or 0 */
};

/* Waits for the child's exit (call when pidfd is readable), SIGKILLs what is left of its process group,
 * reaps it, drains stderr and closes the fds. Returns 0 or -errno; on error too the fds are closed. */
int ferry__child_reap(struct ferry__child *c, struct ferry__exit *ret_exit);
/* The last max_lines lines of the stderr tail, without the final newline, starting at a line boundary when
 * the tail holds one; points into c->tail. */
const char *ferry__child_stderr_lines(const struct ferry__child *c, int max_lines, size_t *ret_len);
/* Kills the child's group with SIGKILL, reaps it and closes the fds: for shutdown paths. NULL-safe, and a
 * no-op on a child already reaped. */
void ferry__child_abandon(struct ferry__child *c);

#endif
