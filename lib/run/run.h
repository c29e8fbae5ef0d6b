/* run.h: the run layer's own header (lib/run): claims and work areas, the
 * record of files kept in place, the keeper, rules, and spawning handlers.
 */
#ifndef FERRY_RUN_H
#define FERRY_RUN_H

#include "common.h"
#include "filter.h"

/* ---- claim.c: the folder as the queue ------------------------------------- */

/* One worker's area in a rule's folder: DIR/.ferry/work/RULE@WORKER/. Every
 * descriptor was opened once, at start, and checked: renaming or replacing
 * a path later changes nothing that ferry touches. */
struct ferry__workarea {
        char *dir;         /* the rule's folder */
        char *worker;      /* RULE@HOST.PID.START */
        char *rule_prefix; /* RULE@ */
        char host[256];
        char machine[64]; /* /etc/machine-id, or "-" */
        char boot[64];    /* this boot's id */
        int root_fd;      /* DIR: files are found beneath it */
        int ferry_fd;     /* DIR/.ferry, ours */
        dev_t ferry_dev;  /* .ferry's identity: found under another name, it is still not work */
        ino_t ferry_ino;
        int base_fd;   /* DIR/.ferry/work, ours; -1 when files stay in place */
        int work_fd;   /* our work folder; -1 when files stay in place */
        int output_fd; /* the output folder, where a dead worker's partial output is removed; -1: none */
        /* Where what a handler left in a claim folder goes when its file went
         * elsewhere (deleted, returned): the failed folder; NULL: it stays. */
        const struct ferry__folder *leftovers;
        const char *marker_suffix; /* done-file NAME.SUFFIX markers (".done"): they leave with their file; or NULL */
        struct ferry__trust trust;
        uint64_t seq; /* last claim number */
        /* Claim folders emptied (their file left, their notes removed),
         * kept for the next claims: a mkdir and an rmdir a file cost more
         * than everything else a claim does on a journaling file system. */
        uint64_t *pool;
        size_t pool_count;
        size_t pool_max; /* 0: none kept (set by the runner from jobs and batch) */
        int64_t lease_ns;
        unsigned restored; /* times our work folder was found removed and made again */
        char **refused;    /* claim folders left alone, said once each */
        size_t refused_count;
};

/* The notes in a claim's folder (claim.c), as bits of ferry__claim.notes: a
 * folder is emptied by removing the notes it holds, not by trying them all. */
enum {
        FERRY__NOTE_ORIGIN = 1 << 0,
        FERRY__NOTE_HANDLER = 1 << 1,
        FERRY__NOTE_OUTCOME = 1 << 2,
        FERRY__NOTE_OUTPUT = 1 << 3,
        FERRY__NOTE_ALL = (1 << 4) - 1,
};

/* order = ...: which of the files waiting is claimed first (pending.c). */
enum { FERRY__ORDER_READY, FERRY__ORDER_NAME, FERRY__ORDER_MTIME, FERRY__ORDER_SIZE };

/* A claimed file. */
struct ferry__claim {
        uint64_t seq;
        char *name;                    /* its name */
        char *origin;                  /* its folder relative to DIR, NULL for DIR itself */
        char *claimed_path;            /* where it is now, in the work area */
        char *original_path;           /* where it was: DIR/[ORIGIN/]NAME */
        bool in_place;                 /* on-success = keep: not moved; claimed_path is original_path */
        unsigned notes;                /* FERRY__NOTE_*: the notes its folder may hold */
        char *outcome;                 /* adopted: "done\n" or "failed\nNOTE" when it was handled already, or NULL */
        mode_t type;                   /* S_IFREG, S_IFLNK, ...: what was claimed (0: unknown) */
        struct ferry__version version; /* in_place: the version being handled; a fresh claim: what was claimed */
        int64_t ready_at;              /* CLOCK_REALTIME ns: when it was found ready; 0: unknown (adopted) */
        bool hashed;                   /* sha256 holds its content's SHA-256 (dedup: read, or its marker's) */
        bool hash_from_marker;         /* ... taken from its done-marker */
        uint8_t sha256[FERRY__SHA256_SIZE];
        char sha256_hex[2 * FERRY__SHA256_SIZE + 1];
        unsigned leftovers; /* files its handler left beside it in its claim folder, moved out with it */
};

