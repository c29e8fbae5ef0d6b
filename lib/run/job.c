/* job.c: one handler run, from its start to its outcome: the handler's argv,
 * environment, stdin and output file; then done, retry with back-off, or
 * failed with a NAME.ferry-error note; returned to the queue when the runner
 * stops. The loop that starts and reaps jobs is runner.c's.
 *
 * Job states:
 *   waiting   claimed, not running: new, adopted from a dead worker, or
 *             backing off before a retry (retry_at)
 *   running   its handler runs (child valid)
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Says what a claim's handler left beside its file, moved out with it. */
static void said_leftovers(struct rule_state *rs, struct ferry__claim *c, const struct ferry__folder *to)
{
        if (!c->leftovers)
                return;
        LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, c->original_path,
            "its handler left %u file%s beside it in its claim folder: moved to %s (a handler's own output belongs "
            "in the output folder, or one of its own)",
            c->leftovers, c->leftovers == 1 ? "" : "s", (to ? to : &rs->failed)->path);
        c->leftovers = 0;
}

int ferry__job_claim_finish(struct rule_state *rs, struct ferry__claim *c, const struct ferry__folder *to,
                            char **ret_relative)
{
        int e = ferry__claim_finish(&rs->wa, c, to, ret_relative);

        said_leftovers(rs, c, to);
        return e;
}

int ferry__job_claim_return(struct rule_state *rs, struct ferry__claim *c)
{
        int e = ferry__claim_return(&rs->wa, c);

        said_leftovers(rs, c, NULL);
        return e;
}

static void count_run(struct ferry_runner *r, int64_t duration_ns)
{
        double seconds = (double)duration_ns / 1e9;

        for (int i = 0; i < FERRY_DURATION_BUCKETS; i++)
                if (seconds <= FERRY_DURATION_BOUNDS[i])
                        r->stats.duration_count[i]++;
        r->stats.duration_runs++;
        r->stats.duration_sum += seconds;
}

struct job *ferry__job_new(struct rule_state *rs, struct ferry__claim **claims, size_t count)
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

void ferry__job_free(struct job *job)
{
        struct ferry_runner *r = job->rs->runner;

        ferry__judge_end(job);
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
                (void)unlinkat(job->rs->wa.output_fd, job->output_temp, 0);
                free(job->output_temp);
        }
        free(job);
}

void ferry__job_return(struct job *job, bool stopped)
{
        struct rule_state *rs = job->rs;

        for (size_t i = 0; i < job->count; i++) {
                struct ferry__claim *c = job->claims[i];
                struct ferry_log_record rec = ferry__claim_record(FERRY_LOG_RETURNED, rs->rule->name, c);
                const char *how = stopped ? "stopped" : "given back";
                int e;

                rec.attempt = (int)job->attempt;

                if (c->in_place) {
                        ferry__runner_record(rs->runner, &rec, "%s; left in place", how);
                        continue;
                }
                e = ferry__job_claim_return(rs, c);
                if (e < 0) {
                        rec.kind = FERRY_LOG_WARNING;
                        ferry__runner_record(rs->runner, &rec, "%s; cannot return it to the queue (%s): it stays in %s",
                                             how, strerror(-e), c->claimed_path);
                } else {
                        ferry__runner_record(rs->runner, &rec, "%s; returned to the queue", how);
                }
        }
        if (job->running)
                rs->running--;
        job->running = false;
        ferry__job_free(job);
}

