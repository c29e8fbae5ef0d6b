/* ferry.h: the public interface of libferry, the folder watchdog library.
 *
 * A watcher (struct ferry_watch) follows one or more folders and hands out
 * normalized events: what happened to which path, and, in ready mode, when a
 * file is completely written according to a ready policy. It owns no global
 * state, never prints and never exits; every call returns >= 0 on success and
 * -errno on failure. Strings handed out in an event are borrowed: they stay
 * valid until the next call on the same watcher.
 *
 * File names are bytes. Paths in events are NUL-terminated and also carry
 * their length; they may hold any byte but NUL and need not be UTF-8.
 */
#ifndef FERRY_H
#define FERRY_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_VERSION "0.1.0"

struct ferry_watch;

/* Event types. Each event has exactly one type; masks combine them. */
enum {
        FERRY_EVENT_CREATE = 1u << 0,      /* a name appeared */
        FERRY_EVENT_MODIFY = 1u << 1,      /* data was written */
        FERRY_EVENT_ATTRIB = 1u << 2,      /* metadata changed */
        FERRY_EVENT_CLOSE_WRITE = 1u << 3, /* a writer closed the file */
        FERRY_EVENT_DELETE = 1u << 4,      /* a name went away */
        FERRY_EVENT_MOVED_FROM = 1u << 5,  /* renamed away (out of the tree when unpaired) */
        FERRY_EVENT_MOVED_TO = 1u << 6,    /* renamed here; old_path is set when it came from inside */
        FERRY_EVENT_READY = 1u << 7,       /* the file is complete under the ready policy */
        FERRY_EVENT_RESCAN = 1u << 8,      /* events were lost; the events that follow come from a rescan */
        FERRY_EVENT_ROOT_GONE = 1u << 9,   /* a watched root was deleted, moved away or unmounted */
        FERRY_EVENT_ROOT_BACK = 1u << 10,  /* a root came back and is watched again (FERRY_WATCH_FOLLOW) */
        FERRY_EVENT_ERROR = 1u << 11,      /* part of the tree cannot be watched: see error */
};
#define FERRY_EVENT_ALL 0x0fffu

/* Event flags. */
enum {
        FERRY_EVENT_IS_DIR = 1u << 0, /* the path is a directory */
        FERRY_EVENT_FOUND = 1u << 1,  /* found by scanning, not reported by the kernel */
};

struct ferry_event {
        unsigned type;    /* one FERRY_EVENT_* type */
        unsigned flags;   /* FERRY_EVENT_IS_DIR, FERRY_EVENT_FOUND */
        const char *path; /* the path, as the root was given plus the relative part */
        size_t path_len;
        const char *old_path; /* MOVED_TO from inside the tree: where it came from; else NULL */
        size_t old_path_len;
        const char *root; /* the root this event belongs to, as given to ferry_watch_add */
        int error;        /* ERROR events: -errno; 0 otherwise */
        int64_t size;     /* READY events: the size at that moment; -1 when unknown */
};

/* Flags for ferry_watch_new(). */
enum {
        FERRY_WATCH_RECURSIVE = 1u << 0, /* follow subdirectories, present and future */
        FERRY_WATCH_FOLLOW = 1u << 1,    /* re-attach a root that goes away and comes back */
        FERRY_WATCH_EXISTING = 1u << 2,  /* report files already present when a root is added */
};

/* Creates a watcher. flags: FERRY_WATCH_*. On success *ret_watch owns the new
 * watcher; release it with ferry_watch_free(). */
int ferry_watch_new(struct ferry_watch **ret_watch, unsigned flags);

/* Releases the watcher and everything it holds. NULL is a no-op. */
void ferry_watch_free(struct ferry_watch *w);

