/* runner.c: the daemon behind `ferry run`: ready files become claims, claims
 * become handler runs, runs end in the done or failed folder.
 *
 * One loop, one wait point: an epoll set holds each rule's watcher fd, each
 * running handler's pidfd and stderr pipe, and a timerfd armed for the next
 * deadline (timeouts, kill-after, retries, heartbeats, recovery).
 *
 * A ready file is claimed only when a handler slot is free, so that workers
 * sharing a folder share its files instead of one hoarding a burst.
 *
 * Job states:
 *   waiting   claimed, not running: new, adopted from a dead worker, or
 *             backing off before a retry (retry_at)
 *   running   its handler runs (child valid)
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum source_kind { SOURCE_WATCH, SOURCE_PIDFD, SOURCE_STDERR, SOURCE_TIMER };

struct source {
        enum source_kind kind;
        void *owner;
};

struct pending {
        struct pending *next;
        char path[];
};

struct rule_state;

struct job {
        struct job *prev, *next;
        struct rule_state *rs;
        struct ferry__claim **claims;
        size_t count;
        unsigned attempt; /* runs started so far */
        bool running;
        bool timed_out;
        bool stopped;     /* killed because the runner stops: not a failure */
        pid_t pid;        /* the last handler's, for the records after it was reaped */
        struct ferry__child child;
        struct source pid_source, err_source;
        int64_t started;
        int64_t retry_at; /* waiting: when to start; 0: at once */
        int64_t term_at;  /* running: when --timeout sends SIGTERM; 0: never */
        int64_t kill_at;  /* running: when SIGKILL follows; 0: not yet */
        int output_fd;
        char *output_temp;
};

struct rule_state {
        struct rule_state *next;
        struct ferry_runner *runner;
        struct ferry_rule *rule;
        struct ferry_watch *watch;
        struct source watch_source;
        struct ferry__workarea wa;  /* work_fd -1 when files stay in place */
        struct ferry__store *store; /* on-success = keep */
        char *done_dir;   /* NULL: delete (or keep) on success */
        char *failed_dir;
        struct pending *pending_head, *pending_tail;
        size_t pending_count;
        unsigned running;
};

struct ferry_runner {
        struct ferry_rule *rules; /* until started */
        struct rule_state *states;
        struct job *jobs;
        int epoll_fd, timer_fd;
        struct source timer_source;
        ferry_log_cb log;
        void *log_data;
        bool started, stopping;
        int64_t stop_at;          /* stopping: when running handlers get SIGTERM */
        int64_t next_heartbeat;
        int64_t next_recover;
        char **env_base;          /* NULL-terminated, owned */
        size_t env_count;
        struct ferry__keeper keeper; /* kills handlers' groups if we die */
        mode_t umask;                /* for output files, which mkostemp makes 0600 */
        struct ferry_runner_stats stats; /* the counters; the "now" fields are filled when asked */
};

const double FERRY_DURATION_BOUNDS[FERRY_DURATION_BUCKETS] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1e300};

static void count_run(struct ferry_runner *r, int64_t duration_ns)
{
        double seconds = (double)duration_ns / 1e9;

        for (int i = 0; i < FERRY_DURATION_BUCKETS; i++)
                if (seconds <= FERRY_DURATION_BOUNDS[i])
                        r->stats.duration_count[i]++;
        r->stats.duration_runs++;
        r->stats.duration_sum += seconds;
}

/* ---- logging ----------------------------------------------------------------- */

static void logf_record(struct ferry_runner *r, struct ferry_log_record *rec, const char *format, ...)
        __attribute__((format(printf, 3, 4)));

static void logf_record(struct ferry_runner *r, struct ferry_log_record *rec, const char *format, ...)
{
        char message[1024];
        va_list ap;

        /* Every outcome is logged once, so the counters are kept here. */
        switch (rec->kind) {
        case FERRY_LOG_CLAIMED: r->stats.claimed++; break;
        case FERRY_LOG_DONE: r->stats.done++; break;
        case FERRY_LOG_FAILED: r->stats.failed++; break;
        case FERRY_LOG_RETRY: r->stats.retried++; break;
        case FERRY_LOG_RETURNED: r->stats.returned++; break;
        case FERRY_LOG_ERROR: r->stats.errors++; break;
        default: break;
        }
        if (!r->log)
                return;
        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);
        rec->message = message;
        if (rec->path && !rec->path_len)
                rec->path_len = strlen(rec->path);
        r->log(r->log_data, rec);
}

#define LOG(r, kind_, rule_, path_, ...)                                                                          \
        logf_record((r),                                                                                      \
                    &(struct ferry_log_record){.kind = (kind_), .rule = (rule_), .path = (path_),             \
                                               .duration_ns = -1},                                            \
                    __VA_ARGS__)

/* ---- set-up ------------------------------------------------------------------ */

int ferry_runner_new(struct ferry_runner **ret_runner)
{
        struct ferry_runner *r;
        struct epoll_event ev = {.events = EPOLLIN};

        if (!ret_runner)
                return -EINVAL;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->keeper.fd = -1;
        r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        r->timer_source = (struct source){SOURCE_TIMER, r};
        ev.data.ptr = &r->timer_source;
        if (r->epoll_fd < 0 || r->timer_fd < 0 || epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, r->timer_fd, &ev) < 0) {
                int e = -errno;

                ferry_runner_free(r);
                return e;
        }
        *ret_runner = r;
        return 0;
}

int ferry_runner_add_rule(struct ferry_runner *r, struct ferry_rule *rule)
{
        struct ferry_rule **tail;

        if (!r || !rule || r->started) {
                ferry_rule_free(rule);
                return -EINVAL;
        }
        for (tail = &r->rules; *tail; tail = &(*tail)->next)
                if (strcmp((*tail)->name, rule->name) == 0) {
                        ferry_rule_free(rule);
                        return -EEXIST;
                }
        rule->next = NULL;
        *tail = rule;
        return 0;
}

void ferry_runner_set_log(struct ferry_runner *r, ferry_log_cb callback, void *userdata)
{
        if (!r)
                return;
        r->log = callback;
        r->log_data = userdata;
}