void ferry__job_start(struct job *job)
{
        struct rule_state *rs = job->rs;
        struct ferry_runner *r = rs->runner;
        struct ferry_rule *rule = rs->rule;
        const char **paths = calloc(job->count + 1, sizeof(char *));
        char **argv = NULL, **envp = NULL, attempt[16];
        struct ferry__placeholders values = {0};
        struct ferry__spawn_request req = {.stdin_fd = -1, .stdout_fd = STDOUT_FILENO};
        struct ferry__exit none = {.code = -1};
        size_t n = rs->env_count;
        int e, stdin_fd = -1;

        if (ferry__judge_begin(job)) {
                free(paths);
                return; /* dedup: it starts once its content is known not to be handled yet */
        }
        job->attempt++;
        job->running = true;
        job->timed_out = false;
        rs->running++;
        if (r->external) {
                /* A queue: the caller takes it (ferry_queue_take) and says how it went. */
                free(paths);
                job->started = ferry__now();
                job->term_at = job->kill_at = 0;
                job->handed = true;
                job->taken = NULL;
                r->handed++;
                /* For ferry status: "in flight", in this process. */
                ferry__claim_note_handler(&rs->wa, job->claims, job->count, getpid());
                return;
        }
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
                envp[i] = rs->env[i]; /* borrowed: only the added ones are freed */
        snprintf(attempt, sizeof(attempt), "%u", job->attempt);
        envp[n++] = ferry__env_pair("FERRY_PATH", job->claims[0]->claimed_path);
        envp[n++] = ferry__env_pair("FERRY_NAME", job->claims[0]->name);
        envp[n++] = ferry__env_pair("FERRY_ORIGINAL_PATH", job->claims[0]->original_path);
        envp[n++] = ferry__env_pair("FERRY_RULE", rule->name);
        envp[n++] = ferry__env_pair("FERRY_ATTEMPT", attempt);
        for (size_t i = rs->env_count; i < n; i++)
                if (!envp[i])
                        goto nomem;
        if (rule->use_stdin) {
                e = ferry__claim_open(&rs->wa, job->claims[0], rule->follow_symlinks, &stdin_fd);
                if (e < 0)
                        goto cannot;
                req.stdin_fd = stdin_fd;
        }
        if (rule->output_dir) {
                char name[64];

                /* In the output folder held open since start, under a new
                 * name: never through a link someone put there. */
                job->output_fd = ferry__output_create(rs->wa.output_fd, name, sizeof(name));
                if (job->output_fd < 0) {
                        e = job->output_fd;
                        job->output_fd = -1;
                        goto cannot;
                }
                job->output_temp = strdup(name);
                if (!job->output_temp)
                        goto nomem;
                /* As the handler would have made it itself. */
                (void)fchmod(job->output_fd, 0666 & ~r->umask);
                if (rule->user && fchown(job->output_fd, rule->uid, rule->gid) < 0)
                        LOG(r, FERRY_LOG_WARNING, rule->name, job->output_temp, "cannot give the output to user %s: %s",
                            rule->user, strerror(errno));
                req.stdout_fd = job->output_fd;
                /* A worker that adopts the claim after a crash removes the partial
                 * output (--output never batches: one claim). */
                ferry__claim_note_output(&rs->wa, job->claims[0], job->output_temp);
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
        ferry__claim_note_handler(&rs->wa, job->claims, job->count, job->pid);
        job->started = ferry__now();
        job->term_at = rule->timeout_ns ? job->started + rule->timeout_ns : 0;
        job->kill_at = 0;
        (void)ferry__runner_epoll_add(r, job->child.pidfd, &job->pid_source);
        if (job->child.stderr_fd >= 0)
                (void)ferry__runner_epoll_add(r, job->child.stderr_fd, &job->err_source);
        for (size_t i = 0; i < job->count; i++) {
                struct ferry_log_record rec = ferry__claim_record(FERRY_LOG_STARTED, rule->name, job->claims[i]);

                rec.pid = job->child.pid;
                rec.attempt = (int)job->attempt;
                ferry__runner_record(r, &rec, "started %s (pid %d, attempt %u)", argv[0], (int)job->child.pid,
                                     job->attempt);
        }
        goto out;
nomem:
        e = -ENOMEM;
cannot:
        {
                char why[512];

                snprintf(why, sizeof(why), "cannot run %s: %s", rule->command[0], strerror(-e));
                job->started = ferry__now();
                ferry__job_finish(job, &none, why);
        }
out:
        if (stdin_fd >= 0)
                close(stdin_fd);
        if (envp)
                for (size_t i = rs->env_count; i < n; i++)
                        free(envp[i]);
        free(envp);
        ferry__argv_free(argv);
        free(paths);
}

/* Moves the handler's output into place: the seed's enrichment as a filter. */
static int deliver_output(struct job *job)
{
        struct ferry_rule *rule = job->rs->rule;
        const char *target;
        int e = 0;

        if (job->output_fd < 0)
                return 0;
        if (fsync(job->output_fd) < 0)
                e = -errno;
        close(job->output_fd);
        job->output_fd = -1;
        if (e < 0)
                return e;
        (void)rule;
        target = job->claims[0]->name;
        if (renameat(job->rs->wa.output_fd, job->output_temp, job->rs->wa.output_fd, target) < 0)
                e = -errno;
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

/* A failure note that could not be written (the failed folder's file system
 * full, say): kept, and written once it can be (ferry__late_notes_write). */
struct late_note {
        struct late_note *next;
        char *path;     /* the file's original path, for the log */
        char *relative; /* in the failed folder */
        char *text;
        size_t len;
};

static void late_note_free(struct late_note *note)
{
        free(note->path);
        free(note->relative);
        free(note->text);
        free(note);
}

static void keep_note(struct rule_state *rs, const char *path, const char *relative, const char *text, size_t len,
                      int e)
{
        struct late_note *note = calloc(1, sizeof(*note));

        if (note) {
                note->path = strdup(path);
                note->relative = strdup(relative);
                note->text = malloc(len);
                note->len = len;
        }
        if (!note || !note->path || !note->relative || !note->text) {
                RECORD(rs->runner, FERRY_LOG_ERROR, rs->rule->name, path,
                       "cannot write the failure note for %s/%s: %s; out of memory to keep it: it is lost",
                       rs->failed.path, relative, strerror(-e));
                if (note)
                        late_note_free(note);
                return;
        }
        memcpy(note->text, text, len);
        note->next = rs->late_notes;
        rs->late_notes = note;
        LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, path,
            "cannot write the failure note for %s/%s: %s; it is kept and written once it can be (free space, "
            "say)",
            rs->failed.path, relative, strerror(-e));
}

void ferry__late_notes_write(struct rule_state *rs, bool last)
{
        struct late_note **link = &rs->late_notes;

        while (*link) {
                struct late_note *note = *link;
                int e = rs->failed.fd >= 0
                                ? ferry__folder_note(&rs->failed, note->relative, ".ferry-error", note->text, note->len)
                                : -EBADF;

                if (e == 0) {
                        LOG(rs->runner, FERRY_LOG_INFO, rs->rule->name, note->path,
                            "failure note written at last: %s/%s.ferry-error", rs->failed.path, note->relative);
                } else if (last) {
                        /* Its reason, at least, reaches the log. */
                        const char *reason = strstr(note->text, "\nreason: ");
                        int reason_len = reason ? (int)strcspn(reason + 9, "\n") : 0;

                        RECORD(rs->runner, FERRY_LOG_ERROR, rs->rule->name, note->path,
                               "the failure note for %s/%s could not be written (%s); its reason: %.*s",
                               rs->failed.path ? rs->failed.path : "the failed folder", note->relative, strerror(-e),
                               reason_len, reason ? reason + 9 : "");
                } else {
                        link = &note->next;
                        continue;
                }
                *link = note->next;
                late_note_free(note);
        }
}

/* The failure note of a claim: what NAME.ferry-error holds. Its length to *ret_len. */
static char *failure_text(struct job *job, const struct ferry__claim *c, const char *why, const struct ferry__exit *st,
                          int64_t duration, size_t *ret_len)
{
        size_t tail_len = 0;
        const char *tail = job->child.tail_len ? ferry__child_stderr_lines(&job->child, 20, &tail_len) : NULL;
        char *text = NULL;
        int n;

        n = asprintf(&text,
                     "path: %s\nrule: %s\nreason: %s\nexit-status: %d\nsignal: %d\ntimed-out: %s\n"
                     "attempts: %u\nduration: %.3fs\nfailed-at: %lld\nstderr:\n%.*s%s",
                     c->original_path, job->rs->rule->name, why, st->code, st->signal, job->timed_out ? "yes" : "no",
                     job->attempt, (double)duration / FERRY__NSEC_PER_SEC, (long long)time(NULL), (int)tail_len,
                     tail ? tail : "", tail_len && tail[tail_len - 1] != '\n' ? "\n" : "");
        if (n < 0)
                return NULL;
        *ret_len = (size_t)n;
        return text;
}

/* Writes NAME.ferry-error beside a failed file, at relative in the failed
 * folder; kept for later when it cannot be written now. */
static void write_note(struct rule_state *rs, const char *path, const char *relative, const char *text, size_t len)
{
        int e = ferry__folder_note(&rs->failed, relative, ".ferry-error", text, len);

        if (e < 0)
                keep_note(rs, path, relative, text, len, e);
}

/* A handled file whose move to done or failed (or whose removal) failed:
 * the outcome folder not writable, or its file system full. It waits in the
 * work area, its outcome noted there, and the move is tried again every
 * second; a worker that takes the claim over makes it without handling the
 * file again. */
struct unfinished {
        struct unfinished *next;
        struct ferry__claim *claim;
        char *note; /* failed: its failure note; NULL: done */
        size_t note_len;
};

/* Keeps the handled claim c (taken, with note) until it can be moved out. */
static void wait_to_move(struct rule_state *rs, struct ferry__claim *c, char *note, size_t note_len)
{
        struct unfinished *u = calloc(1, sizeof(*u));
        char *outcome = NULL;

        /* An adopted claim has its outcome noted already. */
        if (!c->outcome &&
            (asprintf(&outcome, "%s\n%.*s", note ? "failed" : "done", note ? (int)note_len : 0, note ? note : "") < 0 ||
             ferry__claim_note_outcome(&rs->wa, c, outcome) < 0))
                LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, c->original_path,
                    "cannot note in %s that it was handled: if ferry stops before it is moved out, it is handled "
                    "again",
                    c->claimed_path);
        free(outcome);
        if (!u) {
                free(note);
                ferry__claim_free(c);
                return;
        }
        u->claim = c;
        u->note = note;
        u->note_len = note_len;
        u->next = rs->unfinished;
        rs->unfinished = u;
}