/* Chooses the ready policy from its text form (see READY POLICIES in
 * libferry(3)): "close", "close=GUARD", "rename", "done-file", "done-file=.SUFFIX",
 * "done-file=MARKER", "settle=DURATION" or "auto". With a policy set, the
 * watcher emits FERRY_EVENT_READY once per completed version of each file and
 * ignores temporary names. Call before the first ferry_watch_add(), else
 * -EINVAL.
 *
 * The close and auto policies ask the kernel whether a writer still has a file
 * open by taking a read lease for an instant on a private descriptor; should
 * a writer open the file in that instant, the kernel signals the process with
 * SIGURG (set with F_SETSIG), which is ignored unless the program handles it. */
int ferry_watch_set_ready(struct ferry_watch *w, const char *policy);

/* Writes a one-line description of the ready policy in force into buf. */
int ferry_watch_describe_ready(struct ferry_watch *w, char *buf, size_t size);

/* How roots are watched: "auto" (default: inotify; on network and FUSE file
 * systems, where inotify sees only this machine's own writes, also polled),
 * "inotify", or "poll" (listing only, everywhere: no inotify watch is held;
 * changes show at the next listing). Before the first ferry_watch_add(). */
int ferry_watch_set_backend(struct ferry_watch *w, const char *backend);

/* How often polled roots are listed (default 2 s, at least 10 ms). Under the
 * auto policy a file on a polled root is ready once its size and mtime did
 * not change for two intervals. Before the first ferry_watch_add(). */
int ferry_watch_set_poll_interval(struct ferry_watch *w, int64_t interval_ns);

/* At most max folders are watched, the roots counted (0, the default: no cap):
 * a tree that others can fill with folders then cannot use up the user's
 * inotify watches, which every process of that user shares. A folder beyond
 * the cap is reported as an ERROR event (-EDQUOT), once, and listed every few
 * seconds instead (its files are still reported), until a watch is free; so
 * is one the kernel's limit refuses after the roots were set up (-ENOSPC). At
 * most as many are polled (65536 without a cap); beyond, -EOVERFLOW, and
 * their files wait until folders go away. */
int ferry_watch_set_max_dirs(struct ferry_watch *w, size_t max);

/* At most max files are tracked at once (0, the default: no cap), so that
 * memory stays bounded however many files a folder holds: names beyond are
 * left out (not even stat-ed), and the folders are listed again once half of
 * the files tracked are gone (reported and moved away, or deleted); the names
 * left out are found then, as files found by a listing are. Only files count:
 * files waiting for a marker, or being written, hold their place. Needs
 * FERRY_WATCH_EXISTING (else -EINVAL): a name left out is reported when found. */
int ferry_watch_set_max_files(struct ferry_watch *w, size_t max);

/* Writes how the root given as path is watched, and why, into buf. */
int ferry_watch_describe_root(struct ferry_watch *w, const char *path, char *buf, size_t size);

/* Only events of these types are handed out (FERRY_EVENT_* mask). ERROR,
 * RESCAN, ROOT_GONE and ROOT_BACK are always handed out. Default: all. The
 * kernel is asked only for what the mask and the ready policy need, so call
 * it before the first ferry_watch_add() (else -EINVAL). */
int ferry_watch_set_events(struct ferry_watch *w, unsigned mask);

/* Adds a glob (fnmatch(3)) that file names must match (include) or must not
 * match (exclude). A glob without '/' is matched against the file's name; one
 * with '/' against the path relative to its root, where '*' also matches '/'.
 * With includes set, a file must match one. Excludes win. Directories are
 * always followed. The glob is copied. */
int ferry_watch_include(struct ferry_watch *w, const char *glob);
int ferry_watch_exclude(struct ferry_watch *w, const char *glob);

/* Starts watching a directory (and its subdirectories with
 * FERRY_WATCH_RECURSIVE). The path is copied; event paths start with it.
 * Returns -ENOTDIR, -ENOENT, -EACCES, -ENOSPC (watch limit: see
 * ferry_watch_explain()), -EEXIST (already watched), ... */
int ferry_watch_add(struct ferry_watch *w, const char *path);

/* Starts watching one file, which need not exist yet: its directory is
 * watched, and only events about this name are handed out. */
