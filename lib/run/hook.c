/* hook.c: the on-done and on-failure hooks: a program run for each file once
 * it has reached its final place and its outcome was logged, to tell someone
 * (an alert, a chat message, a ticket).
 *
 * A hook is supervised as a handler is (its own process group, the rule's
 * user and environment, no stdin, stdout to ferry's, the tail of its stderr
 * kept, a timeout, the keeper, its orphans killed), but stands apart from the
 * handlers: it takes no handler slot, and how it ends never changes the
 * file's outcome. One that fails, times out or cannot start is logged once,
 * as a warning that names the hook, the file and why; one that succeeds is
 * not logged.
 *
 * At most jobs hooks of a rule run at once; the others wait in memory, in the
 * order their files ended, at most HOOKS_WAITING_MAX a rule (beyond that, a
 * hook is not run, and a warning says so). A hook queued in one round of the
 * loop starts at the top of the next: after the caller of the runner wrote
 * out its file's log line. From a stop on no hook starts: the running ones
 * end by their timeout, the waiting ones (and those of files that end while
 * the runner drains) are dropped, counted, and said in one line at the end.
 *
 * Hook states:
 *   waiting   in its rule's queue (rs->hooks_head), not started
 *   running   its program runs (child valid), in the runner's list (r->hooks)
 */
#include "runner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A hook's timeout when the rule sets none: a hook that calls a service must
 * not hold a slot, nor a stop, for ever. */
#define HOOK_TIMEOUT_NS (60 * FERRY__NSEC_PER_SEC)
/* Hooks of a rule waiting for a slot at most: each holds its file's paths and note. */
#define HOOKS_WAITING_MAX 10000
/* Lines of a failed hook's stderr that its warning quotes. */
#define HOOK_STDERR_LINES 3

struct hook {
        struct hook *prev, *next; /* waiting: in the rule's queue (next only); running: in r->hooks */
        struct rule_state *rs;
        bool failed; /* on-failure; else on-done */
        char *path;  /* where the file was found: {} and the log's path */
        char *dest;  /* {dest}: where it is now; "" when nowhere */
        char *note;  /* {note}: why it failed; "" for on-done */
        struct ferry__child child;
        struct source pid_source, err_source;
        int64_t term_at; /* when it gets SIGTERM */
        int64_t kill_at; /* when SIGKILL follows; 0: not yet; INT64_MAX: sent */
        bool timed_out;
};

static const char *hook_key(bool failed)
{
        return failed ? "on-failure" : "on-done";
}

static char *const *hook_command(const struct hook *h)
{
        return h->failed ? h->rs->rule->on_failure : h->rs->rule->on_done;
}

static int64_t hook_timeout(const struct ferry_rule *rule)
{
        return rule->timeout_ns ? rule->timeout_ns : HOOK_TIMEOUT_NS;
}

/* NULL-safe; a running hook's child must have been reaped or abandoned. */
static void hook_free(struct hook *h)
{
        if (!h)
                return;
        free(h->path);
        free(h->dest);
        free(h->note);
        free(h);
}

void ferry__hook_queue(struct rule_state *rs, bool failed, const char *path, const char *dest, const char *note)
{
        struct ferry_runner *r = rs->runner;
        char *const *command = failed ? rs->rule->on_failure : rs->rule->on_done;
        struct hook *h;

        if (!command)
                return;
        if (r->stopping) {
                r->hooks_dropped++;
                return;
        }
        if (rs->hooks_waiting >= HOOKS_WAITING_MAX) {
                LOG(r, FERRY_LOG_WARNING, rs->rule->name, path,
                    "%s hook %s not run: %d hooks of the rule wait already for one of its %u slots (the hooks end "
                    "slower than files do: make the hook faster, or raise jobs)",
                    hook_key(failed), command[0], HOOKS_WAITING_MAX, rs->rule->jobs);
                return;
        }
        h = calloc(1, sizeof(*h));
        if (h) {
                h->path = strdup(path);
                h->dest = strdup(dest ? dest : "");
                h->note = strdup(note ? note : "");
        }
        if (!h || !h->path || !h->dest || !h->note) {
                LOG(r, FERRY_LOG_WARNING, rs->rule->name, path, "%s hook %s not run: out of memory", hook_key(failed),
                    command[0]);
                hook_free(h);
                return;
        }
        h->rs = rs;
        h->failed = failed;
        h->child.pidfd = h->child.stderr_fd = -1;
        h->pid_source = (struct source){SOURCE_HOOK_PIDFD, h};
        h->err_source = (struct source){SOURCE_HOOK_STDERR, h};
        if (rs->hooks_tail)
                rs->hooks_tail->next = h;
        else
                rs->hooks_head = h;
        rs->hooks_tail = h;
        rs->hooks_waiting++;
}