/* An outcome folder (done, failed), opened and checked once, at start. */
struct ferry__folder {
        char *path; /* for messages and the paths handed out */
        int fd;
        mode_t mode;        /* of the folders made in it */
        const char *layout; /* done-layout: files go to dated folders in it (retention.c); NULL: none */
};

/* Opens DIR and its .ferry, made or checked (ours, writable by nobody
 * else); on failure, wa->trust.why says why. */
int ferry__workarea_home(struct ferry__workarea *wa, const char *dir);
/* Keeps up to max emptied claim folders for the next claims (capped). */
int ferry__workarea_keep_folders(struct ferry__workarea *wa, size_t max);
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
/* Reads the claim's NAME.SUFFIX marker (wa->marker_suffix), beside where the
 * file was found, never through a link: 0 and *ret_claim and *ret_st, or -errno. */
int ferry__claim_marker(struct ferry__workarea *wa, const struct ferry__claim *c, struct ferry__marker_claim *ret_claim,
                        struct stat *ret_st);
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
int ferry__claim_note_outcome(struct ferry__workarea *wa, struct ferry__claim *c, const char *text);
/* Notes the pid of the claims' running handler (0: none runs), for ferry status. */
void ferry__claim_note_handler(struct ferry__workarea *wa, struct ferry__claim **claims, size_t count, pid_t pid);
/* Notes the name of the claim's handler output in the output folder (NULL:
 * no longer), so that a worker adopting the claim after a crash removes it. */
void ferry__claim_note_output(struct ferry__workarea *wa, struct ferry__claim *c, const char *name);
/* Makes a new private output file .ferry-out.XXXXXX in dir_fd; its name to ret_name. */
int ferry__output_create(int dir_fd, char *ret_name, size_t size);
/* Where a move can be cut in half (a hard link, then an unlink, where the
 * file system refuses RENAME_NOREPLACE), a worker that died in between left
 * its claim with a second name: in done or failed (moved), in DIR (returned),
 * or claimed again by another worker. When the claim's file is found there,
 * its name in the claim is removed with the claim: returns 1 and where it is
 * (caller frees). 0: the claim is the file's only place in ferry's hands. */
int ferry__claim_moved_already(struct ferry__workarea *wa, struct ferry__claim *c, const struct ferry__folder *done,
                               const struct ferry__folder *failed, char **ret_where);
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
        bool handled; /* its outcome is noted: only its move out waits */
};
typedef void (*ferry__claim_list_cb)(void *userdata, const struct ferry__claim_info *claim);
/* Calls callback for every claim of rule in dir's work area; returns how many, or -errno. */
int ferry__claims_list(const char *dir, const char *rule, ferry__claim_list_cb callback, void *userdata);
/* ---- store.c: what was handled, for files left in place ------------------ */

/* ---- db.c: SQLite through a held folder's descriptor ---------------------- */

struct sqlite3;
/* Opens (read_only: an existing; else makes) the database NAME in the folder
 * open as dir_fd, through the descriptor, never by the folder's path; its
 * journals go beside it the same way. dir_fd must stay open as long as the
 * database is. -ENOENT: none (read-only), -EINVAL, -EIO. */
int ferry__db_open(int dir_fd, const char *name, bool read_only, struct sqlite3 **ret_db);

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
int ferry__store_record(struct ferry__store *s, const char *path, const struct ferry__version *v, const char *outcome,
                        const char *reason);
/* ---- dedup.c: the record of contents handled (dedup = sha256) -------------- */

