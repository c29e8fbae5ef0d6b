/* metrics.c: `ferry run --metrics-file`: the runner's counters as a file in
 * the Prometheus text exposition format, for node_exporter's textfile
 * collector (or anything else that reads that format).
 *
 * The file is replaced atomically: written under a temporary name in its own
 * folder (".NAME.XXXXXX", which the collector ignores, as it reads only
 * *.prom), then renamed over the old one, so a reader never sees half of it.
 * It is not synced: after a crash an old or empty file is harmless, and a
 * sync every few seconds would stall the loop on a busy disk.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file is written at most this often while the counters change. */
#define METRICS_INTERVAL_NS (5 * INT64_C(1000000000))

bool metrics_path_usable(const char *path)
{
        const char *slash = strrchr(path, '/');
        char *folder;
        struct stat st;
        bool ok;

        if (!*path || (slash && !slash[1])) {
                cli_error("metrics file '%s': give the path of a file, such as %s", path,
                          "/var/lib/prometheus/node-exporter/ferry.prom");
                return false;
        }
        folder = slash == path ? strdup("/") : slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
        if (!folder) {
                cli_error("out of memory");
                return false;
        }
        errno = 0;
        ok = stat(folder, &st) == 0 && S_ISDIR(st.st_mode);
        if (!ok)
                cli_error("metrics file %s: its folder %s: %s", path, folder, strerror(errno ? errno : ENOTDIR));
        free(folder);
        return ok;
}

int metrics_set_path(struct metrics *m, const char *path)
{
        char *copy = NULL;
        mode_t mask;

        if (path && !(copy = strdup(path)))
                return -ENOMEM;
        free(m->path);
        m->path = copy;
        m->written_at = 0;
        m->failing = false;
        /* mkstemp(3) makes 0600; the collector runs as another user, so the
         * file gets the mode a plain creat(2) would give it. */
        mask = umask(0);
        umask(mask);
        m->mode = 0666 & ~mask;
        return 0;
}

void metrics_free(struct metrics *m)
{
        free(m->path);
        m->path = NULL;
}

static void counter(FILE *f, const char *name, const char *help, uint64_t value)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, value);
}

static void gauge(FILE *f, const char *name, const char *help, uint64_t value)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRIu64 "\n", name, help, name, name, value);
}

/* A gauge with one line per rule. */
struct rule_gauge {
        struct ferry_runner *runner;
        FILE *f;
        const char *metric;
        int (*value_of)(struct ferry_runner *runner, const char *name); /* < 0: no such rule */
};

static int rule_line(void *userdata, struct ferry_rule *rule)
{
        const struct rule_gauge *g = userdata;
        const char *name = ferry_rule_name(rule);
        int value = g->value_of(g->runner, name);

        /* Rule names are letters, digits, '-', '_' and '.': nothing to escape. */
        if (value >= 0)
                fprintf(g->f, "%s{rule=\"%s\"} %d\n", g->metric, name, value);
        return 0;
}