/* The handlers' environment: what a program needs, nothing of ferry's own. */
static int build_env_base(struct ferry_runner *r)
{
        static const char *const keep[] = {"PATH=", "HOME=", "USER=", "LOGNAME=", "LANG=", "LC_", "TZ=", "TMPDIR="};
        size_t n = 0;
        bool have_path = false;

        for (char **e = environ; e && *e; e++)
                n++;
        r->env_base = calloc(n + 2, sizeof(char *));
        if (!r->env_base)
                return -ENOMEM;
        for (char **e = environ; e && *e; e++)
                for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
                        if (strncmp(*e, keep[i], strlen(keep[i])) == 0) {
                                r->env_base[r->env_count] = strdup(*e);
                                if (!r->env_base[r->env_count])
                                        return -ENOMEM;
                                have_path |= i == 0;
                                r->env_count++;
                                break;
                        }
        if (!have_path) {
                r->env_base[r->env_count] = strdup("PATH=/usr/local/bin:/usr/bin:/bin");
                if (!r->env_base[r->env_count])
                        return -ENOMEM;
                r->env_count++;
        }
        return 0;
}

/* The process's umask, read without changing it (umask(2) would, for a moment). */
static mode_t read_umask(void)
{
        char line[128];
        unsigned mask = 022;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return 022;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Umask: %o", &mask) == 1)
                        break;
        fclose(f);
        return (mode_t)mask;
}