struct ferry__dedup;
/* A content found in the record: the file it was, and when it was handled. */
struct ferry__dedup_hit {
        char name[PATH_MAX]; /* relative to DIR */
        int64_t at;          /* CLOCK_REALTIME ns */
};
/* Opens DIR/.ferry/dedup (made, trusted) and this host's file in it (wa
 * after ferry__workarea_home); remote: a rollback journal instead of WAL. */
int ferry__dedup_open(struct ferry__workarea *wa, bool remote, struct ferry__dedup **ret_dedup);
/* Opens DIR/.ferry/dedup to look contents up only (ferry explain): every
 * host's file read-only, nothing made; -ENOENT when there is none yet. */
int ferry__dedup_open_readonly(const char *dir, struct ferry__dedup **ret_dedup);
void ferry__dedup_close(struct ferry__dedup *d);
/* 1 and *ret_hit when rule handled the content within since (CLOCK_REALTIME
 * ns) by any host's record; 0 when not, or when a record cannot be read:
 * then, once a run for each, warning says so (else it is ""). */
int ferry__dedup_find(struct ferry__dedup *d, const char *rule, const uint8_t sha256[FERRY__SHA256_SIZE], int64_t since,
                      struct ferry__dedup_hit *ret_hit, char *warning, size_t size);
/* Records that rule handled the content as name (relative to DIR) at at. */
int ferry__dedup_add(struct ferry__dedup *d, const char *rule, const uint8_t sha256[FERRY__SHA256_SIZE],
                     const char *name, int64_t size, int64_t at);
/* Removes the rule's rows of this host handled before before; how many, or -EIO. */
int ferry__dedup_prune(struct ferry__dedup *d, const char *rule, int64_t before);
/* SQLite's last word on this host's file. */
const char *ferry__dedup_error(const struct ferry__dedup *d);

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
        char **on_done, **on_failure; /* hooks (hook.c): program and arguments, NULL-terminated; NULL: none */
        size_t on_done_count, on_failure_count;
        char **env, **pass_env, **env_files; /* the handler's environment (env.c): NAME=VALUE, globs, files */
        size_t env_count, pass_env_count, env_file_count;
        bool recursive;
        bool use_stdin;
        bool follow_symlinks;        /* hand symlinks to the handler; default: skip them */
        char *ready;                 /* policy text, checked */
        struct ferry__policy policy; /* the same, parsed */
        unsigned jobs;               /* handlers at once */
        bool jobs_set;               /* jobs was given: a queue takes one claim ahead otherwise */
        unsigned retries;            /* attempts after the first */
        unsigned batch;              /* files per handler run; 1: no batching */
        double rate;                 /* handler starts a second at most (token bucket); 0: no limit */
        uint64_t min_size, max_size; /* bytes; a file outside goes to failed unhandled; 0: no limit */
        int order;                   /* FERRY__ORDER_*: which waiting file is claimed first */
        bool order_descending;
        char **priority; /* globs: files matching an earlier one are claimed first */
        size_t priority_count;
        int64_t max_age_ns;        /* a file older than this when found goes to failed unhandled; 0: none */
        char *done_layout;         /* done files go to dated folders (retention.c); NULL: none */
        bool audit_off;            /* audit = off: no audit trail in DIR/.ferry/audit */
        double free_below_percent; /* pause-when-free-below: no handler starts while an outcome */
        uint64_t free_below_bytes; /* file system has less free (percent of it, or bytes); 0: never */
        int64_t done_retention_ns, failed_retention_ns; /* what is older goes from those folders; 0: kept */
        int64_t audit_retention_ns;                     /* the audit trail's days older than this go; 0: kept */
        bool dedup;                                     /* dedup = sha256: a content handled already is not again */
        int64_t dedup_window_ns;                        /* ... when it was handled within this long */
        unsigned max_folders;                           /* folders the rule's watcher watches at most */
        unsigned max_queue;     /* files its watcher tracks at most (ferry_watch_set_max_files); 0: no cap */
        int64_t timeout_ns;     /* 0: none */
        int64_t kill_after_ns;  /* SIGTERM to SIGKILL */
        int64_t retry_delay_ns; /* first back-off; doubles per attempt */
        int64_t lease_ns;       /* a claim whose heartbeat is older is a dead worker's */
        enum ferry__on_success on_success;
        char *done_dir, *failed_dir, *output_dir; /* NULL: defaults */
        char *user;
        char *backend; /* NULL: auto */
        int64_t poll_interval_ns;
        char *require_file;  /* a name DIR must hold to count as there (a mount's marker); NULL: none */
        bool exit_when_lost; /* on-folder-lost = exit: the runner ends when DIR goes away */
        uid_t uid;
        gid_t gid;
        char explanation[512];
};