/* The whole exposition: every metric with its HELP and TYPE lines first. */
static void render(FILE *f, struct ferry_runner *runner, const struct ferry_runner_stats *st)
{
        static const char duration[] = "ferry_handler_duration_seconds";

        counter(f, "ferry_files_ready_total", "Files the watchers reported completely written.", st->ready);
        counter(f, "ferry_files_claimed_total", "Files claimed for a handler, taken-over claims included.",
                st->claimed);
        counter(f, "ferry_files_done_total", "Files whose handler succeeded.", st->done);
        counter(f, "ferry_files_failed_total", "Files whose handler failed for good.", st->failed);
        counter(f, "ferry_files_returned_total", "Claims given back to the queue at a stop or reload.", st->returned);
        counter(f, "ferry_handler_retries_total", "Handler runs that failed and were run again.", st->retried);
        counter(f, "ferry_rescans_total", "Kernel event queue overflows recovered by rescanning.", st->rescans);
        counter(f, "ferry_errors_total", "Errors: folders that cannot be watched, claims or moves that failed.",
                st->errors);
        counter(f, "ferry_files_purged_total",
                "Files removed from done and failed folders, older than their retention.", st->purged);
        counter(f, "ferry_files_duplicate_total",
                "Files sent to done unhandled: their content was handled within the dedup window.", st->duplicates);
        gauge(f, "ferry_queue_depth", "Ready files waiting for a handler slot.", st->queued);
        gauge(f, "ferry_handlers_running", "Handlers running now.", st->running);
        gauge(f, "ferry_claims_waiting", "Claimed files waiting for a retry.", st->waiting);
        gauge(f, "ferry_watches", "Kernel watches held.", st->watches);
        gauge(f, "ferry_folders_lost",
              "Rules whose folder went away (deleted, moved, unmounted), looked for until it "
              "is back.",
              st->folders_lost);
        gauge(f, "ferry_rules_paused", "Rules paused (ferry pause): no handler starts.", st->rules_paused);
        if (runner) {
                struct rule_gauge up = {runner, f, "ferry_rule_up", ferry_runner_rule_up};
                struct rule_gauge paused = {runner, f, "ferry_rule_paused", ferry_runner_rule_paused};

                fputs("# HELP ferry_rule_up 1 while the rule's folder is taken up, 0 while it is gone and looked "
                      "for.\n# TYPE ferry_rule_up gauge\n",
                      f);
                (void)ferry_runner_each_rule(runner, rule_line, &up);
                fputs("# HELP ferry_rule_paused 1 while the rule is paused (ferry pause), 0 when not.\n"
                      "# TYPE ferry_rule_paused gauge\n",
                      f);
                (void)ferry_runner_each_rule(runner, rule_line, &paused);
        }
        fprintf(f, "# HELP %s How long handler runs took, in seconds.\n# TYPE %s histogram\n", duration, duration);
        for (int i = 0; i < FERRY_DURATION_BUCKETS; i++) {
                /* The last bound is +Inf, whatever number stands for it. */
                if (i == FERRY_DURATION_BUCKETS - 1)
                        fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", duration, st->duration_count[i]);
                else
                        fprintf(f, "%s_bucket{le=\"%.15g\"} %" PRIu64 "\n", duration, FERRY_DURATION_BOUNDS[i],
                                st->duration_count[i]);
        }
        fprintf(f, "%s_sum %.9f\n%s_count %" PRIu64 "\n", duration, st->duration_sum, duration,
                st->duration_count[FERRY_DURATION_BUCKETS - 1]);
}

int metrics_write(struct metrics *m, struct ferry_runner *runner, const struct ferry_runner_stats *st, int64_t now)
{
        const char *slash, *name;
        char *temp = NULL;
        FILE *f = NULL;
        int fd = -1, e = 0;

        if (!m->path)
                return 0;
        m->written_at = now;
        m->written = *st;
        slash = strrchr(m->path, '/');
        name = slash ? slash + 1 : m->path;
        if (asprintf(&temp, "%.*s.%s.XXXXXX", (int)(name - m->path), m->path, name) < 0) {
                temp = NULL;
                e = ENOMEM;
                goto fail;
        }
        fd = mkostemp(temp, O_CLOEXEC);
        if (fd < 0) {
                e = errno;
                free(temp);
                temp = NULL;
                goto fail;
        }
        f = fdopen(fd, "w");
        if (!f) {
                e = errno;
                goto fail;
        }
        fd = -1; /* f owns it now */
        errno = 0;
        render(f, runner, st);
        if (fflush(f) != 0 || ferror(f) || fchmod(fileno(f), m->mode) < 0) {
                e = errno ? errno : EIO;
                goto fail;
        }
        e = fclose(f) == 0 ? 0 : errno;
        f = NULL;
        if (e)
                goto fail;
        if (rename(temp, m->path) < 0) {
                e = errno;
                goto fail;
        }
        free(temp);
        if (m->failing)
                cli_error("metrics: %s is written again", m->path);
        m->failing = false;
        return 0;
fail:
        if (f)
                fclose(f);
        if (fd >= 0)
                close(fd);
        if (temp) {
                unlink(temp);
                free(temp);
        }
        /* Said once until it works again: the files are handled all the same. */
        if (!m->failing)
                cli_error("cannot write the metrics file %s: %s; trying again while counters change", m->path,
                          strerror(e));
        m->failing = true;
        return -e;
}

int64_t metrics_update(struct metrics *m, struct ferry_runner *runner, const struct ferry_runner_stats *st, int64_t now)
{
        int64_t due;

        /* The struct holds only 64-bit counters and a double: no padding. */
        if (!m->path || memcmp(&m->written, st, sizeof(*st)) == 0)
                return INT64_MAX;
        due = m->written_at + METRICS_INTERVAL_NS;
        if (now < due)
                return due;
        (void)metrics_write(m, runner, st, now);
        return INT64_MAX;
}