int ferry_watch_add_file(struct ferry_watch *w, const char *path);

/* Hands out the next event. timeout_ms < 0 waits for ever, 0 does not wait.
 * Returns 1 and sets *ret_event (borrowed until the next call), 0 on timeout,
 * or -errno. */
int ferry_watch_next(struct ferry_watch *w, const struct ferry_event **ret_event, int timeout_ms);

/* A file descriptor that becomes readable when ferry_watch_next() has work to
 * do, for the caller's own poll loop. Borrowed: owned by the watcher. After it
 * polls readable, call ferry_watch_next() with timeout 0 until it returns 0. */
int ferry_watch_fd(struct ferry_watch *w);

/* Number of kernel watches the watcher holds now. */
size_t ferry_watch_count(struct ferry_watch *w);

/* Writes a one-line explanation of a failure returned by this watcher (from
 * ferry_watch_add*() or an ERROR event): the path, the reason and the fix,
 * such as the sysctl to raise when watches run out. */
int ferry_watch_explain(struct ferry_watch *w, int error, const char *path, char *buf, size_t size);

/* Returns the name of one event type ("create", "ready", ...), or NULL. */
const char *ferry_event_type_name(unsigned type);

/* Parses an event type name; returns the FERRY_EVENT_* value or -EINVAL. */
int ferry_event_type_parse(const char *name);

/* Parses a duration such as "250ms", "1.5s", "2m", "1h" or "3" (seconds) into
 * nanoseconds. Returns -EINVAL on bad text, -ERANGE when too large. */
int ferry_duration_parse(const char *text, int64_t *ret_ns);

/* Bytes (a file name) as a JSON string to out, as ferry writes them in JSON
 * events, logs and its audit trail: valid UTF-8 as it is (control
 * characters escaped), any other byte as U+FFFD. */
void ferry_json_string(FILE *out, const char *s, size_t n);
/* ,"key":"value" to out and, when value is not valid UTF-8, also
 * ,"key_base64":"its exact bytes", so that no name is lost. */
void ferry_json_field(FILE *out, const char *key, const char *s, size_t n);
/* ,"key":["word",...] to out for a NULL-terminated array of words (a
 * command line) and, when a word is not valid UTF-8, also
 * ,"key_base64":[every word's exact bytes, in the same order]. */
void ferry_json_words(FILE *out, const char *key, char *const *words);

/* ---- Delivery ------------------------------------------------------------ */

/* Progress of ferry_put(): done of total bytes copied so far. Returns 0 to
 * go on; anything else stops the copy (ferry_put() returns -ECANCELED). */
typedef int (*ferry_progress_cb)(void *userdata, const char *source, uint64_t done, uint64_t total);

/* Copies the regular file source to target (a path whose folder exists)
 * atomically for anyone watching: under a temporary name ".ferry-put.*" in
 * target's folder, synced, renamed into place, folder synced. With marker
 * (a suffix such as ".done"), then writes target+marker the same way, holding
 * the size and SHA-256 of the data, which the done-file policy verifies.
 * progress may be NULL. Returns 0 or -errno (-ECANCELED when progress
 * stopped it); no temporary file is left. A
 * failure before the rename leaves target untouched; one after it (syncing
 * the folder, the marker) leaves target complete but maybe unmarked. */
int ferry_put(const char *source, const char *target, const char *marker, ferry_progress_cb progress, void *userdata);

/* ---- Rules and the runner: the folder is the queue ------------------------
 *
 * A rule says which files of a folder go to which program. A runner follows
 * its rules' folders, claims each ready file by renaming it into the rule's
 * work area (DIR/.ferry/work/WORKER/), runs the handler without a shell, and
 * moves the file to the done or failed folder. Any number of runners, on any
 * number of machines sharing the folder, can compete: a rename succeeds for
 * one of them only. See ferry-run(1).
 */

struct ferry_rule;
struct ferry_runner;