/* Tries to move u out; last: what still cannot be is said and left. True
 * when u is done with (moved, gone, or left for good): the caller frees it. */
static bool move_unfinished(struct rule_state *rs, const struct unfinished *u, bool last)
{
        struct ferry__claim *c = u->claim;
        const struct ferry__folder *to = u->note ? &rs->failed : rs->done.fd >= 0 ? &rs->done : NULL;
        char *relative = NULL, *dest = NULL, reason[512] = "";
        int e = rs->wa.work_fd < 0 || (to && to->fd < 0) ? -EBADF : ferry__job_claim_finish(rs, c, to, &relative);

        if (e < 0 && e != -ENOENT && !last)
                return false;
        if (e < 0 && e != -ENOENT) {
                LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, c->original_path,
                    "handled, and still cannot be %s (%s): it stays in %s, noted as handled; the next "
                    "worker moves it without handling it again",
                    to ? "moved out" : "deleted", strerror(-e), c->claimed_path);
                free(relative);
                return true;
        }
        if (u->note) /* its reason, for the on-failure hook */
                ferry__note_field(u->note, "reason", reason, sizeof(reason));
        if (e == -ENOENT) {
                RECORD_CLAIM(rs->runner, u->note ? FERRY_LOG_FAILED : FERRY_LOG_DONE, rs->rule->name, c,
                             "handled before; it was removed from the work area meanwhile");
        } else if (to) {
                if (u->note)
                        write_note(rs, c->original_path, relative, u->note, u->note_len);
                RECORD_CLAIM(rs->runner, u->note ? FERRY_LOG_FAILED : FERRY_LOG_DONE, rs->rule->name, c,
                             "handled before; moved to %s/%s now", to->path, relative);
                if (asprintf(&dest, "%s/%s", to->path, relative) < 0)
                        dest = NULL;
        } else {
                RECORD_CLAIM(rs->runner, FERRY_LOG_DONE, rs->rule->name, c, "handled before; deleted now");
        }
        ferry__hook_queue(rs, u->note != NULL, c->original_path, dest, u->note ? reason : NULL);
        free(dest);
        free(relative);
        return true;
}