/* Starts h's program, or says why it cannot and frees h. */
static void hook_start(struct hook *h)
{
        struct rule_state *rs = h->rs;
        struct ferry_runner *r = rs->runner;
        const struct ferry_rule *rule = rs->rule;
        char *const *command = hook_command(h);
        const char *slash = strrchr(h->path, '/');
        struct ferry__placeholders values = {.path = h->path, .dest = h->dest, .note = h->note};
        struct ferry__spawn_request req = {.stdin_fd = -1, .stdout_fd = STDOUT_FILENO};
        char **argv = NULL, **envp = NULL;
        size_t n = rs->env_count;
        int e = ferry__argv_expand(command, &values, &argv);

        if (e == 0 && !(envp = calloc(n + 5, sizeof(*envp))))
                e = -ENOMEM;
        if (e == 0) {
                for (size_t i = 0; i < n; i++)
                        envp[i] = rs->env[i]; /* borrowed: only the added ones are freed */
                envp[n++] = ferry__env_pair("FERRY_RULE", rule->name);
                envp[n++] = ferry__env_pair("FERRY_OUTCOME", h->failed ? "failed" : "done");
                envp[n++] = ferry__env_pair("FERRY_NAME", slash ? slash + 1 : h->path);
                envp[n++] = ferry__env_pair("FERRY_ORIGINAL_PATH", h->path);
                for (size_t i = rs->env_count; i < n; i++)
                        if (!envp[i])
                                e = -ENOMEM;
        }
        if (e == 0) {
                req.argv = argv;
                req.envp = envp;
                req.switch_user = rule->user != NULL;
                req.uid = rule->uid;
                req.gid = rule->gid;
                e = ferry__spawn(&req, &h->child);
        }
        if (envp)
                for (size_t i = rs->env_count; i < n; i++)
                        free(envp[i]);
        free(envp);
        ferry__argv_free(argv);
        if (e < 0) {
                LOG(r, FERRY_LOG_WARNING, rule->name, h->path, "%s hook %s cannot start: %s", hook_key(h->failed),
                    command[0], strerror(-e));
                hook_free(h);
                return;
        }
        ferry__keeper_add(&r->keeper, h->child.pid);
        h->term_at = ferry__now() + hook_timeout(rule);
        (void)ferry__runner_epoll_add(r, h->child.pidfd, &h->pid_source);
        if (h->child.stderr_fd >= 0)
                (void)ferry__runner_epoll_add(r, h->child.stderr_fd, &h->err_source);
        h->prev = NULL;
        h->next = r->hooks;
        if (h->next)
                h->next->prev = h;
        r->hooks = h;
        rs->hooks_running++;
}

void ferry__hooks_start(struct ferry_runner *r)
{
        for (struct rule_state *rs = r->states; rs; rs = rs->next)
                while (rs->hooks_head && (r->stopping || rs->hooks_running < rs->rule->jobs)) {
                        struct hook *h = rs->hooks_head;

                        rs->hooks_head = h->next;
                        if (!rs->hooks_head)
                                rs->hooks_tail = NULL;
                        h->next = NULL;
                        rs->hooks_waiting--;
                        if (r->stopping) {
                                r->hooks_dropped++;
                                hook_free(h);
                        } else {
                                hook_start(h);
                        }
                }
}

/* Takes h out of the running list, and its fds out of the loop. */
static void hook_unlink(struct hook *h)
{
        struct ferry_runner *r = h->rs->runner;

        if (h->prev)
                h->prev->next = h->next;
        else
                r->hooks = h->next;
        if (h->next)
                h->next->prev = h->prev;
        h->prev = h->next = NULL;
        h->rs->hooks_running--;
        ferry__runner_epoll_del(r, h->child.pidfd);
        ferry__runner_epoll_del(r, h->child.stderr_fd);
}