/* Creates a rule named name (letters, digits, '-', '_', '.') for folder dir.
 * Both strings are copied. */
int ferry_rule_new(struct ferry_rule **ret_rule, const char *name, const char *dir);
void ferry_rule_free(struct ferry_rule *rule);

/* Sets one option from its text form; the same keys as the config file:
 *   command PROGRAM ARG... (split into words as the config file's command
 *   is, then as ferry_rule_set_command),
 *   match GLOB (repeatable), exclude GLOB (repeatable), recursive BOOL,
 *   ready POLICY, jobs N, timeout DURATION, kill-after DURATION, retries N,
 *   retry-delay DURATION, on-success done|delete|keep, done DIR, failed DIR,
 *   output DIR, stdin BOOL, batch N, lease DURATION, user NAME, symlinks BOOL,
 *   backend auto|inotify|poll, poll-interval DURATION, max-folders N, max-queue N,
 *   require-file NAME, on-folder-lost wait|exit,
 *   on-done PROGRAM ARG..., on-failure PROGRAM ARG... (hooks, run for each
 *   file once it reached the done or failed folder; split as command is;
 *   the handler's placeholders, of the path where the file was found, and
 *   {dest}, {note}).
 * Returns -EINVAL (bad value), -ENOENT (unknown key), -ENOMEM.
 * ferry_rule_explain() says why. */
int ferry_rule_set(struct ferry_rule *rule, const char *key, const char *value);

/* The handler: argv[0] and its arguments, copied. Placeholders {} {path}
 * {name} {dir} {stem} {ext} expand to one argument each, wherever they stand
 * in an argument; {paths} (batch mode) to one argument per file. */
int ferry_rule_set_command(struct ferry_rule *rule, char *const *argv);

/* Checks the rule as a whole (a command is set, its placeholders exist, the
 * options fit together); -EINVAL and an explanation otherwise. */
int ferry_rule_check(struct ferry_rule *rule);

/* ferry_rule_check() and what needs the system to tell, for a check before
 * a service starts: the handler and the hooks' programs exist and can be
 * run (-ENOENT), the folder can hold ferry's work folder .ferry (-EROFS,
 * -EACCES), and a .ferry already there is one ferry trusts (-EPERM, -ELOOP,
 * -ENOTDIR). Touches nothing. */
int ferry_rule_check_system(struct ferry_rule *rule);

/* The rule's name and folder; borrowed from the rule. */
const char *ferry_rule_name(const struct ferry_rule *rule);
const char *ferry_rule_dir(const struct ferry_rule *rule);
/* A program the rule runs, as its words (NULL-terminated, placeholders such
 * as {} unexpanded; borrowed until the rule changes): which is "command" (the
 * handler), "on-done" or "on-failure". NULL when there is none. */
char *const *ferry_rule_program(const struct ferry_rule *rule, const char *which);

/* One line saying what was wrong with the last failing ferry_rule_set*() or
 * ferry_runner_add_rule() call on this rule. */
const char *ferry_rule_explain(const struct ferry_rule *rule);

/* What the runner reports. Strings are borrowed for the callback's duration. */
enum ferry_log_kind {
        FERRY_LOG_INFO,     /* start-up, backend and policy in use, stop */
        FERRY_LOG_CLAIMED,  /* a ready file was claimed */
        FERRY_LOG_STARTED,  /* its handler started (pid) */
        FERRY_LOG_DONE,     /* the handler succeeded; the file went to its done place */
        FERRY_LOG_RETRY,    /* the handler failed; another attempt follows */
        FERRY_LOG_FAILED,   /* the handler failed for good; the file went to the failed folder */
        FERRY_LOG_RETURNED, /* a claim went back to the queue (stop, or recovered from a dead worker) */
        FERRY_LOG_WARNING,  /* something the admin should see; no file was lost */
        FERRY_LOG_ERROR,    /* something failed; see message */
};

