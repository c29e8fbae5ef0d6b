/* runner.h: what runner.c (the loop, the rules, stopping), job.c (one
 * handler run, from start to its outcome) and hook.c (the hooks run after
 * an outcome) share. Private to those three. */
#ifndef FERRY_RUNNER_H
#define FERRY_RUNNER_H

#include "run.h"

#include <stdarg.h>
#include <sys/types.h>

enum source_kind {
        SOURCE_WATCH,
        SOURCE_PIDFD,
        SOURCE_STDERR,
        SOURCE_TIMER,
        SOURCE_HOOK_PIDFD,
        SOURCE_HOOK_STDERR,
        SOURCE_HASHER
};

struct source {
        enum source_kind kind;
        void *owner;
};

/* A file found ready and not claimed yet (pending.c). */
struct pending {
        struct pending *next;
        int64_t found_at; /* CLOCK_REALTIME ns: when it was found ready (max-age) */
        uint64_t seq;     /* the order it became ready in */
        int64_t key;      /* order = mtime or size: that */
        unsigned rank;    /* the first priority glob it matches; priority_count: none */
        bool said;        /* a claim of it failed, and the log said so: not again */
        char path[];
};

/* The files a rule found ready and has not claimed yet: a list in the order
 * they became ready, or, when the rule asks for an order or priorities, a heap. */
struct pending_queue {
        struct pending *head, *tail; /* the list */
        struct pending **heap;       /* or the heap */
        size_t count, capacity;
        uint64_t seq;
        bool heaped;
        int order; /* FERRY__ORDER_* */
        bool descending;
        char **priority; /* the rule's */
        size_t priority_count;
};

void ferry__pending_init(struct pending_queue *q, const struct ferry_rule *rule);
/* A new entry for path (len bytes; size: -1 when unknown), keyed for q; NULL: out of memory. */
struct pending *ferry__pending_new(struct pending_queue *q, const char *path, size_t len, int64_t size);
/* Queues p (new, or back from a failed claim); false: out of memory (p is not queued). */
bool ferry__pending_append(struct pending_queue *q, struct pending *p);
struct pending *ferry__pending_pop(struct pending_queue *q);
/* After a lost race: skips a random stretch ahead (the default order only). */
void ferry__pending_skip(struct pending_queue *q, uint64_t random);
/* Frees every entry. */
void ferry__pending_clear(struct pending_queue *q);

struct rule_state;
struct late_note;
struct unfinished;
struct hook;

struct job {
        struct job *prev, *next;
        struct rule_state *rs;
        struct ferry__claim **claims;
        size_t count;
        unsigned attempt; /* runs started so far */
        bool running;
        bool timed_out;
        bool stopped; /* killed because the runner stops: not a failure */
        pid_t pid;    /* the last handler's, for the records after it was reaped */
        struct ferry__child child;
        struct source pid_source, err_source;
        int64_t started;
        int64_t retry_at; /* waiting: when to start; 0: at once */
        int64_t term_at;  /* running: when --timeout sends SIGTERM; 0: never */
        int64_t kill_at;  /* running: when SIGKILL follows; 0: not yet */
        int output_fd;
        char *output_temp;
        bool judged;  /* dedup: its content was looked for in the record (once: not again for a retry) */
        bool judging; /* dedup: being looked for (duplicate.c): hashed, or waiting for a twin's outcome; holds a slot */
        bool hashing; /* judging: its hash is being read off the loop */
        bool twin_wait; /* judging: a job of the rule with the same content is out: its outcome is waited for */
        bool rejudge;   /* twin_wait: that job ended: looked for again */
        bool handed;    /* a queue's: with its caller, or waiting to be taken */
        struct ferry_claim *taken; /* a queue's: the caller's handle, once taken */
};