/* A watcher set up as the rule's (policy, backend, intervals, cap, globs,
 * its require-file left out), no folder added yet: ferry run watches with
 * it, ferry explain judges names with it, so that the two agree. */
int ferry__rule_watch_new(const struct ferry_rule *rule, unsigned flags, struct ferry_watch **ret_watch);
/* ferry_rule_check(), for a rule whose files a handler takes (handler) or
 * the caller of a queue (no command, stdin, output, batch or user then). */
int ferry__rule_check(struct ferry_rule *rule, bool handler);

/* ---- audit.c: the folder's audit trail, DIR/.ferry/audit/DAY.HOST.jsonl ---- */

struct ferry__audit {
        int dir_fd;     /* DIR/.ferry/audit, or -1: no trail */
        int fd;         /* the day's file, or -1 */
        char day[16];   /* its day, YYYY-MM-DD (UTC) */
        char host[256]; /* in its name and each line */
        pid_t pid;      /* ferry's, in each line */
        FILE *lines;    /* lines not written yet, gathered in buffer */
        char *buffer;
        size_t used;
        time_t second; /* the last line's second, as text in when */
        char when[32];
};
/* The host's name as a file name of the trail (and of the dedup record):
 * '/' and '.' made '_', at most 200 bytes. */
void ferry__audit_host_name(const char *host, char *buf, size_t size);
/* Makes or opens the trail's folder (wa after ferry__workarea_home). */
int ferry__audit_open(struct ferry__audit *a, struct ferry__workarea *wa);
/* One line: what became (event) of the file relative to DIR; rec (a log
 * record: pid, attempt, duration, exit status), message and at (when it
 * happened, CLOCK_REALTIME; NULL: now) may be NULL. */
void ferry__audit_add(struct ferry__audit *a, const char *event, const char *rule, const char *relative, size_t len,
                      const struct ferry_log_record *rec, const char *message, const struct timespec *at);
/* Writes the lines gathered, in whole lines. */
void ferry__audit_flush(struct ferry__audit *a);
void ferry__audit_close(struct ferry__audit *a);
/* Removes the days of wa's trail (every host's) that ended longer than
 * retention_ns ago (with dry_run, only tells them), each told to callback by
 * its path; adds them to *ret_removed. trail: the trail open for writing, or
 * NULL. Returns 0 or -errno (the first failure; the sweep goes on). */
int ferry__audit_sweep(const struct ferry__workarea *wa, const struct ferry__audit *trail, int64_t retention_ns,
                       bool dry_run, ferry_purge_cb callback, void *userdata, unsigned long long *ret_removed);

/* ---- retention.c: dated done folders, and what is old leaves ---- */

struct ferry__purge_counts {
        unsigned long long files, folders;
};
/* 0 when layout is a done-layout ferry can make and read back; else -EINVAL and why. */
int ferry__layout_check(const char *layout, char *why, size_t size);
/* The dated folders of layout at when (local time), e.g. "2026/12/04". */
int ferry__layout_format(const char *layout, time_t when, char *buf, size_t size);
/* Removes from folder what arrived longer than retention_ns ago (whole dated
 * folders of layout, else by change time), counted into counts; with
 * dry_run, only says it. callback (may be NULL) hears of each removal. */