static int epoll_add(struct ferry_runner *r, int fd, struct source *source)
{
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = source};

        return epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void epoll_del(struct ferry_runner *r, int fd)
{
        if (fd >= 0)
                (void)epoll_ctl(r->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

static struct job *job_new(struct rule_state *rs, struct ferry__claim **claims, size_t count)
{
        struct job *job = calloc(1, sizeof(*job));

        if (!job)
                return NULL;
        job->rs = rs;
        job->claims = claims;
        job->count = count;
        job->output_fd = -1;
        job->child.pidfd = job->child.stderr_fd = -1;
        job->pid_source = (struct source){SOURCE_PIDFD, job};
        job->err_source = (struct source){SOURCE_STDERR, job};
        job->next = rs->runner->jobs;
        if (job->next)
                job->next->prev = job;
        rs->runner->jobs = job;
        return job;
}

static void job_free(struct job *job)
{
        struct ferry_runner *r = job->rs->runner;

        if (job->prev)
                job->prev->next = job->next;
        else
                r->jobs = job->next;
        if (job->next)
                job->next->prev = job->prev;
        for (size_t i = 0; i < job->count; i++)
                ferry__claim_free(job->claims[i]);
        free(job->claims);
        if (job->output_fd >= 0)
                close(job->output_fd);
        if (job->output_temp) {
                (void)unlink(job->output_temp);
                free(job->output_temp);
        }
        free(job);
}

/* A claim of a dead worker, adopted by recovery: run it like a new one. */
static void adopt(void *userdata, struct ferry__claim *claim)
{
        struct rule_state *rs = userdata;
        struct ferry__claim **claims = malloc(sizeof(*claims));
        struct job *job;

        if (!claims || !(job = job_new(rs, claims, 1))) {
                free(claims);
                LOG(rs->runner, FERRY_LOG_ERROR, rs->rule->name, claim->claimed_path,
                    "out of memory: the recovered claim stays in the work area");
                ferry__claim_free(claim);
                return;
        }
        claims[0] = claim;
        LOG(rs->runner, FERRY_LOG_CLAIMED, rs->rule->name, claim->original_path,
            "recovered from a worker that died");
}

static char *join(const char *a, const char *b)
{
        char *s;

        return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

static int rule_start(struct ferry_runner *r, struct ferry_rule *rule)
{
        struct rule_state *rs = calloc(1, sizeof(*rs));
        /* A folder that goes away (unmounted, moved) is waited for and taken up again. */
        unsigned flags = FERRY_WATCH_EXISTING | FERRY_WATCH_FOLLOW | (rule->recursive ? FERRY_WATCH_RECURSIVE : 0);
        char description[512], backend[256];
        int e;

        if (!rs)
                return -ENOMEM;
        rs->runner = r;
        rs->rule = rule;
        rs->wa.work_fd = -1;
        rs->next = r->states;
        r->states = rs;
        e = ferry_rule_check(rule);
        if (e < 0) {
                LOG(r, FERRY_LOG_ERROR, rule->name, NULL, "%s", ferry_rule_explain(rule));
                return e;
        }
        rs->done_dir = rule->on_success != FERRY__ON_SUCCESS_DONE ? NULL
                       : rule->done_dir                         ? strdup(rule->done_dir)
                                                                : join(rule->dir, ".ferry/done");
        rs->failed_dir = rule->failed_dir ? strdup(rule->failed_dir) : join(rule->dir, ".ferry/failed");
        if ((!rs->done_dir && rule->on_success == FERRY__ON_SUCCESS_DONE) || !rs->failed_dir)
                return -ENOMEM;
        if (rule->on_success == FERRY__ON_SUCCESS_KEEP) {
                e = ferry__store_open(rule->dir, &rs->store);
                if (e < 0) {
                        LOG(r, FERRY_LOG_ERROR, rule->name, rule->dir,
                            e == -EBUSY ? "another ferry run keeps files in %s (only one may: %s/.ferry/keep.lock)"
                                        : "cannot open the record of handled files in %s/.ferry/state.db: %s",
                            rule->dir, e == -EBUSY ? rule->dir : strerror(-e));
                        return e;
                }
        } else {
                e = ferry__workarea_open(&rs->wa, rule->dir, rule->name, rule->lease_ns);
                if (e < 0) {
                        LOG(r, FERRY_LOG_ERROR, rule->name, rule->dir,
                            "cannot create the work area in %s/.ferry: %s", rule->dir, strerror(-e));
                        return e;
                }
                e = ferry__recover_own(&rs->wa, adopt, rs);
                if (e > 0)
                        LOG(r, FERRY_LOG_INFO, rule->name, NULL, "took up %d claim%s left from before", e,
                            e == 1 ? "" : "s");
                e = ferry__recover(&rs->wa, adopt, rs);
                if (e > 0)
                        LOG(r, FERRY_LOG_INFO, rule->name, NULL, "recovered %d claim%s of workers that died", e,
                            e == 1 ? "" : "s");
        }
        e = ferry_watch_new(&rs->watch, flags);
        if (e < 0)
                return e;
        (void)ferry_watch_set_ready(rs->watch, rule->ready);
        (void)ferry_watch_set_backend(rs->watch, rule->backend ? rule->backend : "auto");
        (void)ferry_watch_set_poll_interval(rs->watch, rule->poll_interval_ns);
        (void)ferry_watch_set_events(rs->watch, FERRY_EVENT_READY);
        for (size_t i = 0; i < rule->match_count; i++)
                (void)ferry_watch_include(rs->watch, rule->match[i]);
        for (size_t i = 0; i < rule->exclude_count; i++)
                (void)ferry_watch_exclude(rs->watch, rule->exclude[i]);
        e = ferry_watch_add(rs->watch, rule->dir);
        if (e < 0) {
                char message[1024];

                (void)ferry_watch_explain(rs->watch, e, rule->dir, message, sizeof(message));
                LOG(r, FERRY_LOG_ERROR, rule->name, rule->dir, "%s", message);
                return e;
        }
        r->stats.found_at_start += rs->watch->found_at_start;
        rs->watch_source = (struct source){SOURCE_WATCH, rs};
        e = epoll_add(r, ferry_watch_fd(rs->watch), &rs->watch_source);
        if (e < 0)
                return e;
        (void)ferry_watch_describe_ready(rs->watch, description, sizeof(description));
        (void)ferry_watch_describe_root(rs->watch, rule->dir, backend, sizeof(backend));
        LOG(r, FERRY_LOG_INFO, rule->name, rule->dir, "watching %s%s with %s; %s; %u job%s at once", rule->dir,
            rule->recursive ? " and its subfolders" : "", backend, description, rule->jobs,
            rule->jobs == 1 ? "" : "s");
        return 0;
}

int ferry_runner_start(struct ferry_runner *r)
{
        int e;

        if (!r || r->started || !r->rules)
                return -EINVAL;
        r->started = true;
        /* Orphans of handlers (daemons they forked) come back to us to be reaped. */
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        e = ferry__keeper_start(&r->keeper);
        if (e < 0)
                LOG(r, FERRY_LOG_WARNING, NULL, NULL,
                    "cannot start the keeper (%s): if ferry is killed, what handlers started may outlive it",
                    strerror(-e));
        e = build_env_base(r);
        if (e < 0)
                return e;
        r->umask = read_umask();
        while (r->rules) {
                struct ferry_rule *rule = r->rules;

                r->rules = rule->next;
                e = rule_start(r, rule);
                if (e < 0)
                        return e;
        }
        r->next_heartbeat = r->next_recover = ferry__now();
        return 0;
}

/* ---- running handlers --------------------------------------------------------- */

static char *env_pair(const char *key, const char *value)
{
        char *s;

        return asprintf(&s, "%s=%s", key, value) < 0 ? NULL : s;
}

/* Starts the job's handler; on failure to start, the job ends as a failed run. */
static void job_finish(struct job *job, const struct ferry__exit *exit_status, const char *why);

static void job_start(struct job *job)
{
        struct rule_state *rs = job->rs;
        struct ferry_runner *r = rs->runner;
        struct ferry_rule *rule = rs->rule;
        const char **paths = calloc(job->count + 1, sizeof(char *));
        char **argv = NULL, **envp = NULL, attempt[16];
        struct ferry__placeholders values = {0};
        struct ferry__spawn_request req = {.stdin_fd = -1, .stdout_fd = STDOUT_FILENO};
        struct ferry__exit none = {.code = -1};
        size_t n = r->env_count;
        int e, stdin_fd = -1;

        job->attempt++;
        job->running = true;
        job->timed_out = false;
        rs->running++;
        if (!paths)
                goto nomem;
        for (size_t i = 0; i < job->count; i++)
                paths[i] = job->claims[i]->claimed_path;
        values.path = rule->batch > 1 ? NULL : paths[0];
        values.paths = rule->batch > 1 ? paths : NULL;
        e = ferry__argv_expand(rule->command, &values, &argv);
        if (e < 0)
                goto nomem;
        envp = calloc(n + 8, sizeof(char *));
        if (!envp)
                goto nomem;
        for (size_t i = 0; i < n; i++)
                envp[i] = r->env_base[i]; /* borrowed: only the added ones are freed */
        snprintf(attempt, sizeof(attempt), "%u", job->attempt);
        envp[n++] = env_pair("FERRY_PATH", job->claims[0]->claimed_path);
        envp[n++] = env_pair("FERRY_NAME", job->claims[0]->name);
        envp[n++] = env_pair("FERRY_ORIGINAL_PATH", job->claims[0]->original_path);
        envp[n++] = env_pair("FERRY_RULE", rule->name);
        envp[n++] = env_pair("FERRY_ATTEMPT", attempt);
        for (size_t i = r->env_count; i < n; i++)
                if (!envp[i])
                        goto nomem;
        if (rule->use_stdin) {
                stdin_fd = open(job->claims[0]->claimed_path,
                                O_RDONLY | O_CLOEXEC | (rule->follow_symlinks ? 0 : O_NOFOLLOW));
                if (stdin_fd < 0) {
                        e = -errno;
                        goto cannot;
                }
                req.stdin_fd = stdin_fd;
        }
        if (rule->output_dir) {
                if (asprintf(&job->output_temp, "%s/.ferry-out.XXXXXX", rule->output_dir) < 0) {
                        job->output_temp = NULL;
                        goto nomem;
                }
                job->output_fd = mkostemp(job->output_temp, O_CLOEXEC);
                if (job->output_fd < 0) {
                        e = -errno;
                        free(job->output_temp);
                        job->output_temp = NULL;
                        goto cannot;
                }
                /* As the handler would have made it itself. */
                (void)fchmod(job->output_fd, 0666 & ~r->umask);
                if (rule->user && fchown(job->output_fd, rule->uid, rule->gid) < 0)
                        LOG(r, FERRY_LOG_WARNING, rule->name, job->output_temp,
                            "cannot give the output to user %s: %s", rule->user, strerror(errno));
                req.stdout_fd = job->output_fd;
        }
        req.argv = argv;
        req.envp = envp;
        req.switch_user = rule->user != NULL;
        req.uid = rule->uid;
        req.gid = rule->gid;
        e = ferry__spawn(&req, &job->child);
        if (e < 0)
                goto cannot;
        ferry__keeper_add(&r->keeper, job->child.pid);
        job->pid = job->child.pid;
        for (size_t i = 0; i < job->count; i++)
                ferry__claim_note_handler(&rs->wa, job->claims[i], job->pid);
        job->started = ferry__now();
        job->term_at = rule->timeout_ns ? job->started + rule->timeout_ns : 0;
        job->kill_at = 0;
        (void)epoll_add(r, job->child.pidfd, &job->pid_source);
        if (job->child.stderr_fd >= 0)
                (void)epoll_add(r, job->child.stderr_fd, &job->err_source);
        for (size_t i = 0; i < job->count; i++)
                logf_record(r,
                            &(struct ferry_log_record){.kind = FERRY_LOG_STARTED, .rule = rule->name,
                                                       .path = job->claims[i]->original_path, .duration_ns = -1,
                                                       .pid = job->child.pid, .attempt = (int)job->attempt},
                            "started %s (pid %d, attempt %u)", argv[0], (int)job->child.pid, job->attempt);
        goto out;
nomem:
        e = -ENOMEM;
cannot:
        {
                char why[512];

                snprintf(why, sizeof(why), "cannot run %s: %s", rule->command[0], strerror(-e));
                job->started = ferry__now();
                job_finish(job, &none, why);
        }
out:
        if (stdin_fd >= 0)
                close(stdin_fd);
        if (envp)
                for (size_t i = r->env_count; i < n; i++)
                        free(envp[i]);
        free(envp);
        ferry__argv_free(argv);
        free(paths);
}

/* Moves the handler's output into place: the seed's enrichment as a filter. */
static int deliver_output(struct job *job)
{
        struct ferry_rule *rule = job->rs->rule;
        char *target;
        int e = 0;

        if (job->output_fd < 0)
                return 0;
        if (fsync(job->output_fd) < 0)
                e = -errno;
        close(job->output_fd);
        job->output_fd = -1;
        if (e < 0)
                return e;
        target = join(rule->output_dir, job->claims[0]->name);
        if (!target)
                return -ENOMEM;
        if (rename(job->output_temp, target) < 0)
                e = -errno;
        free(target);
        if (e == 0) {
                free(job->output_temp);
                job->output_temp = NULL;
        }
        return e;
}

static int64_t backoff(const struct ferry_rule *rule, unsigned attempt)
{
        int64_t delay = rule->retry_delay_ns;

        for (unsigned i = 1; i < attempt && delay < 3600 * FERRY__NSEC_PER_SEC; i++)
                delay *= 2;
        return delay;
}

/* Writes NAME.ferry-error beside a failed file. */
static void write_failure(struct job *job, const struct ferry__claim *c, const char *failed_path, const char *why,
                          const struct ferry__exit *st, int64_t duration)
{
        size_t tail_len = 0;
        const char *tail = job->child.tail_len ? ferry__child_stderr_lines(&job->child, 20, &tail_len) : NULL;
        char *text = NULL, *sidecar = NULL;
        int n;

        n = asprintf(&text,
                     "path: %s\nrule: %s\nreason: %s\nexit-status: %d\nsignal: %d\ntimed-out: %s\n"
                     "attempts: %u\nduration: %.3fs\nfailed-at: %lld\nstderr:\n%.*s%s",
                     c->original_path, job->rs->rule->name, why, st->code, st->signal,
                     job->timed_out ? "yes" : "no", job->attempt, (double)duration / FERRY__NSEC_PER_SEC,
                     (long long)time(NULL), (int)tail_len, tail ? tail : "",
                     tail_len && tail[tail_len - 1] != '\n' ? "\n" : "");
        /* NAME.ferry-error, with NAME cut when the whole would pass NAME_MAX. */
        const char *base = strrchr(failed_path, '/') ? strrchr(failed_path, '/') + 1 : failed_path;
        int keep = (int)strlen(failed_path) - (int)strlen(base) +
                   ((int)strlen(base) + 12 > NAME_MAX ? NAME_MAX - 12 : (int)strlen(base));

        if (n >= 0 && asprintf(&sidecar, "%.*s.ferry-error", keep, failed_path) >= 0 &&
            ferry__write_sidecar(sidecar, text, (size_t)n) < 0)
                LOG(job->rs->runner, FERRY_LOG_WARNING, job->rs->rule->name, c->original_path,
                    "cannot write the failure note %s: %s", sidecar, strerror(errno));
        free(text);
        free(sidecar);
}

static int record(struct rule_state *rs, struct ferry__claim *c, const char *outcome, const char *why)
{
        char *relative = ferry__claim_relative(c);
        int e = relative ? ferry__store_record(rs->store, relative, &c->version, outcome, why) : -ENOMEM;

        free(relative);
        return e;
}

/* The handler ended (or never started): done, retry, failed, or back to the
 * queue when the runner stopped it. Frees the job unless it retries. */
static void job_finish(struct job *job, const struct ferry__exit *st, const char *why)
{
        struct rule_state *rs = job->rs;
        struct ferry_runner *r = rs->runner;
        struct ferry_rule *rule = rs->rule;
        int64_t duration = ferry__now() - job->started;
        bool success = !why && st->code == 0 && !job->timed_out;
        char reason[512];

        job->running = false;
        rs->running--;
        if (!why && !job->stopped)
                count_run(r, duration);
        if (success) {
                int e = deliver_output(job);

                if (e < 0) {
                        snprintf(reason, sizeof(reason), "cannot deliver the output to %s: %s", rule->output_dir,
                                 strerror(-e));
                        success = false;
                        why = reason;
                }
        }
        if (!why && !success) {
                if (job->timed_out) {
                        char took[32];

                        (void)ferry__format_duration(rule->timeout_ns, took, sizeof(took));
                        snprintf(reason, sizeof(reason), "timed out after %s", took);
                }
                else if (st->signal)
                        snprintf(reason, sizeof(reason), "killed by signal %d (%s)", st->signal,
                                 strsignal(st->signal));
                else
                        snprintf(reason, sizeof(reason), "exit status %d", st->code);
                why = reason;
        }
        /* A failure while stopping that has retries left is the next run's business. */
        if (!success && r->stopping && job->attempt <= rule->retries)
                job->stopped = true;
        if (job->output_temp) {
                if (job->output_fd >= 0)
                        close(job->output_fd);
                job->output_fd = -1;
                (void)unlink(job->output_temp);
                free(job->output_temp);
                job->output_temp = NULL;
        }
        for (size_t i = 0; i < job->count && (success || (job->stopped && r->stopping)); i++) {
                struct ferry__claim *c = job->claims[i];
                struct ferry_log_record rec = {.rule = rule->name, .path = c->original_path, .duration_ns = duration,
                                               .pid = job->pid, .attempt = (int)job->attempt,
                                               .exit_code = st->code, .signal = st->signal};
                char *final = NULL;
                int e;

                if (c->in_place && !success) {
                        rec.kind = FERRY_LOG_RETURNED;
                        logf_record(r, &rec, "stopped; left in place");
                        continue;
                }
                if (c->in_place) {
                        e = record(rs, c, "done", NULL);
                        rec.kind = e < 0 ? FERRY_LOG_ERROR : FERRY_LOG_DONE;
                        if (e < 0)
                                logf_record(r, &rec, "handled, but cannot record it (%s): it will be handled again",
                                            strerror(-e));
                        else
                                logf_record(r, &rec, "done in %.3fs; kept in place",
                                            (double)duration / FERRY__NSEC_PER_SEC);
                        continue;
                }
                if (!success) {
                        /* Stopped by us: back to the queue for the next run. */
                        e = ferry__claim_return(&rs->wa, c);
                        rec.kind = e < 0 ? FERRY_LOG_WARNING : FERRY_LOG_RETURNED;
                        logf_record(r, &rec, e < 0 ? "stopped; cannot return it to the queue (%s): it stays in %s"
                                                   : "stopped; returned to the queue%s%s",
                                    e < 0 ? strerror(-e) : "", e < 0 ? c->claimed_path : "");
                        continue;
                }
                e = ferry__claim_finish(&rs->wa, c, rs->done_dir, &final);
                rec.kind = e < 0 && e != -ENOENT ? FERRY_LOG_ERROR : FERRY_LOG_DONE;
                if (e == -ENOENT)
                        logf_record(r, &rec, "done in %.3fs; the handler removed or moved the file itself",
                                    (double)duration / FERRY__NSEC_PER_SEC);
                else if (e < 0)
                        logf_record(r, &rec, "handled, but cannot move it to %s (%s): it stays in %s",
                                    rs->done_dir ? rs->done_dir : "(delete)", strerror(-e), c->claimed_path);
                else
                        logf_record(r, &rec, "done in %.3fs%s%s", (double)duration / FERRY__NSEC_PER_SEC,
                                    final ? ": " : "; deleted", final ? final : "");
                free(final);
        }
        if (success || (job->stopped && r->stopping)) {
                job_free(job);
                return;
        }
        if (job->attempt <= rule->retries && !r->stopping) {
                char delay[32];

                (void)ferry__format_duration(backoff(rule, job->attempt), delay, sizeof(delay));
                job->retry_at = ferry__now() + backoff(rule, job->attempt);
                for (size_t i = 0; i < job->count; i++)
                        logf_record(r,
                                    &(struct ferry_log_record){.kind = FERRY_LOG_RETRY, .rule = rule->name,
                                                               .path = job->claims[i]->original_path,
                                                               .duration_ns = duration, .pid = job->pid,
                                                               .attempt = (int)job->attempt,
                                                               .exit_code = st->code, .signal = st->signal},
                                    "failed (%s); retry %u of %u in %s", why, job->attempt, rule->retries,
                                    delay);
                memset(&job->child, 0, sizeof(job->child));
                job->child.pidfd = job->child.stderr_fd = -1;
                for (size_t i = 0; i < job->count; i++)
                        ferry__claim_note_handler(&rs->wa, job->claims[i], 0);
                return;
        }
        for (size_t i = 0; i < job->count; i++) {
                struct ferry__claim *c = job->claims[i];
                char *final = NULL;
                int e;

                if (c->in_place) {
                        /* Left where it is; the note goes to the failed folder. */
                        char *relative = ferry__claim_relative(c);

                        e = record(rs, c, "failed", why);
                        if (relative && asprintf(&final, "%s/%s", rs->failed_dir, relative) >= 0) {
                                char *slash = strrchr(final, '/');

                                *slash = '\0';
                                (void)ferry__mkdir_p(final, 0755);
                                *slash = '/';
                        } else {
                                final = NULL;
                        }
                        free(relative);
                } else {
                        e = ferry__claim_finish(&rs->wa, c, rs->failed_dir, &final);
                }

                if (final)
                        write_failure(job, c, final, why, st, duration);
                struct ferry_log_record rec = {.kind = e < 0 ? FERRY_LOG_ERROR : FERRY_LOG_FAILED,
                                               .rule = rule->name, .path = c->original_path,
                                               .duration_ns = duration, .pid = job->pid,
                                               .attempt = (int)job->attempt, .exit_code = st->code,
                                               .signal = st->signal};

                if (e < 0)
                        logf_record(r, &rec, "failed (%s); cannot %s (%s): it stays in %s", why,
                                    c->in_place ? "record it" : "move it to the failed folder", strerror(-e),
                                    c->claimed_path);
                else if (c->in_place)
                        logf_record(r, &rec, "failed (%s) after %u attempt%s; left in place, note in %s.ferry-error",
                                    why, job->attempt, job->attempt == 1 ? "" : "s", final ? final : "?");
                else
                        logf_record(r, &rec, "failed (%s) after %u attempt%s: %s", why, job->attempt,
                                    job->attempt == 1 ? "" : "s", final);
                free(final);
        }
        job_free(job);
}

/* Handlers' descendants that left their process group (setsid, daemons) and
 * outlived their parents were re-parented to us, the subreaper: kill and reap
 * them, so that no orphan survives its handler. Children that are running
 * handlers are left alone. */
static void kill_orphans(struct ferry_runner *r)
{
        char path[64], buffer[4096];
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read(fd, buffer, sizeof(buffer) - 1);
        close(fd);
        if (n <= 0)
                return;
        buffer[n] = '\0';
        for (char *p = buffer, *end; *p; p = end) {
                long pid = strtol(p, &end, 10);
                bool handler = false;

                if (end == p)
                        break;
                handler = pid == r->keeper.pid;
                for (struct job *job = r->jobs; job && !handler; job = job->next)
                        handler = job->running && job->child.pid == pid;
                if (pid > 0 && !handler) {
                        (void)kill((pid_t)pid, SIGKILL);
                        (void)waitpid((pid_t)pid, NULL, 0);
                }
        }
}

static void job_exited(struct job *job)
{
        struct ferry_runner *r = job->rs->runner;
        struct ferry__exit st = {.code = -1};

        pid_t pgid = job->child.pid;

        epoll_del(r, job->child.pidfd);
        epoll_del(r, job->child.stderr_fd);
        if (ferry__child_reap(&job->child, &st) < 0)
                st = (struct ferry__exit){.code = -1};
        ferry__keeper_remove(&r->keeper, pgid); /* reaping killed what was left of the group */
        job_finish(job, &st, NULL);
        kill_orphans(r);
}

/* ---- the loop ---------------------------------------------------------------- */

static bool push_pending(struct rule_state *rs, const char *path, size_t len)
{
        struct pending *p = malloc(sizeof(*p) + len + 1);

        if (!p)
                return false;
        p->next = NULL;
        memcpy(p->path, path, len + 1);
        if (rs->pending_tail)
                rs->pending_tail->next = p;
        else
                rs->pending_head = p;
        rs->pending_tail = p;
        rs->pending_count++;
        return true;
}

static struct pending *pop_pending(struct rule_state *rs)
{
        struct pending *p = rs->pending_head;

        if (p) {
                rs->pending_head = p->next;
                if (!rs->pending_head)
                        rs->pending_tail = NULL;
                rs->pending_count--;
        }
        return p;
}

static void drain_watch(struct rule_state *rs)
{
        struct ferry_runner *r = rs->runner;
        const struct ferry_event *ev;
        int e;

        while (rs->watch && (e = ferry_watch_next(rs->watch, &ev, 0)) == 1) {
                char message[1024];

                switch (ev->type) {
                case FERRY_EVENT_READY:
                        r->stats.ready++;
                        if (!push_pending(rs, ev->path, ev->path_len))
                                LOG(r, FERRY_LOG_ERROR, rs->rule->name, ev->path,
                                    "out of memory: file left in place, handled after a restart");
                        break;
                case FERRY_EVENT_ERROR:
                        (void)ferry_watch_explain(rs->watch, ev->error, ev->path, message, sizeof(message));
                        LOG(r, FERRY_LOG_ERROR, rs->rule->name, ev->path, "%s", message);
                        break;
                case FERRY_EVENT_RESCAN:
                        r->stats.rescans++;
                        LOG(r, FERRY_LOG_WARNING, rs->rule->name, NULL,
                            "the kernel event queue overflowed; rescanned (raise fs.inotify.max_queued_events)");
                        break;
                case FERRY_EVENT_ROOT_GONE:
                        LOG(r, FERRY_LOG_ERROR, rs->rule->name, ev->path,
                            "%s went away; waiting for it to come back", rs->rule->dir);
                        break;
                case FERRY_EVENT_ROOT_BACK:
                        LOG(r, FERRY_LOG_INFO, rs->rule->name, ev->path, "%s is back", rs->rule->dir);
                        break;
                default:
                        break;
                }
        }
        if (e < 0)
                LOG(r, FERRY_LOG_ERROR, rs->rule->name, NULL, "cannot read events: %s", strerror(-e));
}

/* Only regular files are handed out; symlinks when the rule says so, and
 * then the handler gets the link (its target stays where it is). */
static bool claimable(struct rule_state *rs, const char *path)
{
        struct stat st;

        if (lstat(path, &st) < 0)
                return false; /* gone: another worker took it */
        if (S_ISREG(st.st_mode))
                return true;
        if (S_ISLNK(st.st_mode) && rs->rule->follow_symlinks)
                return true;
        LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, path, "skipped: %s",
            S_ISLNK(st.st_mode) ? "a symlink (--symlinks, or symlinks = yes, hands symlinks to the handler)"
                                : "not a regular file");
        return false;
}

/* on-success = keep: the file stays where it is; the record says whether this
 * version was handled, and a file being handled is not started twice. */
static int claim_in_place(struct rule_state *rs, const char *path, struct ferry__claim **ret_claim)
{
        struct ferry__claim *c;
        char *relative;
        int e = ferry__claim_in_place(rs->rule->dir, path, &c);

        if (e < 0)
                return e;
        for (struct job *job = rs->runner->jobs; job; job = job->next)
                for (size_t i = 0; job->rs == rs && i < job->count; i++)
                        if (strcmp(job->claims[i]->original_path, path) == 0) {
                                /* Busy: its new version comes back as a ready event later. */
                                ferry__claim_free(c);
                                return -EALREADY;
                        }
        relative = ferry__claim_relative(c);
        e = relative ? ferry__store_handled(rs->store, relative, &c->version) : -ENOMEM;
        free(relative);
        if (e != 0) {
                ferry__claim_free(c);
                return e > 0 ? -EALREADY : e;
        }
        *ret_claim = c;
        return 0;
}

/* Claims up to batch pending files and starts a handler for them. */
static void claim_and_start(struct rule_state *rs)
{
        struct ferry_runner *r = rs->runner;
        unsigned batch = rs->rule->batch;
        struct ferry__claim **claims = NULL;
        size_t count = 0;

        while (rs->pending_head && count < batch) {
                struct pending *p = pop_pending(rs);
                struct ferry__claim *c;
                int e;

                if (!claims && !(claims = calloc(batch, sizeof(*claims)))) {
                        free(p);
                        return;
                }
                if (!claimable(rs, p->path)) {
                        free(p);
                        continue;
                }
                if (rs->store) {
                        e = claim_in_place(rs, p->path, &c);
                        if (e == -EALREADY) {
                                free(p);
                                continue;
                        }
                } else {
                        e = ferry__claim(&rs->wa, p->path, &c);
                }
                if (e == 0) {
                        claims[count++] = c;
                        LOG(r, FERRY_LOG_CLAIMED, rs->rule->name, c->original_path, "claimed");
                } else if (e != -ENOENT) {
                        LOG(r, FERRY_LOG_ERROR, rs->rule->name, p->path, "cannot claim %s: %s", p->path,
                            strerror(-e));
                }
                free(p);
        }
        if (count == 0) {
                free(claims);
                return;
        }
        struct job *job = job_new(rs, claims, count);

        if (!job) {
                for (size_t i = 0; i < count; i++) {
                        (void)ferry__claim_return(&rs->wa, claims[i]);
                        ferry__claim_free(claims[i]);
                }
                free(claims);
                return;
        }
        job_start(job);
}

static void start_work(struct ferry_runner *r, int64_t now)
{
        /* Waiting jobs first: adopted claims and retries that are due. */
        for (struct job *job = r->jobs, *next; job; job = next) {
                next = job->next;
                if (!job->running && job->retry_at <= now && job->rs->running < job->rs->rule->jobs)
                        job_start(job);
        }
        for (struct rule_state *rs = r->states; rs; rs = rs->next)
                while (rs->pending_head && rs->running < rs->rule->jobs)
                        claim_and_start(rs);
}

static void check_timers(struct ferry_runner *r, int64_t now)
{
        for (struct job *job = r->jobs; job; job = job->next) {
                if (!job->running)
                        continue;
                if (r->stopping && now >= r->stop_at && !job->kill_at) {
                        job->stopped = true;
                        ferry__child_signal(&job->child, SIGTERM);
                        job->kill_at = now + job->rs->rule->kill_after_ns;
                } else if (job->term_at && now >= job->term_at && !job->kill_at) {
                        job->timed_out = true;
                        ferry__child_signal(&job->child, SIGTERM);
                        job->kill_at = now + job->rs->rule->kill_after_ns;
                } else if (job->kill_at && now >= job->kill_at) {
                        ferry__child_signal(&job->child, SIGKILL);
                        job->kill_at = INT64_MAX;
                }
        }
        if (now >= r->next_heartbeat) {
                int64_t period = INT64_MAX;

                for (struct rule_state *rs = r->states; rs; rs = rs->next) {
                        if (rs->wa.work_fd >= 0)
                                ferry__workarea_heartbeat(&rs->wa);
                        if (rs->rule->lease_ns / 3 < period)
                                period = rs->rule->lease_ns / 3;
                }
                r->next_heartbeat = now + period;
        }
        if (now >= r->next_recover && !r->stopping) {
                int64_t period = INT64_MAX;

                for (struct rule_state *rs = r->states; rs; rs = rs->next) {
                        if (rs->wa.work_fd >= 0)
                                (void)ferry__recover(&rs->wa, adopt, rs);
                        if (rs->rule->lease_ns / 2 < period)
                                period = rs->rule->lease_ns / 2;
                }
                r->next_recover = now + period;
        }
}

static int64_t next_deadline(const struct ferry_runner *r)
{
        int64_t next = r->stopping ? INT64_MAX : r->next_recover;

        if (r->next_heartbeat < next)
                next = r->next_heartbeat;
        for (const struct job *job = r->jobs; job; job = job->next) {
                if (!job->running) {
                        if (job->retry_at < next)
                                next = job->retry_at;
                        continue;
                }
                if (r->stopping && !job->kill_at && r->stop_at < next)
                        next = r->stop_at;
                if (job->term_at && !job->kill_at && job->term_at < next)
                        next = job->term_at;
                if (job->kill_at && job->kill_at != INT64_MAX && job->kill_at < next)
                        next = job->kill_at;
        }
        return next;
}

static void arm_timer(struct ferry_runner *r, int64_t deadline)
{
        struct itimerspec its = {0};

        if (deadline != INT64_MAX) {
                its.it_value.tv_sec = deadline / FERRY__NSEC_PER_SEC;
                its.it_value.tv_nsec = deadline % FERRY__NSEC_PER_SEC;
                if (deadline <= 0)
                        its.it_value.tv_nsec = 1;
        }
        (void)timerfd_settime(r->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void handle(struct ferry_runner *r, const struct epoll_event *events, int n)
{
        for (int i = 0; i < n; i++) {
                struct source *s = events[i].data.ptr;
                uint64_t expirations;

                switch (s->kind) {
                case SOURCE_TIMER:
                        (void)read(r->timer_fd, &expirations, sizeof(expirations));
                        break;
                case SOURCE_WATCH:
                        break; /* drained by the loop */
                case SOURCE_STDERR:
                        /* At hang-up, leave the set first: reading to the end closes the fd. */
                        if (events[i].events & (EPOLLHUP | EPOLLERR))
                                epoll_del(r, ((struct job *)s->owner)->child.stderr_fd);
                        ferry__child_read_stderr(&((struct job *)s->owner)->child);
                        break;
                case SOURCE_PIDFD:
                        job_exited(s->owner);
                        /* The job may be gone: later events of this batch may
                         * point to it; they are handled on the next round. */
                        return;
                }
        }
}

static bool any_running(const struct ferry_runner *r)
{
        for (const struct job *job = r->jobs; job; job = job->next)
                if (job->running)
                        return true;
        return false;
}

int ferry_runner_dispatch(struct ferry_runner *r, int timeout_ms)
{
        int64_t until;

        if (!r || !r->started)
                return -EINVAL;
        until = timeout_ms < 0 ? INT64_MAX : ferry__now() + (int64_t)timeout_ms * FERRY__NSEC_PER_MSEC;
        for (;;) {
                struct epoll_event events[16];
                int64_t now, next;
                int n;

                n = epoll_wait(r->epoll_fd, events, 16, 0);
                if (n > 0)
                        handle(r, events, n);
                for (struct rule_state *rs = r->states; rs; rs = rs->next)
                        drain_watch(rs);
                now = ferry__now();
                check_timers(r, now);
                if (!r->stopping)
                        start_work(r, now);
                if (r->stopping && !any_running(r)) {
                        /* Claims waiting for a retry go back to the queue. */
                        while (r->jobs) {
                                struct job *job = r->jobs;

                                job->stopped = true;
                                job->running = true;
                                job->rs->running++;
                                job_finish(job, &(struct ferry__exit){.code = -1}, "stopped");
                        }
                        return 0;
                }
                next = next_deadline(r);
                if (now >= until) {
                        /* Back to the caller (signals, its own fds), busy or not:
                         * pending events keep the fd readable. */
                        arm_timer(r, next);
                        return 1;
                }
                if (n > 0)
                        continue; /* something happened: look again before waiting */
                if (next > until)
                        next = until;
                n = epoll_wait(r->epoll_fd, events, 16,
                               next == INT64_MAX ? -1
                                                 : (int)((next - now + FERRY__NSEC_PER_MSEC - 1) / FERRY__NSEC_PER_MSEC));
                if (n < 0 && errno != EINTR)
                        return -errno;
                if (n > 0)
                        handle(r, events, n);
        }
}

int ferry_runner_stats(struct ferry_runner *r, struct ferry_runner_stats *ret_stats)
{
        struct ferry_runner_stats st;

        if (!r || !ret_stats)
                return -EINVAL;
        st = r->stats;
        st.queued = st.running = st.waiting = st.watches = 0;
        for (const struct rule_state *rs = r->states; rs; rs = rs->next) {
                st.queued += rs->pending_count;
                st.watches += ferry_watch_count(rs->watch);
        }
        for (const struct job *job = r->jobs; job; job = job->next) {
                if (job->running)
                        st.running += job->count;
                else
                        st.waiting += job->count;
        }
        *ret_stats = st;
        return 0;
}

int ferry_runner_each_rule(struct ferry_runner *r, int (*callback)(void *userdata, struct ferry_rule *rule),
                           void *userdata)
{
        int e;

        if (!r || !callback)
                return -EINVAL;
        for (struct ferry_rule *rule = r->rules; rule; rule = rule->next)
                if ((e = callback(userdata, rule)) != 0)
                        return e;
        for (struct rule_state *rs = r->states; rs; rs = rs->next)
                if ((e = callback(userdata, rs->rule)) != 0)
                        return e;
        return 0;
}

int ferry_runner_fd(struct ferry_runner *r)
{
        return r ? r->epoll_fd : -EINVAL;
}

static void stop(struct ferry_runner *r, int64_t grace_ns, bool say)
{
        if (!r->stopping) {
                r->stopping = true;
                r->stop_at = ferry__now() + (grace_ns > 0 ? grace_ns : 0);
                char grace[32];

                (void)ferry__format_duration(grace_ns, grace, sizeof(grace));
                if (say)
                        LOG(r, FERRY_LOG_INFO, NULL, NULL, "stopping: no new claims; handlers get %s to finish",
                            grace);
        } else {
                int64_t now = ferry__now();

                if (now + grace_ns < r->stop_at)
                        r->stop_at = now + (grace_ns > 0 ? grace_ns : 0);
        }
        /* Unclaimed ready files need nothing: they stay where they are. */
        for (struct rule_state *rs = r->states; rs; rs = rs->next) {
                struct pending *p;

                while ((p = pop_pending(rs)))
                        free(p);
                if (rs->watch) {
                        epoll_del(r, ferry_watch_fd(rs->watch));
                        ferry_watch_free(rs->watch);
                        rs->watch = NULL;
                }
        }
}

void ferry_runner_stop(struct ferry_runner *r, int64_t grace_ns)
{
        if (r)
                stop(r, grace_ns, true);
}

void ferry_runner_free(struct ferry_runner *r)
{
        if (!r)
                return;
        if (r->started) {
                /* Whatever still runs is killed; its claims go back to the queue. */
                stop(r, 0, false);
                for (struct job *job = r->jobs; job; job = job->next)
                        if (job->running) {
                                job->stopped = true;
                                ferry__child_abandon(&job->child);
                        }
                while (r->jobs) {
                        struct job *job = r->jobs;

                        job->stopped = true;
                        if (!job->running) {
                                job->running = true;
                                job->rs->running++;
                        }
                        job_finish(job, &(struct ferry__exit){.code = -1}, "stopped");
                }
        }
        while (r->states) {
                struct rule_state *rs = r->states;
                struct pending *p;

                r->states = rs->next;
                while ((p = pop_pending(rs)))
                        free(p);
                ferry_watch_free(rs->watch);
                ferry__workarea_close(&rs->wa);
                ferry__store_close(rs->store);
                free(rs->done_dir);
                free(rs->failed_dir);
                ferry_rule_free(rs->rule);
                free(rs);
        }
        while (r->rules) {
                struct ferry_rule *rule = r->rules;

                r->rules = rule->next;
                ferry_rule_free(rule);
        }
        ferry__keeper_stop(&r->keeper);
        for (size_t i = 0; i < r->env_count; i++)
                free(r->env_base[i]);
        free(r->env_base);
        if (r->timer_fd >= 0)
                close(r->timer_fd);
        if (r->epoll_fd >= 0)
                close(r->epoll_fd);
        free(r);
}