void ferry__hook_exited(struct hook *h)
{
        struct rule_state *rs = h->rs;
        struct ferry_runner *r = rs->runner;
        struct ferry__exit st = {.code = -1};
        pid_t pgid = h->child.pid;
        char reason[96], took[32];
        const char *tail;
        size_t tail_len = 0;

        hook_unlink(h);
        if (ferry__child_reap(&h->child, &st) < 0)
                st = (struct ferry__exit){.code = -1};
        ferry__keeper_remove(&r->keeper, pgid); /* reaping killed what was left of the group */
        if (h->timed_out) {
                (void)ferry__format_duration(hook_timeout(rs->rule), took, sizeof(took));
                snprintf(reason, sizeof(reason), "timed out after %s", took);
        } else if (st.signal) {
                snprintf(reason, sizeof(reason), "killed by signal %d (%s)", st.signal, strsignal(st.signal));
        } else if (st.code != 0) {
                snprintf(reason, sizeof(reason), "exit status %d", st.code);
        } else {
                reason[0] = '\0';
        }
        if (reason[0]) {
                tail = ferry__child_stderr_lines(&h->child, HOOK_STDERR_LINES, &tail_len);
                LOG(r, FERRY_LOG_WARNING, rs->rule->name, h->path, "%s hook %s failed (%s)%s%.*s", hook_key(h->failed),
                    hook_command(h)[0], reason, tail_len ? "; its stderr: " : "", (int)tail_len, tail);
        }
        hook_free(h);
        ferry__kill_orphans(r);
}

void ferry__hook_stderr(struct hook *h, bool hangup)
{
        /* At hang-up, leave the set first: reading to the end closes the fd. */
        if (hangup)
                ferry__runner_epoll_del(h->rs->runner, h->child.stderr_fd);
        ferry__child_read_stderr(&h->child);
}

bool ferry__hook_owns(const struct ferry_runner *r, pid_t pid)
{
        for (const struct hook *h = r->hooks; h; h = h->next)
                if (h->child.pid == pid)
                        return true;
        return false;
}

void ferry__hooks_check_timers(struct ferry_runner *r, int64_t now)
{
        for (struct hook *h = r->hooks; h; h = h->next) {
                if (!h->kill_at && now >= h->term_at) {
                        h->timed_out = true;
                        ferry__child_signal(&h->child, SIGTERM);
                        h->kill_at = now + h->rs->rule->kill_after_ns;
                } else if (h->kill_at && h->kill_at != INT64_MAX && now >= h->kill_at) {
                        ferry__child_signal(&h->child, SIGKILL);
                        h->kill_at = INT64_MAX;
                }
        }
}

int64_t ferry__hooks_deadline(const struct ferry_runner *r, int64_t next)
{
        for (const struct hook *h = r->hooks; h; h = h->next) {
                int64_t at = h->kill_at ? h->kill_at : h->term_at;

                if (at < next)
                        next = at;
        }
        /* A hook that may start now starts at the top of the next round. */
        for (const struct rule_state *rs = r->states; rs; rs = rs->next)
                if (rs->hooks_head && (r->stopping || rs->hooks_running < rs->rule->jobs))
                        return ferry__now();
        return next;
}

void ferry__hooks_stopped(struct ferry_runner *r)
{
        /* The ones still waiting, and, when the runner is freed before it
         * drained, the ones still running: killed with their groups. */
        ferry__hooks_start(r);
        while (r->hooks) {
                struct hook *h = r->hooks;
                pid_t pgid = h->child.pid;

                hook_unlink(h);
                ferry__child_abandon(&h->child);
                ferry__keeper_remove(&r->keeper, pgid);
                LOG(r, FERRY_LOG_WARNING, h->rs->rule->name, h->path, "%s hook %s killed: ferry stopped at once",
                    hook_key(h->failed), hook_command(h)[0]);
                hook_free(h);
        }
        if (r->hooks_dropped)
                LOG(r, FERRY_LOG_WARNING, NULL, NULL,
                    "%llu hook%s not run: ferry stopped before %s turn (a hook does not start once ferry stops)",
                    r->hooks_dropped, r->hooks_dropped == 1 ? "" : "s", r->hooks_dropped == 1 ? "its" : "their");
        r->hooks_dropped = 0;
}