int ferry__sweep(const struct ferry_rule *rule, const struct ferry__folder *folder, const char *layout,
                 int64_t retention_ns, bool dry_run, ferry_purge_cb callback, void *userdata,
                 struct ferry__audit *audit, struct ferry__purge_counts *counts);

/* ---- inspect.c ---- */

/* The value of "key: value" in a .ferry-error note's text, into value ("" when absent). */
void ferry__note_field(const char *text, const char *key, char *value, size_t size);

/* ---- pause.c: a rule paused on every host ---- */

/* Whether the rule's pause flag is in the folder's .ferry (wa after ferry__workarea_home). */
bool ferry__paused(const struct ferry__workarea *wa, const char *rule);

/* ---- env.c: the environment a rule's handlers start with ---- */

/* A name a rule may set: letters, digits and '_', not starting with a digit,
 * not FERRY_* (ferry's own). */
bool ferry__env_name_ok(const char *name, size_t len);
/* A name whose value is not shown (it holds KEY, TOKEN, SECRET or PASSWORD). */
bool ferry__env_secret(const char *name, size_t len);
/* Reads the rule's environment files: 0, or -errno with why in buf. */
int ferry__env_files_check(const struct ferry_rule *rule, char *buf, size_t size);
/* The rule's handler environment from environ (the basics kept, pass-env,
 * env files, env; later wins), without ferry's FERRY_* variables, into
 * *ret_env (NULL-terminated, *ret_count items; ferry__env_free). -errno with
 * why in buf. */
int ferry__env_build(const struct ferry_rule *rule, char ***ret_env, size_t *ret_count, char *buf, size_t size);
void ferry__env_free(char **env);
/* "NAME=VALUE", for ferry's own FERRY_* variables; caller frees; NULL: out of memory. */
char *ferry__env_pair(const char *name, const char *value);

/* ---- words.c ---- */

/* Splits a command line into words (quotes and backslash escapes, no
 * shell), as ferry.conf(5) says under "The command". Returns the word count
 * with *ret_words NULL-terminated (free with ferry__argv_free), or -EINVAL
 * with *ret_problem saying why, or -ENOMEM. */
int ferry__words_split(const char *text, char ***ret_words, const char **ret_problem);

/* ---- spawn.c ---- */

/* Values for the placeholders of a command template. Borrowed for the call. */
struct ferry__placeholders {
        const char *path;         /* {} and {path}: the file's path as the handler sees it; NULL in batch mode */
        const char *const *paths; /* {paths}: batch mode, NULL-terminated; NULL when not batching */
        const char *dest;         /* {dest}: a hook's: where the file is now, "" when nowhere; NULL: a handler */
        const char *note;         /* {note}: a hook's: why the file failed, "" when it did not; NULL: a handler */
};

/* Expands a command template into a new NULL-terminated argv (free with ferry__argv_free). Each template
 * argument becomes exactly one argument, placeholders filled in byte for byte, except a standalone {paths},
 * which becomes one argument per path; -EINVAL for an unknown or valueless placeholder, a lone brace, an
 * embedded {paths}, or an empty result. Placeholders: {} {path} {name} {dir} {stem} {ext} {paths}, and for
 * hooks {dest} {note}; "{{" and "}}" are literal braces. */
int ferry__argv_expand(char *const *template, const struct ferry__placeholders *values, char ***ret_argv);
/* Validates a template at configuration time, as ferry__argv_expand would for a single file (batch: false,
 * no {paths}) or a batch (true: only {paths}). Returns 0 or -EINVAL. */
int ferry__argv_check(char *const *template, bool batch);
/* The same for a hook's template: one file, {dest} and {note} too, no {paths}. */
int ferry__argv_check_hook(char *const *template);
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