static void unfinished_free(struct unfinished *u)
{
        ferry__claim_free(u->claim);
        free(u->note);
        free(u);
}

void ferry__unfinished_move(struct rule_state *rs, bool last)
{
        struct unfinished **link = &rs->unfinished;

        while (*link) {
                struct unfinished *u = *link;

                if (!move_unfinished(rs, u, last)) {
                        link = &u->next;
                        continue;
                }
                *link = u->next;
                unfinished_free(u);
        }
}

void ferry__job_adopt_handled(struct rule_state *rs, struct ferry__claim *c)
{
        bool failed = strncmp(c->outcome, "failed\n", 7) == 0;
        char *note = failed ? strdup(c->outcome + 7) : NULL;
        struct unfinished *u;

        if (failed && !note) {
                RECORD(rs->runner, FERRY_LOG_ERROR, rs->rule->name, c->original_path,
                       "out of memory: the recovered claim stays in the work area");
                ferry__claim_free(c);
                return;
        }
        wait_to_move(rs, c, note, note ? strlen(note) : 0);
        /* Only this one is tried now: the others are tried each second. */
        u = rs->unfinished;
        if (!u || u->claim != c)
                return; /* out of memory: left in the work area, its outcome noted */
        if (move_unfinished(rs, u, false)) {
                rs->unfinished = u->next;
                unfinished_free(u);
                return;
        }
        LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, c->original_path,
            "handled by a worker that stopped before it could move it out, and cannot be moved out yet: "
            "it waits in %s and is moved once it can be",
            c->claimed_path);
}