struct ferry_log_record {
        enum ferry_log_kind kind;
        const char *rule; /* NULL for runner-wide records */
        const char *path; /* the file's original path, or NULL */
        size_t path_len;
        const char *message; /* one line, human-readable */
        int64_t duration_ns; /* DONE, RETRY, FAILED: how long the handler ran; else -1 */
        int pid;             /* STARTED, DONE, RETRY, FAILED: the handler's pid; else 0 */
        int attempt;         /* 1 for the first run */
        int exit_code;       /* DONE, RETRY, FAILED: exit status, -1 when killed */
        int signal;          /* ... the signal that killed it, or 0 */
        int64_t size;        /* records about a claimed file: its size when claimed; else -1 */
        const char
                *sha256; /* ... its content's SHA-256 in hex, when known (dedup, or its verified marker); else NULL */
        const char *duplicate_of; /* DONE without a run (dedup): the file handled before with that content, relative to
                                   * the rule's folder; else NULL */
};

typedef void (*ferry_log_cb)(void *userdata, const struct ferry_log_record *record);

int ferry_runner_new(struct ferry_runner **ret_runner);
/* NULL-safe; handlers still running are killed, their claims returned. */
void ferry_runner_free(struct ferry_runner *runner);
/* Takes ownership of rule, also on failure. Before ferry_runner_start(). */
int ferry_runner_add_rule(struct ferry_runner *runner, struct ferry_rule *rule);
void ferry_runner_set_log(struct ferry_runner *runner, ferry_log_cb callback, void *userdata);
/* Checks every rule, creates work areas, recovers claims of dead workers, and
 * starts watching; files already present are queued. -errno on failure, with
 * a FERRY_LOG_ERROR record saying why. */
int ferry_runner_start(struct ferry_runner *runner);
/* Readable when ferry_runner_dispatch() has work; for the caller's poll loop. */
int ferry_runner_fd(struct ferry_runner *runner);
/* Does the work that is due, waiting at most timeout_ms (< 0: until there is
 * some). Returns 1 while running, 0 once stopped and drained, -errno.
 * A rule's folder that goes away (deleted, moved, replaced, unmounted, its
 * require-file gone) is said once in the log and looked for again until it is
 * back; with on-folder-lost = exit, -ENODEV instead: the caller stops the
 * runner (ferry_runner_stop) and drains it. */
int ferry_runner_dispatch(struct ferry_runner *runner, int timeout_ms);
/* Counters of a runner since it started, over all its rules. */
#define FERRY_DURATION_BUCKETS 10
struct ferry_runner_stats {
        uint64_t ready;          /* files reported ready by the watchers */
        uint64_t claimed;        /* claims made (adopted ones included) */
        uint64_t done;           /* files handled successfully */
        uint64_t failed;         /* files that failed for good */
        uint64_t retried;        /* handler runs that failed and will run again */
        uint64_t returned;       /* claims given back to the queue */
        uint64_t rescans;        /* kernel queue overflows recovered by rescanning */
        uint64_t errors;         /* ERROR events and failures to claim or move */
        uint64_t queued;         /* now: ready files waiting for a handler slot */
        uint64_t running;        /* now: handlers running */
        uint64_t waiting;        /* now: claims waiting for a retry */
        uint64_t watches;        /* now: kernel watches held */
        uint64_t found_at_start; /* files present when the runner started */
        /* Handler run times: runs that took at most FERRY_DURATION_BOUNDS[i]
         * seconds, cumulative as Prometheus histograms count, and their sum. */
        uint64_t duration_count[FERRY_DURATION_BUCKETS];
        uint64_t duration_runs;
        double duration_sum;
        uint64_t folders_lost; /* now: rules whose folder went away, looked for until it is back */
        uint64_t rules_paused; /* now: rules paused (ferry_rule_pause): no handler starts */
        uint64_t purged;       /* files removed from done and failed folders by retention */
        uint64_t duplicates; /* files sent to done unhandled, their content handled within dedup-window (in done too) */
};
/* Upper bounds (seconds) of the duration buckets; the last one is +Inf. */
extern const double FERRY_DURATION_BOUNDS[FERRY_DURATION_BUCKETS];

