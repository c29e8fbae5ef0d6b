/* engine.h: the watch engine's own header, for the files of lib/watch only.
 *
 * The watcher keeps a mirror of the watched trees: a node for every watched
 * directory and an entry for every file it has seen. Backends (backend.h:
 * inotify.c, poll.c) tell that mirror what changed (tree.c); the mirror
 * turns it into public events (events.c) and feeds the ready policy
 * (ready.c), which decides when a file is complete. scan.c lists directories
 * for start-up, new subdirectories, rescans after lost events and polls.
 */
#ifndef FERRY_ENGINE_H
#define FERRY_ENGINE_H

#include "common.h"
#include "filter.h"
#include "backend.h"

/* ---- the mirror of the watched trees (tree.c) ------------------------------ */

enum ferry__kind { FERRY__DIR, FERRY__FILE };

/* A name inside a watched directory, file or directory. Owned by the watcher;
 * found by (parent, name) in the watcher's name table. */
struct ferry__entry {
        struct ferry__hash_node by_name;
        struct ferry__dir *parent;                        /* NULL for the top directory of a root */
        struct ferry__entry *sibling_prev, *sibling_next; /* in parent->children */
        char *name;                                       /* in the same allocation, NUL-terminated */
        uint16_t name_len;
        uint8_t kind; /* enum ferry__kind */
        uint8_t seen; /* rescan bookkeeping: found by the current listing */
};