static int record(struct rule_state *rs, struct ferry__claim *c, const char *outcome, const char *why)
{
        char *relative = ferry__claim_relative(c);
        int e = relative ? ferry__store_record(rs->store, relative, &c->version, outcome, why) : -ENOMEM;

        free(relative);
        return e;
}

/* The record of one claim of the run that ended. */
static struct ferry_log_record run_record(const struct job *job, const struct ferry__claim *c,
                                          const struct ferry__exit *st, int64_t duration)
{
        struct ferry_log_record rec = ferry__claim_record(FERRY_LOG_DONE, job->rs->rule->name, c);

        rec.duration_ns = duration;
        rec.pid = job->pid;
        rec.attempt = (int)job->attempt;
        rec.exit_code = st->code;
        rec.signal = st->signal;
        return rec;
}

/* The handler succeeded: each file to the done folder (or deleted, or
 * recorded in place); one the done folder refuses waits to be moved. */
static void finish_done(struct job *job, const struct ferry__exit *st, int64_t duration)
{
        struct rule_state *rs = job->rs;
        struct ferry_runner *r = rs->runner;
        double took = (double)duration / FERRY__NSEC_PER_SEC;

        /* Before the file moves: a copy waiting for this one is judged after. */
        ferry__judge_record(job);

        for (size_t i = 0; i < job->count; i++) {
                struct ferry__claim *c = job->claims[i];
                struct ferry_log_record rec = run_record(job, c, st, duration);
                char *final = NULL, *relative = NULL;
                int e;

                if (c->in_place) {
                        e = record(rs, c, "done", NULL);
                        rec.kind = e < 0 ? FERRY_LOG_ERROR : FERRY_LOG_DONE;
                        if (e < 0) {
                                ferry__runner_record(r, &rec,
                                                     "handled, but cannot record it (%s): it will be handled again",
                                                     strerror(-e));
                        } else {
                                ferry__runner_record(r, &rec, "done in %.3fs; kept in place", took);
                                ferry__hook_queue(rs, false, c->original_path, c->original_path, NULL);
                        }
                        continue;
                }
                e = ferry__job_claim_finish(rs, c, rs->done.fd >= 0 ? &rs->done : NULL, &relative);
                if (e == 0 && relative && asprintf(&final, "%s/%s", rs->done.path, relative) < 0)
                        final = NULL;
                free(relative);
                rec.kind = e < 0 && e != -ENOENT ? FERRY_LOG_ERROR : FERRY_LOG_DONE;
                if (e == -ENOENT) {
                        ferry__runner_record(r, &rec, "done in %.3fs; the handler removed or moved the file itself",
                                             took);
                        ferry__hook_queue(rs, false, c->original_path, NULL, NULL);
                } else if (e < 0) {
                        ferry__runner_record(
                                r, &rec, "handled, but cannot %s%s (%s): it waits in %s and is moved once it can be",
                                rs->done.fd >= 0 ? "move it to " : "delete it", rs->done.fd >= 0 ? rs->done.path : "",
                                strerror(-e), c->claimed_path);
                        wait_to_move(rs, c, NULL, 0);
                        job->claims[i] = NULL;
                } else {
                        ferry__runner_record(r, &rec, "done in %.3fs%s%s", took, final ? ": " : "; deleted",
                                             final ? final : "");
                        ferry__hook_queue(rs, false, c->original_path, final, NULL);
                }
                free(final);
        }
        ferry__job_free(job);
}