/* Fills *ret_stats. */
int ferry_runner_stats(struct ferry_runner *runner, struct ferry_runner_stats *ret_stats);

/* ---- Inspection: a rule's folder as it is, ferry running or not ---------- */

struct ferry_rule_status {
        uint64_t queued;    /* files in the folder the rule would take, not claimed yet */
        uint64_t in_flight; /* claims whose handler runs now */
        uint64_t waiting;   /* claims of live workers with no handler running: retries pending */
        uint64_t orphaned;  /* claims of dead workers: the next worker takes them over */
        uint64_t done;      /* in the done folder, or recorded as done (keep) */
        uint64_t failed;    /* in the failed folder, or recorded as failed (keep) */
        char backend[256];  /* how the folder is watched, and why */
};

struct ferry_claim_info {
        const char *path;   /* where the file came from */
        const char *worker; /* RULE@HOST.PID.START */
        int pid;            /* its running handler, 0 when none runs */
        int64_t since;      /* CLOCK_REALTIME ns: claimed, or its handler started */
        int worker_alive;   /* 0: the worker died; its claims wait to be taken over */
        int handled;        /* 1: handled; its move to the done or failed folder waits (refused so far) */
};

struct ferry_failure_info {
        const char *path;   /* the file in the failed folder */
        const char *reason; /* from its note: exit status, signal, timeout, ... */
        int64_t when;       /* unix time of the failure, 0 when unknown */
};

typedef void (*ferry_claim_cb)(void *userdata, const struct ferry_claim_info *claim);
typedef void (*ferry_failure_cb)(void *userdata, const struct ferry_failure_info *failure);

/* Reads the rule's folder, work area, done and failed folders (and, for
 * keep, its record): counts into *ret_status; calls on_claim for each claim
 * and on_failure for each failed file (either may be NULL). */
int ferry_rule_status(struct ferry_rule *rule, struct ferry_rule_status *ret_status, ferry_claim_cb on_claim,
                      ferry_failure_cb on_failure, void *userdata);

/* ferry_rule_retry: select says, for each failed file of the rule, whether
 * to put it back (1) into its folder at back_to (a free name: the one it had,
 * or STEM.N.EXT when that is taken); done says what became of each selected
 * one: error 0 (put back, or in a dry run would be) or -errno. */
typedef int (*ferry_retry_select_cb)(void *userdata, const struct ferry_failure_info *failure, const char *back_to);
typedef void (*ferry_retry_done_cb)(void *userdata, const struct ferry_failure_info *failure, const char *back_to,
                                    int error);
/* Puts failed files of rule back into its folder, by rename, never
 * replacing a file; their notes go to FAILED/.requeued/. Works whether
 * workers run or not, from any host sharing the folder. Returns how many
 * were put back, or -errno (ferry_rule_explain says why). */
int ferry_rule_retry(struct ferry_rule *rule, ferry_retry_select_cb select, ferry_retry_done_cb done, int dry_run,
                     void *userdata);

/* ferry_rule_purge: callback(userdata, path, whole_folder, when) for each
 * file removed (or, in a dry run, that would be), or each dated folder of
 * done-layout removed whole (whole_folder 1), or each day of the audit trail
 * (whole_folder 2); when (unix seconds): the time the file arrived, or when
 * the dated folder's period or the trail's day ended. */
typedef void (*ferry_purge_cb)(void *userdata, const char *path, int whole_folder, int64_t when);
/* Removes from rule's done and failed folders what arrived there longer ago
 * than its done-retention and failed-retention (a folder without one is left
 * alone), and its folder's audit trail days older than its audit-retention:
 * the sweep a running worker makes now and then. Returns how many
 * files were removed (would be, with dry_run), or -errno (ferry_rule_explain
 * says why). */
int ferry_rule_purge(struct ferry_rule *rule, int dry_run, ferry_purge_cb callback, void *userdata);

