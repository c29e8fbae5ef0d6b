/* queue.c: the folder as a queue for programs that handle files themselves
 * (ferry_queue_*, ferry_claim_*).
 *
 * A queue is a runner whose jobs are handed to the caller instead of being
 * spawned: the same watch, claims, leases, recovery of dead workers' claims,
 * retries, outcome folders and notes as ferry run, so that a program and
 * ferry run workers can share one folder. A job handed out waits in the
 * runner's list until ferry_queue_take() gives it its handle; the caller's
 * verdict finishes it as a handler's exit would.
 */
#include "runner.h"

#include <errno.h>
#include <stdlib.h>

struct ferry_queue {
        struct ferry_runner *runner;
};

struct ferry_claim {
        struct job *job;
};

int ferry_queue_open(struct ferry_queue **ret_queue, struct ferry_rule *rule, ferry_log_cb log, void *userdata)
{
        struct ferry_queue *q;
        int e;

        if (!ret_queue || !rule) {
                ferry_rule_free(rule);
                return -EINVAL;
        }
        q = calloc(1, sizeof(*q));
        if (!q) {
                ferry_rule_free(rule);
                return -ENOMEM;
        }
        if (!rule->jobs_set)
                rule->jobs = 1;
        e = ferry_runner_new(&q->runner);
        if (e < 0) {
                ferry_rule_free(rule);
                free(q);
                return e;
        }
        q->runner->external = true;
        ferry_runner_set_log(q->runner, log, userdata);
        e = ferry_runner_add_rule(q->runner, rule);
        if (e == 0)
                e = ferry_runner_start(q->runner);
        if (e < 0) {
                ferry_queue_close(q);
                return e;
        }
        *ret_queue = q;
        return 0;
}

int ferry_queue_fd(struct ferry_queue *q)
{
        return q ? ferry_runner_fd(q->runner) : -EINVAL;
}

/* The oldest job handed out and not taken yet, or NULL. */
static struct job *handed(struct ferry_runner *r)
{
        struct job *found = NULL;

        if (!r->handed)
                return NULL;
        for (struct job *job = r->jobs; job; job = job->next)
                if (job->handed && !job->taken)
                        found = job; /* new jobs go first in the list: the last one found is the oldest */
        return found;
}

int ferry_queue_take(struct ferry_queue *q, int timeout_ms, struct ferry_claim **ret_claim)
{
        int64_t until;

        if (!q || !ret_claim)
                return -EINVAL;
        until = timeout_ms < 0 ? INT64_MAX : ferry__now() + (int64_t)timeout_ms * FERRY__NSEC_PER_MSEC;
        for (;;) {
                struct job *job = handed(q->runner);
                int64_t now;
                int e;

                if (job) {
                        struct ferry_claim *c = calloc(1, sizeof(*c));

                        if (!c)
                                return -ENOMEM;
                        c->job = job;
                        job->taken = c;
                        q->runner->handed--;
                        *ret_claim = c;
                        return 0;
                }
                now = ferry__now();
                if (now >= until && timeout_ms >= 0) {
                        /* Nothing handed out: still, what is due is done (leases). */
                        e = ferry_runner_dispatch(q->runner, 0);
                        if (e < 0)
                                return e;
                        if (handed(q->runner))
                                continue;
                        return -ETIMEDOUT;
                }
                e = ferry_runner_dispatch(q->runner,
                                          until == INT64_MAX ? -1
                                                             : (int)((until - now + FERRY__NSEC_PER_MSEC - 1) /
                                                                     FERRY__NSEC_PER_MSEC));
                if (e < 0)
                        return e;
                if (e == 0)
                        return -ESHUTDOWN;
        }
}

const char *ferry_claim_path(const struct ferry_claim *c)
{
        return c ? c->job->claims[0]->claimed_path : NULL;
}

const char *ferry_claim_original_path(const struct ferry_claim *c)
{
        return c ? c->job->claims[0]->original_path : NULL;
}

/* Ends the job as a handler's exit would: done, or failed with reason. */
static int finish(struct ferry_claim *c, const char *reason)
{
        struct job *job;

        if (!c)
                return -EINVAL;
        job = c->job;
        job->handed = false;
        job->taken = NULL;
        free(c);
        ferry__job_finish(job, &(struct ferry__exit){.code = reason ? -1 : 0}, reason);
        return 0;
}

int ferry_claim_done(struct ferry_claim *c)
{
        return finish(c, NULL);
}

int ferry_claim_fail(struct ferry_claim *c, const char *reason)
{
        return finish(c, reason && *reason ? reason : "failed");
}

int ferry_claim_release(struct ferry_claim *c)
{
        struct job *job;

        if (!c)
                return -EINVAL;
        job = c->job;
        free(c);
        ferry__job_return(job, false);
        return 0;
}

int ferry_queue_renew(struct ferry_queue *q)
{
        int e;

        if (!q)
                return -EINVAL;
        e = ferry_runner_dispatch(q->runner, 0);
        return e < 0 ? e : 0;
}

void ferry_queue_close(struct ferry_queue *q)
{
        struct ferry_runner *r;

        if (!q)
                return;
        r = q->runner;
        if (r && r->started) {
                /* Every claim handed out goes back, taken or not. */
                for (struct job *job = r->jobs, *next; job; job = next) {
                        next = job->next;
                        if (job->handed) {
                                free(job->taken);
                                ferry__job_return(job, false);
                        }
                }
                r->handed = 0;
                ferry_runner_stop(r, 0);
                while (ferry_runner_dispatch(r, 1000) > 0)
                        ;
        }
        ferry_runner_free(r);
        free(q);
}