void ferry__job_duplicate(struct job *job, const struct ferry__dedup_hit *hit)
{
        struct rule_state *rs = job->rs;
        struct ferry_runner *r = rs->runner;
        struct ferry__claim *c = job->claims[0];
        struct ferry_log_record rec = ferry__claim_record(FERRY_LOG_DONE, rs->rule->name, c);
        char *final = NULL, *relative = NULL, when[32] = "?", of[PATH_MAX + 64];
        time_t t = (time_t)(hit->at / FERRY__NSEC_PER_SEC);
        struct tm tm;
        int e;

        if (localtime_r(&t, &tm))
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(of, sizeof(of), "duplicate of %s (handled at %s%s)", hit->name, when,
                 c->hash_from_marker ? "; SHA-256 from its marker" : "");
        rec.duplicate_of = hit->name;
        r->stats.duplicates++;
        e = ferry__job_claim_finish(rs, c, rs->done.fd >= 0 ? &rs->done : NULL, &relative);
        if (e == 0 && relative && asprintf(&final, "%s/%s", rs->done.path, relative) < 0)
                final = NULL;
        free(relative);
        if (e == -ENOENT) {
                ferry__runner_record(r, &rec, "%s; the file went away meanwhile", of);
        } else if (e < 0) {
                rec.kind = FERRY_LOG_ERROR;
                ferry__runner_record(r, &rec, "%s; cannot %s%s (%s): it waits in %s and is moved once it can be", of,
                                     rs->done.fd >= 0 ? "move it to " : "delete it",
                                     rs->done.fd >= 0 ? rs->done.path : "", strerror(-e), c->claimed_path);
                wait_to_move(rs, c, NULL, 0);
                job->claims[0] = NULL;
        } else {
                /* No hook: nothing was handled for it to follow up. */
                ferry__runner_record(r, &rec, "%s, not handled%s%s", of, final ? ": " : "; deleted",
                                     final ? final : "");
        }
        free(final);
        ferry__job_free(job);
}