/* ferry_rule_history: callback(userdata, line, len) for each line of the
 * audit trail about the file: one JSON object, not NUL-terminated, without
 * its newline. */
typedef void (*ferry_history_cb)(void *userdata, const char *line, size_t len);
/* What happened to a file of rule, from the audit trail its workers keep in
 * DIR/.ferry/audit (one JSON line per claim, start, outcome, requeue and
 * purge, from every host): the lines about path (relative to DIR), or with
 * by_name about any file whose name (last part) is path. In no order: each
 * line begins with its time, so sorting them puts them in order. Returns
 * how many, or -errno (ferry_rule_explain says why). */
int ferry_rule_history(struct ferry_rule *rule, const char *path, int by_name, ferry_history_cb callback,
                       void *userdata);

/* Pauses (paused 1) or resumes (0) rule on every host that shares its
 * folder: a flag in DIR/.ferry that each worker of the rule looks for once a
 * second; while it is there no handler starts (nor a claim is handed out by
 * a queue), and the handlers running finish. 0, or -errno (ferry_rule_explain
 * says why). */
int ferry_rule_pause(struct ferry_rule *rule, int paused);
/* 1 when rule is paused (since *ret_since, CLOCK_REALTIME ns, when not NULL),
 * 0 when not, or -errno. */
int ferry_rule_paused(struct ferry_rule *rule, int64_t *ret_since);

/* What rule adds to its handlers' environment, for a display: callback(userdata,
 * name, value, secret) for each variable its env files and env settings set
 * (the last of a name winning), secret 1 when the name holds KEY, TOKEN,
 * SECRET or PASSWORD (show it without its value); then callback(userdata,
 * glob, NULL, 0) for each pass-env glob (what it passes depends on the
 * environment of the process that runs the rule). 0, or -errno when an env
 * file cannot be read (ferry_rule_explain says why). */
typedef void (*ferry_env_cb)(void *userdata, const char *name, const char *value, int secret);
int ferry_rule_env(struct ferry_rule *rule, ferry_env_cb callback, void *userdata);

/* Why path was, or was not, handled under rule, as lines of text in buf:
 * outside the folder, a temporary or hidden name, a glob, a symlink, a
 * writer still open, waiting for a marker or mismatching it, claimed by
 * which worker since when, done, failed and why. */
int ferry_rule_explain_path(struct ferry_rule *rule, const char *path, char *buf, size_t size);

/* Calls callback for each rule of the runner (before or after start); stops
 * at the first non-zero return, which it returns. */
int ferry_runner_each_rule(struct ferry_runner *runner, int (*callback)(void *userdata, struct ferry_rule *rule),
                           void *userdata);

/* 1 when the folder of the runner's rule of this name is taken up, 0 while
 * it is gone and looked for (deleted, moved, unmounted); -ENOENT: no such
 * rule. */
int ferry_runner_rule_up(struct ferry_runner *runner, const char *name);
/* 1 while the rule named name is paused (ferry_rule_pause), 0 when not, -ENOENT for no such rule. */
int ferry_runner_rule_paused(struct ferry_runner *runner, const char *name);

/* Stops claiming; handlers get grace_ns to finish, then SIGTERM, then
 * SIGKILL; unfinished claims return to the queue. No hook starts any more:
 * running ones end or time out, waiting ones are dropped (and counted in a
 * warning). Dispatch until it returns 0. */
void ferry_runner_stop(struct ferry_runner *runner, int64_t grace_ns);

/* ---- the folder as a queue, for programs that handle files themselves ------
 *
 * A queue is ferry_runner's work without the handlers: it watches the rule's
 * folder, claims each complete file exactly once across processes and hosts
 * (rename claims, leases, the claims of dead workers taken over), and hands
 * the claims to the caller, who says how each went: done (to the done
 * folder), failed with a reason (retried as the rule says, then to the failed
 * folder with a note), or given back to the queue. Single-threaded, like the
 * rest: one thread calls a queue's functions. */