struct rule_state {
        struct rule_state *next;
        struct ferry_runner *runner;
        struct ferry_rule *rule;
        struct ferry_watch *watch;
        struct source watch_source;
        struct ferry__workarea wa;  /* work_fd -1 when files stay in place */
        struct ferry__store *store; /* on-success = keep */
        int share_fd;               /* otherwise: .ferry/keep.lock, held shared; -1 until then */
        struct ferry__folder done;  /* fd -1: delete (or keep) on success */
        struct ferry__audit audit;  /* dir_fd -1: none (audit = off) */
        struct ferry__folder failed;
        char *output_dir; /* output folder, absolute (its descriptor is wa.output_fd); NULL: none */
        struct pending_queue pending;
        struct pending *blocked; /* files whose claim failed for a reason that may pass: tried each second */
        unsigned restored_seen;  /* wa.restored already logged */
        unsigned running;
        bool down;                  /* the folder went away: no watch; looked for again at retry_at */
        bool paused;                /* flag_paused or space_low: no handler starts */
        bool flag_paused;           /* its pause flag is there (pause.c) */
        bool space_low;             /* pause-when-free-below: an outcome folder's file system is short of space */
        double tokens;              /* rate: handler starts allowed now (a token bucket of rule->rate a second) */
        int64_t tokens_at;          /* when tokens was last filled up */
        int64_t rate_wait;          /* rate: when the next token comes, while one is waited for; 0: none */
        int64_t retry_at, retry_ns; /* the next look, and the wait after it (doubles up to a maximum) */
        int64_t next_sweep;         /* retention: when done and failed are swept next (0: at start) */
        struct ferry__dedup *dedup; /* dedup = sha256: the folder's record of contents handled (dedup.c) */
        int64_t next_prune;         /* when rows older than dedup-window leave this host's record next */
        char why[512];              /* why the folder cannot be taken up, as last said */
        char **env;                 /* the handlers' environment but FERRY_* (env.c); NULL for a queue */
        size_t env_count;
        struct late_note *late_notes;         /* failure notes not written yet (job.c) */
        struct unfinished *unfinished;        /* handled files not moved out yet (job.c) */
        struct hook *hooks_head, *hooks_tail; /* hooks waiting for a slot, oldest first (hook.c) */
        unsigned hooks_waiting, hooks_running;
};

struct ferry_runner {
        struct ferry_rule *rules; /* until started */
        struct rule_state *states;
        struct job *jobs;
        int epoll_fd, timer_fd;
        struct source timer_source;
        bool timer_armed; /* timer_fd is set to timer_deadline (INT64_MAX: disarmed) */
        int64_t timer_deadline;
        char children_path[64]; /* /proc/self/task/PID/children: where orphans are found */
        ferry_log_cb log;
        void *log_data;
        bool started, stopping;
        int64_t stop_at; /* stopping: when running handlers get SIGTERM */
        int64_t next_heartbeat;
        int64_t next_recover;
        int64_t next_folder_check;       /* every rule's folder: still there? a lost one back? */
        bool folder_lost;                /* a rule with on-folder-lost = exit lost its folder: dispatch says so */
        struct ferry__keeper keeper;     /* kills handlers' groups if we die */
        mode_t umask;                    /* for output files, which mkostemp makes 0600 */
        uint64_t random;                 /* xorshift state: where to skip to after a lost race */
        struct ferry_runner_stats stats; /* the counters; the "now" fields are filled when asked */
        int64_t warnings_since;          /* start of the second warnings are counted in */
        unsigned warnings_logged;        /* warnings logged in it */
        unsigned long long warnings_suppressed; /* warnings left out since, to be said in one line */
        bool limit_next;                        /* the next record is rate-limited as a warning is */
        bool external;                          /* a queue (queue.c): jobs are handed to the caller, not spawned */
        unsigned handed;                        /* jobs handed out and not taken yet */
        struct hook *hooks;                     /* running hooks (hook.c) */
        struct ferry__hasher *hasher;           /* dedup: claimed files hashed off the loop; NULL until the first */
        struct source hasher_source;
        bool rejudge;                     /* a job waits to be looked for again (duplicate.c) */
        unsigned long long hooks_dropped; /* hooks a stop kept from starting, not said yet */
};

/* Logging and counting are apart: ferry__runner_log says something (rate-
 * limited when it is a warning), ferry__runner_count counts an outcome
 * (claimed, done, failed, retry, returned, error) for ferry_runner_stats, and
 * ferry__runner_record does both, for what became of a file. */
void ferry__runner_log(struct ferry_runner *r, struct ferry_log_record *rec, const char *format, ...)
        __attribute__((format(printf, 3, 4)));
void ferry__runner_count(struct ferry_runner *r, enum ferry_log_kind outcome);
void ferry__runner_record(struct ferry_runner *r, struct ferry_log_record *rec, const char *format, ...)
        __attribute__((format(printf, 3, 4)));
#define LOG(r, kind_, rule_, path_, ...)                                                                             \
        ferry__runner_log((r),                                                                                       \
                          &(struct ferry_log_record){                                                                \
                                  .kind = (kind_), .rule = (rule_), .path = (path_), .duration_ns = -1, .size = -1}, \
                          __VA_ARGS__)
#define RECORD(r, kind_, rule_, path_, ...)                                \
        ferry__runner_record((r),                                          \
                             &(struct ferry_log_record){.kind = (kind_),   \
                                                        .rule = (rule_),   \
                                                        .path = (path_),   \
                                                        .duration_ns = -1, \
                                                        .size = -1},       \
                             __VA_ARGS__)
/* What became of claim c, its size and hash with it. */
#define RECORD_CLAIM(r, kind_, rule_, c_, ...) \
        ferry__runner_record((r), (struct ferry_log_record[]){ferry__claim_record((kind_), (rule_), (c_))}, __VA_ARGS__)
/* A record about claim c: its path, size and hash. */
struct ferry_log_record ferry__claim_record(enum ferry_log_kind kind, const char *rule, const struct ferry__claim *c);