/* The handler failed with retries left: the job waits for its next run. */
static void schedule_retry(struct job *job, const struct ferry__exit *st, const char *why, int64_t duration)
{
        struct rule_state *rs = job->rs;
        struct ferry_rule *rule = rs->rule;
        char delay[32];

        (void)ferry__format_duration(backoff(rule, job->attempt), delay, sizeof(delay));
        job->retry_at = ferry__now() + backoff(rule, job->attempt);
        for (size_t i = 0; i < job->count; i++) {
                struct ferry_log_record rec = run_record(job, job->claims[i], st, duration);

                rec.kind = FERRY_LOG_RETRY;
                ferry__runner_record(rs->runner, &rec, "failed (%s); retry %u of %u in %s", why, job->attempt,
                                     rule->retries, delay);
        }
        memset(&job->child, 0, sizeof(job->child));
        job->child.pidfd = job->child.stderr_fd = -1;
        ferry__claim_note_handler(&rs->wa, job->claims, job->count, 0);
}

/* The handler failed for good: each file to the failed folder with its
 * note (or the note alone, for files kept in place); one the failed folder
 * refuses waits to be moved. */
static void finish_failed(struct job *job, const struct ferry__exit *st, const char *why, int64_t duration)
{
        struct rule_state *rs = job->rs;
        struct ferry_runner *r = rs->runner;
        char attempts[48] = "without a run"; /* refused (ferry__job_refuse) */

        if (job->attempt)
                snprintf(attempts, sizeof(attempts), "after %u attempt%s", job->attempt, job->attempt == 1 ? "" : "s");

        for (size_t i = 0; i < job->count; i++) {
                struct ferry__claim *c = job->claims[i];
                struct ferry_log_record rec = run_record(job, c, st, duration);
                char *final = NULL, *relative = NULL, *text;
                size_t len = 0;
                bool gone = false;
                int e;

                if (c->in_place) {
                        /* Left where it is; the note goes to the failed folder. */
                        relative = ferry__claim_relative(c);
                        e = record(rs, c, "failed", why);
                } else {
                        e = ferry__job_claim_finish(rs, c, &rs->failed, &relative);
                        if (e == -ENOENT) {
                                /* The handler removed or moved the file itself: its note still says why. */
                                gone = true;
                                e = 0;
                                relative = ferry__claim_relative(c);
                        }
                }
                text = failure_text(job, c, why, st, duration, &len);
                if (relative && (e == 0 || c->in_place)) {
                        if (text)
                                write_note(rs, c->original_path, relative, text, len);
                        if (asprintf(&final, "%s/%s", rs->failed.path, relative) < 0)
                                final = NULL;
                }
                free(relative);
                rec.kind = e < 0 ? FERRY_LOG_ERROR : FERRY_LOG_FAILED;
                if (e < 0 && !c->in_place) {
                        ferry__runner_record(r, &rec,
                                             "failed (%s); cannot move it to the failed folder (%s): it %s in %s%s",
                                             why, strerror(-e), text ? "waits" : "stays", c->claimed_path,
                                             text ? " and is moved once it can be" : "");
                        if (text) {
                                wait_to_move(rs, c, text, len);
                                job->claims[i] = NULL;
                                text = NULL;
                        }
                } else if (e < 0) {
                        ferry__runner_record(r, &rec, "failed (%s); cannot record it (%s): it stays in %s", why,
                                             strerror(-e), c->claimed_path);
                } else if (c->in_place || gone) {
                        ferry__runner_record(r, &rec, "failed (%s) %s; %s, note in %s.ferry-error", why, attempts,
                                             gone ? "the handler removed or moved the file itself" : "left in place",
                                             final ? final : "?");
                        ferry__hook_queue(rs, true, c->original_path, gone ? NULL : c->original_path, why);
                } else {
                        ferry__runner_record(r, &rec, "failed (%s) %s: %s", why, attempts, final);
                        ferry__hook_queue(rs, true, c->original_path, final, why);
                }
                free(text);
                free(final);
        }
        ferry__job_free(job);
}