struct ferry_queue;
struct ferry_claim;

/* Opens a queue on the rule's folder; takes the rule, also on failure. The
 * rule has no handler command (nor stdin, output, batch or user); its jobs
 * are how many claims are taken ahead of the caller (default: 1 here).
 * log (may be NULL) receives what ferry run would log. */
int ferry_queue_open(struct ferry_queue **ret_queue, struct ferry_rule *rule, ferry_log_cb log, void *userdata);
/* Readable when ferry_queue_take() may have something; for the caller's poll loop. */
int ferry_queue_fd(struct ferry_queue *queue);
/* The next claim: waits up to timeout_ms (-1: no limit, 0: not at all).
 * 0 and *ret_claim; -ETIMEDOUT when none came in time; -ENODEV when the
 * folder went away and the rule says on-folder-lost = exit; -errno. Also
 * renews the leases: call it, or ferry_queue_renew(), at least every lease/3. */
int ferry_queue_take(struct ferry_queue *queue, int timeout_ms, struct ferry_claim **ret_claim);
/* Where the claimed file is now (read it there), and where it was found. */
const char *ferry_claim_path(const struct ferry_claim *claim);
const char *ferry_claim_original_path(const struct ferry_claim *claim);
/* How it went; each frees the claim. done: to the done folder (or deleted,
 * or recorded, as the rule says); fail: retried while the rule's retries
 * last (taken again later), then to the failed folder with reason in its
 * note; release: back to the queue, untouched, for any worker to take. */
int ferry_claim_done(struct ferry_claim *claim);
int ferry_claim_fail(struct ferry_claim *claim, const char *reason);
int ferry_claim_release(struct ferry_claim *claim);
/* Renews the leases and does what is due without waiting (a caller busy
 * with a long claim calls it at least every lease/3). 0 or -errno. */
int ferry_queue_renew(struct ferry_queue *queue);
/* Gives back the claims still held (their handles end) and closes. */
void ferry_queue_close(struct ferry_queue *queue);

/* ---- publishing to NATS ------------------------------------------------------
 *
 * A publisher sends messages (ferry watch --publish: each event's JSON) to
 * one subject of a NATS server. Where a JetStream stream takes the subject,
 * each message is stored there and acknowledged, with a Nats-Msg-Id unique
 * to the message, so that a message sent again after a lost acknowledgement
 * is stored once; elsewhere it goes out on core NATS, to the subscribers
 * connected at the time (asked again every 10 s whether a stream takes it).
 * The connection comes back by itself after the server went away. */
struct ferry_nats_options {
        const char *url;   /* nats://HOST:PORT or tls://HOST:PORT, several comma-separated */
        const char *creds; /* a NATS .creds file (user JWT and NKey seed), or NULL */
        const char *ca;    /* CA certificates (PEM) that the server's TLS certificate is checked against, or NULL */
};
struct ferry_publisher;

/* Connects; on failure why says in one line what went wrong and what to do:
 * -EINVAL (a subject or URL that cannot be used), -ECONNREFUSED (no server
 * answered), -ENOMEM. */
int ferry_publisher_new(struct ferry_publisher **ret, const struct ferry_nats_options *options, const char *subject,
                        char *why, size_t size);
/* Sends one message, waiting up to wait_ns for a stream's acknowledgement:
 * 0 when it was taken; -EAGAIN with why when not (the server unreachable,
 * no acknowledgement in time): send the same message again later, it keeps
 * its Nats-Msg-Id until it is taken. */
int ferry_publisher_send(struct ferry_publisher *p, const void *data, size_t len, int64_t wait_ns, char *why,
                         size_t size);
/* 1 when the last message taken went into a JetStream stream, 0 when to core NATS. */
int ferry_publisher_stored(const struct ferry_publisher *p);
/* Sends what the client still holds (up to 2 s), closes, frees. */
void ferry_publisher_free(struct ferry_publisher *p);

#ifdef __cplusplus
}
#endif

#endif