/* A watched directory. */
struct ferry__dir {
        struct ferry__entry entry;
        struct ferry__hash_node by_id;    /* the tree's: w->by_id */
        struct ferry__hash_node by_watch; /* the kernel backend's (inotify.c), while watch >= 0 */
        struct ferry__entry *children;
        struct ferry__root *root;
        uint64_t id;           /* the tree's own number for it, never reused while the watcher lives */
        int watch;             /* the kernel backend's handle for it (an inotify wd), or -1 */
        bool incomplete;       /* a subfolder could not be watched, or this one is polled: list it again later */
        bool polled;           /* the kernel backend could not take it (the cap or the kernel's limit): listed
                                * every few seconds with the retries instead */
        bool retrying;         /* listed by the retry under way (its subfolders with it) */
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

/* A file seen in a watched directory. */
struct ferry__file {
        struct ferry__entry entry;
        struct ferry__file *timer_prev, *timer_next; /* in one timer queue while GUARD/SETTLE */
        int64_t deadline;                            /* CLOCK_MONOTONIC ns, while in a timer queue */
        struct ferry__version known;                 /* last stat, valid when stat_known */
        struct ferry__version reported;              /* last reported ready (was_reported) or refused (refused) */
        uint64_t reported_read;                      /* the batch of events (read_seq) being handled when reported */
        uint8_t state;                               /* enum ferry__state */
        uint8_t timer;                               /* which timer queue, while in one */
        uint8_t rechecks;                            /* GUARD: looks at a writer seen after a close */
        uint8_t quiet_polls;                         /* polls in a row that found it unchanged (saturates) */
        bool stat_known : 1;
        bool dirty : 1; /* written to since the last stat */
        bool was_reported : 1;
        bool refused : 1;             /* done-file: reported is a version its marker refused (was_reported false) */
        bool guard_without_close : 1; /* GUARD for a name that appeared with content, no close seen:
                                       * a write then is a writer at work, not one that reopened */
        bool guard_unasked : 1;       /* GUARD begun without asking the kernel about writers (ready.c:
                                       * guard_without_asking): if its end cannot ask, the blind guard follows */
        bool found_closed : 1;        /* no policy: a listing reported it closed (found), known is that
                                       * version: the kernel's close of it, still queued, is not told again */
};

/* A path handed to ferry_watch_add*(). */
struct ferry__root {
        struct ferry__root *next;
        char *given;            /* as the caller gave it: event->root */
        char *prefix;           /* event paths start with this; "" for a bare file name */
        char *watch_path;       /* what to open and watch: prefix, or "." */
        char *only_name;        /* file roots: the one name reported; NULL for directories */
        struct ferry__dir *dir; /* NULL while gone */
        int held_fd;            /* while dir is set: the root's directory, O_PATH (ready.c), or -1 */
        dev_t dev;              /* while dir is set: the folder attached (poll.c sees it replaced) */
        ino_t ino;
        int64_t retry_at; /* FOLLOW: next check for its return, while gone */
        bool poll;        /* also listed every poll interval (network, FUSE, or asked) */
        int64_t next_poll;
        uint32_t polls;     /* poll cycles so far: which slice of the quiet files is checked */
        char fs_name[64];   /* "local", "nfs", "fuse.sshfs", ... */
        bool leases_answer; /* a lease probe of a file here answered (ready.c): a close needs none before its guard */
};

/* Changes a backend reports about a file, or a scan finds. */
enum ferry__change {
        FERRY__CHANGE_CREATE,
        FERRY__CHANGE_MODIFY,
        FERRY__CHANGE_WRITING, /* created or written to, and its writer's close follows in the same read of events */
        FERRY__CHANGE_ATTRIB,
        FERRY__CHANGE_CLOSE_WRITE,
        FERRY__CHANGE_ARRIVED, /* renamed into place */
        FERRY__CHANGE_FOUND,   /* found by a scan, history unknown */
};
/* ---- ready.c: policies -------------------------------------------------- */

/* done-file: how long a marker must stay empty to be taken as empty (a
 * client that closes a new file empty reopens it later on a busy machine). */
#define FERRY__EMPTY_MARKER_NS (3 * FERRY__NSEC_PER_SEC)

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

/* The policy's change function (policy.c's table) for a change of f. */
void ferry__ready_change(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change);
void ferry__ready_change_auto(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change);
void ferry__ready_change_close(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change);
void ferry__ready_change_rename(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change);
void ferry__ready_change_done_file(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change);
void ferry__ready_change_settle(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change);
/* What the kernel must report for the policy (FERRY__NEED_*). */
unsigned ferry__policy_needs(const struct ferry__policy *p);
void ferry__ready_marker(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len);
/* The verdict of a marker's check of version v of f (verify.c): 0, -EBADMSG, -errno. */
void ferry__ready_verified(struct ferry_watch *w, struct ferry__file *f, const struct ferry__version *v, int result);
bool ferry__ready_is_marker(const struct ferry_watch *w, const char *name, size_t len);
void ferry__ready_forget(struct ferry_watch *w, struct ferry__file *f);
void ferry__ready_expire(struct ferry_watch *w, int64_t now);
int64_t ferry__ready_next_deadline(const struct ferry_watch *w);
/* ---- events.c: the events handed out --------------------------------------- */

struct ferry__queued;

struct ferry__event_queue {
        struct ferry__queued *head, *tail;
        struct ferry__queued *current; /* handed out; freed on the next call */
};

/* Queues an event about path (len bytes), copying the strings. Returns -ENOMEM. */
int ferry__queue_push(struct ferry_watch *w, unsigned type, unsigned flags, const struct ferry__root *root,
                      const char *path, size_t len, const char *old_path, size_t old_len, int error, int64_t size);
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

enum ferry__backend_choice { FERRY__BACKEND_AUTO, FERRY__BACKEND_INOTIFY, FERRY__BACKEND_POLL };

struct ferry__verifier;

struct ferry_watch {
        /* Called every so many file system calls of a long scan (a large
         * folder behind a slow mount): the runner renews its leases there. */
        void (*busy)(void *data);
        void *busy_data;
        unsigned busy_count;
        unsigned flags; /* FERRY_WATCH_* */
        enum ferry__backend_choice backend;
        int64_t poll_interval_ns;
        unsigned event_mask; /* FERRY_EVENT_* handed out */
        struct ferry__policy policy;
        struct ferry__globs include, exclude;
        struct ferry__root *roots;
        struct ferry__hash by_name; /* entries by (parent, name) */
        struct ferry__hash by_id;   /* dirs by their id */
        uint64_t hash_seed;
        size_t dir_count;
        size_t max_dirs;     /* folders watched at most, roots counted (a root always is); 0: no cap */
        size_t polled_count; /* folders beyond: listed every few seconds instead (as many at most) */
        size_t file_count;   /* files in the mirror */
        size_t max_files;    /* files in the mirror at most; 0: no cap (ferry_watch_set_max_files) */
        bool files_deferred; /* names were left out at the cap: list again once half are gone */
        uint64_t last_dir_id;
        bool starting;     /* a root's first scan: the kernel's limit is an error, not polled */
        bool start_failed; /* ... and it was reached there */
        bool hold_roots;   /* roots are held open (ferry__watch_hold_roots) */
        struct ferry__timer_queue timers[FERRY__TIMER_COUNT];
        struct ferry__event_queue queue;
        /* The backends in use (backend.h), set up with the first root:
         * inotify unless polling alone was asked for, then poll. */
        const struct ferry__backend *backends[2];
        unsigned backend_count;
        struct ferry__inotify *inotify;   /* inotify.c's state, while it is in use */
        struct ferry__verifier *verifier; /* markers' hashes, off the loop; NULL until the first */
        int epoll_fd;
        int timer_fd;
        int64_t timer_armed; /* the deadline timer_fd is armed for; FOREVER: disarmed */
        uint64_t read_seq;   /* batches of kernel events read so far (inotify.c); 0: none yet */
        bool rescan_needed;
        int64_t retry_at;        /* next retry of folders with unwatched subfolders */
        bool retrying;           /* in that retry: failures were reported already */
        uint64_t found_at_start; /* files the scans of ferry_watch_add*() found */
        int64_t limits_at;       /* when limit and in_use were read (explaining ENOSPC) */
        long limit, in_use;
        char path[2 * PATH_MAX]; /* scratch for building paths */
};

/* One more file system call of a scan or probe: every 64th calls w->busy. */
static inline void ferry__watch_busy(struct ferry_watch *w)
{
        if (w->busy && ++w->busy_count % 64 == 0)
                w->busy(w->busy_data);
}

/* ---- tree.c ---------------------------------------------------------------- */

/* Builds the path of a directory, or of name inside it, into w->path (or buf
 * when given, of PATH_MAX * 2 bytes). Returns its length, or -ENAMETOOLONG. */
ssize_t ferry__dir_path(struct ferry_watch *w, const struct ferry__dir *dir, const char *name, size_t name_len,
                        char *buf);
struct ferry__entry *ferry__entry_find(struct ferry_watch *w, const struct ferry__dir *parent, const char *name,
                                       size_t len);
bool ferry__file_wanted(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len);
/* Whether a subdirectory of that name is watched (recursion, temp names in ready mode). */
bool ferry__dir_wanted(const struct ferry_watch *w, const struct ferry__dir *parent, const char *name, size_t len);
/* A glob against a file: its name, or with '/' in the glob its path relative to the root. */
bool ferry__glob_match(const char *pattern, const char *name, const char *relative);

/* What backends and scans call. */
/* A file changed: keeps the mirror, emits emit_type (0: nothing) and feeds the policy. */
struct ferry__file *ferry__file_changed(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len,
                                        enum ferry__change change, unsigned emit_type, unsigned emit_flags);
/* A file present when watching started, recorded as already seen at version v. */
void ferry__file_baseline(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len,
                          const struct ferry__version *v);
void ferry__file_gone(struct ferry_watch *w, struct ferry__dir *dir, const char *name, size_t len, unsigned event_type,
                      unsigned event_flags);
void ferry__file_remove(struct ferry_watch *w, struct ferry__file *f);
/* At the cap of files in the mirror (ferry_watch_set_max_files): the name is
 * left out, and the folders are listed again once half of the files are gone. */
bool ferry__files_full(struct ferry_watch *w);
void ferry__file_set_known(struct ferry__file *f, const struct ferry__version *v);
/* Watches name inside parent (or the root's own directory when parent is NULL)
 * and adds its node, without scanning it. */
int ferry__dir_attach(struct ferry_watch *w, struct ferry__dir *parent, const char *name, size_t len,
                      struct ferry__root *root, struct ferry__dir **ret_dir);
struct ferry__dir *ferry__dir_find_id(struct ferry_watch *w, uint64_t id);
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
void ferry__retry_unwatched(
        struct ferry_watch *w); /* ---- backend.c: which backends watch a root ------------------------------ */

/* Sets up the backends the watcher's choice asks for (with its first root). */
int ferry__backends_open(struct ferry_watch *w);
void ferry__backends_close(struct ferry_watch *w);
void ferry__root_choose_backend(struct ferry_watch *w, struct ferry__root *root);
/* Every backend that attaches folders, told of dir: 0 or the first -errno (the others undone). */
int ferry__backends_attach(struct ferry_watch *w, struct ferry__dir *dir, const char *path, bool top);
void ferry__backends_detach(struct ferry_watch *w, struct ferry__dir *dir);
int ferry__backends_read(struct ferry_watch *w, int64_t now);
int64_t ferry__backends_deadline(const struct ferry_watch *w);
/* Which kernel events the watcher needs (FERRY__NEED_*): each one asked for
 * without need is a wake-up per write or per file. */
enum {
        FERRY__NEED_CREATE = 1u << 0,
        FERRY__NEED_MODIFY = 1u << 1,
        FERRY__NEED_ATTRIB = 1u << 2,
        FERRY__NEED_CLOSE_WRITE = 1u << 3,
        /* a create or write whose close follows in the same read of events
         * comes as FERRY__CHANGE_WRITING (every policy's change function takes it) */
        FERRY__NEED_CLOSE_AHEAD = 1u << 4,
};
void ferry__backends_set_needs(struct ferry_watch *w, unsigned needs);
/* Limit and use of inotify watches for the error message (inotify.c). */
void ferry__inotify_limits(long *ret_limit, long *ret_in_use);
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
#endif