/* Why the run failed, into reason, from how it ended; NULL: it succeeded. */
static const char *run_failure(const struct job *job, const struct ferry__exit *st, char *reason, size_t size)
{
        if (!job->timed_out && st->code == 0)
                return NULL;
        if (job->timed_out) {
                char took[32];

                (void)ferry__format_duration(job->rs->rule->timeout_ns, took, sizeof(took));
                snprintf(reason, size, "timed out after %s", took);
        } else if (st->signal) {
                snprintf(reason, size, "killed by signal %d (%s)", st->signal, strsignal(st->signal));
        } else {
                snprintf(reason, size, "exit status %d", st->code);
        }
        return reason;
}

void ferry__job_refuse(struct job *job, const char *why)
{
        job->started = ferry__now();
        finish_failed(job, &(struct ferry__exit){.code = -1}, why, 0);
}

void ferry__job_finish(struct job *job, const struct ferry__exit *st, const char *why)
{
        struct rule_state *rs = job->rs;
        struct ferry_runner *r = rs->runner;
        struct ferry_rule *rule = rs->rule;
        int64_t duration = ferry__now() - job->started;
        char reason[512];

        job->running = false;
        rs->running--;
        if (!why && !job->stopped)
                count_run(r, duration);
        if (!why)
                why = run_failure(job, st, reason, sizeof(reason));
        if (!why) {
                int e = deliver_output(job);

                if (e < 0) {
                        snprintf(reason, sizeof(reason), "cannot deliver the output to %s: %s", rule->output_dir,
                                 strerror(-e));
                        why = reason;
                }
        }
        if (job->output_temp) {
                if (job->output_fd >= 0)
                        close(job->output_fd);
                job->output_fd = -1;
                (void)unlinkat(rs->wa.output_fd, job->output_temp, 0);
                free(job->output_temp);
                job->output_temp = NULL;
        }
        if (!why)
                return finish_done(job, st, duration);
        /* Stopped by us, or a failure while stopping that has retries left:
         * the next run's business. */
        if (r->stopping && (job->stopped || job->attempt <= rule->retries))
                return ferry__job_return(job, true);
        if (job->attempt <= rule->retries)
                return schedule_retry(job, st, why, duration);
        finish_failed(job, st, why, duration);
}

/* Handlers' descendants that left their process group (setsid, daemons) and
 * outlived their parents were re-parented to us, the subreaper: kill and reap
 * them, so that no orphan survives its handler. Children that are running
 * handlers or hooks are left alone. */
void ferry__kill_orphans(struct ferry_runner *r)
{
        char buffer[4096];
        ssize_t n;
        int fd;

        fd = open(r->children_path, O_RDONLY | O_CLOEXEC);
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
                handler = pid == r->keeper.pid || ferry__hook_owns(r, (pid_t)pid);
                for (struct job *job = r->jobs; job && !handler; job = job->next)
                        handler = job->running && job->child.pid == pid;
                if (pid > 0 && !handler) {
                        (void)kill((pid_t)pid, SIGKILL);
                        (void)waitpid((pid_t)pid, NULL, 0);
                }
        }
}

void ferry__job_exited(struct job *job)
{
        struct ferry_runner *r = job->rs->runner;
        struct ferry__exit st = {.code = -1};

        pid_t pgid = job->child.pid;

        ferry__runner_epoll_del(r, job->child.pidfd);
        ferry__runner_epoll_del(r, job->child.stderr_fd);
        if (ferry__child_reap(&job->child, &st) < 0)
                st = (struct ferry__exit){.code = -1};
        ferry__keeper_remove(&r->keeper, pgid); /* reaping killed what was left of the group */
        ferry__job_finish(job, &st, NULL);
        ferry__kill_orphans(r);
}