int ferry__runner_epoll_add(struct ferry_runner *r, int fd, struct source *source);
void ferry__runner_epoll_del(struct ferry_runner *r, int fd);

/* ferry__claim_finish and ferry__claim_return, saying what the handler left
 * beside the file in its claim folder (moved out with it, or to failed). */
int ferry__job_claim_finish(struct rule_state *rs, struct ferry__claim *c, const struct ferry__folder *to,
                            char **ret_relative);
int ferry__job_claim_return(struct rule_state *rs, struct ferry__claim *c);
/* job.c */
struct job *ferry__job_new(struct rule_state *rs, struct ferry__claim **claims, size_t count);
void ferry__job_free(struct job *job);
/* Starts the job's handler; on failure to start, the job ends as a failed run. */
void ferry__job_start(struct job *job);
/* The handler ended (or never started): done, retry, failed, or back to the
 * queue when the runner stopped it. Frees the job unless it retries. */
void ferry__job_finish(struct job *job, const struct ferry__exit *st, const char *why);
/* Fails the job's files for good without running the handler (a limit they break: why). */
void ferry__job_refuse(struct job *job, const char *why);
/* The job's claims return to the queue (files kept in place stay): stopped
 * by the runner, or given back by a queue's caller. Frees the job. */
void ferry__job_return(struct job *job, bool stopped);
/* Its pidfd said the handler exited: reap it and finish the job. */
void ferry__job_exited(struct job *job);
/* Writes the failure notes that could not be written before; last: the rule
 * lets go of its failed folder, and what still cannot be is logged instead. */
void ferry__late_notes_write(struct rule_state *rs, bool last);
/* A claim adopted with its outcome noted (it was handled already): moved out
 * without running the handler again. Takes the claim. */
void ferry__job_adopt_handled(struct rule_state *rs, struct ferry__claim *c);
/* Moves out the handled files whose move failed before (their outcome folder
 * not writable, or full); last: the rule lets go of its folder, and what
 * still cannot be moved stays in the work area with its outcome noted. */
void ferry__unfinished_move(struct rule_state *rs, bool last);
/* Kills and reaps the runner's children that are neither running handlers,
 * running hooks nor the keeper: what handlers and hooks left behind. */
void ferry__kill_orphans(struct ferry_runner *r);

/* The job's content was handled within dedup-window (hit says as which file,
 * when): its file goes where a done file goes (done, or deleted), no handler
 * run, no hook. Frees the job. */
void ferry__job_duplicate(struct job *job, const struct ferry__dedup_hit *hit);

/* duplicate.c */
/* dedup: before its first run, a job's content is looked for in the record;
 * true when that takes the job over (it starts, or goes to done as a
 * duplicate, once known). Called by ferry__job_start. */
bool ferry__judge_begin(struct job *job);
/* The hasher's eventfd is readable: the hashes read are judged. */
void ferry__judge_collect(struct ferry_runner *r);
/* Jobs whose twin ended are judged again. */
void ferry__judge_again(struct ferry_runner *r);
/* The job ends (done, failed, returned): its hashing is dropped, its slot
 * freed if it held one, and the jobs waiting for it are judged again. */
void ferry__judge_end(struct job *job);
/* A job's files were handled: their contents go to the rule's record. */
void ferry__judge_record(struct job *job);
/* Rows older than dedup-window leave this host's record, now and then. */
void ferry__judge_prune(struct rule_state *rs, int64_t now);

/* hook.c */
/* A file logged as done (failed: false) or failed has reached its final
 * place: queues the rule's hook for it, when it has one. path: where it was
 * found; dest: where it is now (NULL: nowhere, deleted or gone); note: why it
 * failed (NULL for done). The strings are copied. */
void ferry__hook_queue(struct rule_state *rs, bool failed, const char *path, const char *dest, const char *note);
/* Starts the waiting hooks that have a slot, oldest first; drops them all
 * (counted) once the runner stops. */
void ferry__hooks_start(struct ferry_runner *r);
/* Its pidfd said the hook exited: reap it, say how it failed if it did. */
void ferry__hook_exited(struct hook *h);
/* Its stderr is readable (hangup: or hung up). */
void ferry__hook_stderr(struct hook *h, bool hangup);
/* Whether pid is a running hook's. */
bool ferry__hook_owns(const struct ferry_runner *r, pid_t pid);
/* Timeouts: SIGTERM, then SIGKILL after the rule's kill-after. */
void ferry__hooks_check_timers(struct ferry_runner *r, int64_t now);
/* The earlier of next and the hooks' next deadline (now, when one may start). */
int64_t ferry__hooks_deadline(const struct ferry_runner *r, int64_t next);
/* The runner is drained, or freed: drops what waits, kills what still runs
 * (nothing, when drained), and says how many hooks a stop kept from running. */
void ferry__hooks_stopped(struct ferry_runner *r);

#endif
