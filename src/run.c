/* run.c: `ferry run`: the hot-folder daemon, one rule from the command line
 * or the rules of a config file; what it tells systemd and the metrics file. */
#include "cli.h"
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
        "Usage: ferry run [OPTION]... DIR -- PROGRAM [ARG]...\n"
        "   or: ferry run -c FILE [--check] [--grace DUR] [--log-format FMT]\n"
        "                 [--metrics-file PATH]\n"
        "Hand every file completely written into DIR to PROGRAM, exactly once; move it\n"
        "to a done folder on success, to a failed folder (with a .ferry-error note) on\n"
        "failure. No shell: {} {path} {name} {dir} {stem} {ext} ({paths} with --batch)\n"
        "in ARGs become one argument each.\n"
        "\n"
        "  -m, --match GLOB       only files whose name matches GLOB (repeatable; a GLOB\n"
        "                         with '/' matches the path relative to DIR)\n"
        "      --exclude GLOB     never files that match GLOB (repeatable)\n"
        "  -r, --recursive        also files in subdirectories\n"
        "      --ready POLICY     when a file is complete (default auto); see ferry-watch(1)\n"
        "  -j, --jobs N           handlers at once (default: number of CPUs)\n"
        "      --timeout DUR      stop a handler after DUR: SIGTERM, then SIGKILL\n"
        "      --kill-after DUR   from SIGTERM to SIGKILL (default 5s)\n"
        "      --retries N        attempts after the first failure (default 2)\n"
        "      --retry-delay DUR  first back-off, doubled each time (default 1s)\n"
        "      --done DIR         where handled files go (default DIR/.ferry/done)\n"
        "      --delete           delete handled files instead\n"
        "      --keep             leave handled files in place; DIR/.ferry/state.db\n"
        "                         records them, so a restart repeats nothing\n"
        "      --done-layout L    done files go into dated folders, e.g. %Y/%m/%d\n"
        "                         (%Y %m %d %H %M, local time)\n"
        "      --done-retention DUR, --failed-retention DUR  remove what has been in\n"
        "                         the done (failed) folder longer than DUR (e.g. 30d);\n"
        "                         without them nothing is ever removed\n"
        "      --dedup sha256|off  a file whose content was handled within the window\n"
        "                         goes to done as a duplicate, its handler not run\n"
        "                         (default off; not with --keep or --batch)\n"
        "      --dedup-window DUR  how long a handled content counts (default 7d)\n"
        "      --failed DIR       where failed files go (default DIR/.ferry/failed)\n"
        "      --output DIR       the handler's stdout becomes DIR/NAME, moved into\n"
        "                         place only on success\n"
        "      --stdin            the file is the handler's stdin\n"
        "      --batch N          up to N files per handler run, as {paths}\n"
        "      --rate N/s         start handlers N times a second at most (also N/m,\n"
        "                         N/h); a quiet second's worth may start at once\n"
        "      --order O          which waiting file goes first: ready (default: as\n"
        "                         they became ready), name, mtime or size (-desc for\n"
        "                         descending, e.g. mtime-desc)\n"
        "      --priority GLOB    files matching GLOB go first (repeatable: earlier\n"
        "                         globs first)\n"
        "      --min-size SIZE, --max-size SIZE  a file smaller or bigger (bytes, or\n"
        "                         with K, M, G, T) goes to the failed folder unhandled,\n"
        "                         with a note saying which limit\n"
        "      --max-age DUR      the same for a file last written longer ago than DUR\n"
        "                         when it was found (e.g. 7d)\n"
        "      --audit on|off     the audit trail in DIR/.ferry/audit, one JSON line per\n"
        "                         claim, start, outcome, requeue and purge, read by\n"
        "                         ferry history (default on)\n"
        "      --audit-retention DUR  remove the trail's days that ended longer than\n"
        "                         DUR ago (e.g. 365d; default: kept)\n"
        "      --pause-when-free-below N  start no handler while the done, failed or\n"
        "                         output folder's file system has less free than N\n"
        "                         (a percentage, e.g. 5%, or a size, e.g. 10G)\n"
        "      --on-done CMD      after each file reached the done folder, run CMD: a\n"
        "                         program and its arguments in one string, split as\n"
        "                         ferry.conf(5)'s command (quotes, no shell); {} {name}\n"
        "                         {dir} {stem} {ext} of where the file was found, {dest}\n"
        "                         where it is now\n"
        "      --on-failure CMD   the same after each file reached the failed folder;\n"
        "                         {note} says why it failed. A hook takes no handler\n"
        "                         slot and stops after --timeout (default 60s); one\n"
        "                         that fails is logged, the file's outcome stands\n"
        "      --backend B        auto (default), inotify, or poll; see ferry-watch(1)\n"
        "      --poll-interval DUR  how often polled folders are listed (default 2s)\n"
        "      --max-folders N    with -r, watch at most N folders, list up to N more\n"
        "                         every 5s (default 65536)\n"
        "      --max-queue N      track at most N files of the folder at once; the rest\n"
        "                         is listed once half are handled (memory stays bounded)\n"
        "      --require-file NAME  DIR counts as there only while it holds NAME\n"
        "                         (e.g. .ferry-root on a share: not taken for an empty\n"
        "                         mount point)\n"
        "      --on-folder-lost W  wait (default: said once, looked for until it is\n"
        "                         back) or exit (status 1, for a supervisor to restart)\n"
        "      --lease DUR        a claim whose worker is silent this long is taken\n"
        "                         over by another host's worker (default 60s)\n"
        "      --user NAME        run handlers as NAME (ferry must run as root)\n"
        "      --env NAME=VALUE   set NAME in the handlers' environment (repeatable)\n"
        "      --pass-env GLOB    pass ferry's variables whose names match GLOB, e.g.\n"
        "                         'AWS_*' (repeatable; by default only PATH, HOME,\n"
        "                         USER, LOGNAME, LANG, LC_*, TZ and TMPDIR pass)\n"
        "      --env-file FILE    set the variables of FILE (KEY=VALUE lines, as\n"
        "                         systemd's EnvironmentFile=; repeatable)\n"
        "      --symlinks         hand symlinks to the handler (default: skip them)\n"
        "      --name NAME        the rule's name in logs and work areas (default run)\n"
        "      --grace DUR        on SIGTERM, how long handlers may finish (default 30s)\n"
        "      --log-format FMT   text (default) or json, on stderr\n"
        "      --metrics-file PATH  write counters to PATH in the Prometheus text\n"
        "                         format, atomically, at most every 5s and at stop\n"
        "  -c, --config FILE      the rules of FILE (see ferry.conf(5)); SIGHUP reloads it\n"
        "      --check            check the options (or FILE) and exit\n"
        "  -h, --help             show this help\n"
        "\n"
        "Exit status: 0 stopped by SIGTERM/SIGINT, 1 error, 2 usage. See ferry-run(1).\n";

enum {
        OPT_EXCLUDE = 256,
        OPT_READY,
        OPT_TIMEOUT,
        OPT_KILL_AFTER,
        OPT_RETRIES,
        OPT_RETRY_DELAY,
        OPT_DONE,
        OPT_DELETE,
        OPT_KEEP,
        OPT_FAILED,
        OPT_OUTPUT,
        OPT_STDIN,
        OPT_BATCH,
        OPT_RATE,
        OPT_MIN_SIZE,
        OPT_ORDER,
        OPT_PRIORITY,
        OPT_MAX_SIZE,
        OPT_MAX_AGE,
        OPT_PAUSE_FREE,
        OPT_AUDIT,
        OPT_DONE_LAYOUT,
        OPT_DONE_RETENTION,
        OPT_FAILED_RETENTION,
        OPT_AUDIT_RETENTION,
        OPT_DEDUP,
        OPT_DEDUP_WINDOW,
        OPT_LEASE,
        OPT_USER,
        OPT_SYMLINKS,
        OPT_BACKEND,
        OPT_POLL_INTERVAL,
        OPT_MAX_FOLDERS,
        OPT_MAX_QUEUE,
        OPT_REQUIRE_FILE,
        OPT_ENV,
        OPT_PASS_ENV,
        OPT_ENV_FILE,
        OPT_ON_FOLDER_LOST,
        OPT_ON_DONE,
        OPT_ON_FAILURE,
        OPT_NAME,
        OPT_GRACE,
        OPT_LOG_FORMAT,
        OPT_METRICS_FILE,
        OPT_CHECK,
};

static const struct option options[] = {
        {"match", required_argument, NULL, 'm'},
        {"exclude", required_argument, NULL, OPT_EXCLUDE},
        {"recursive", no_argument, NULL, 'r'},
        {"ready", required_argument, NULL, OPT_READY},
        {"jobs", required_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"kill-after", required_argument, NULL, OPT_KILL_AFTER},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"retry-delay", required_argument, NULL, OPT_RETRY_DELAY},
        {"done", required_argument, NULL, OPT_DONE},
        {"delete", no_argument, NULL, OPT_DELETE},
        {"keep", no_argument, NULL, OPT_KEEP},
        {"failed", required_argument, NULL, OPT_FAILED},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"stdin", no_argument, NULL, OPT_STDIN},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"rate", required_argument, NULL, OPT_RATE},
        {"min-size", required_argument, NULL, OPT_MIN_SIZE},
        {"order", required_argument, NULL, OPT_ORDER},
        {"priority", required_argument, NULL, OPT_PRIORITY},
        {"max-size", required_argument, NULL, OPT_MAX_SIZE},
        {"max-age", required_argument, NULL, OPT_MAX_AGE},
        {"pause-when-free-below", required_argument, NULL, OPT_PAUSE_FREE},
        {"audit", required_argument, NULL, OPT_AUDIT},
        {"done-layout", required_argument, NULL, OPT_DONE_LAYOUT},
        {"done-retention", required_argument, NULL, OPT_DONE_RETENTION},
        {"failed-retention", required_argument, NULL, OPT_FAILED_RETENTION},
        {"audit-retention", required_argument, NULL, OPT_AUDIT_RETENTION},
        {"dedup", required_argument, NULL, OPT_DEDUP},
        {"dedup-window", required_argument, NULL, OPT_DEDUP_WINDOW},
        {"lease", required_argument, NULL, OPT_LEASE},
        {"user", required_argument, NULL, OPT_USER},
        {"symlinks", no_argument, NULL, OPT_SYMLINKS},
        {"backend", required_argument, NULL, OPT_BACKEND},
        {"poll-interval", required_argument, NULL, OPT_POLL_INTERVAL},
        {"max-folders", required_argument, NULL, OPT_MAX_FOLDERS},
        {"max-queue", required_argument, NULL, OPT_MAX_QUEUE},
        {"require-file", required_argument, NULL, OPT_REQUIRE_FILE},
        {"env", required_argument, NULL, OPT_ENV},
        {"pass-env", required_argument, NULL, OPT_PASS_ENV},
        {"env-file", required_argument, NULL, OPT_ENV_FILE},
        {"on-folder-lost", required_argument, NULL, OPT_ON_FOLDER_LOST},
        {"on-done", required_argument, NULL, OPT_ON_DONE},
        {"on-failure", required_argument, NULL, OPT_ON_FAILURE},
        {"name", required_argument, NULL, OPT_NAME},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"metrics-file", required_argument, NULL, OPT_METRICS_FILE},
        {"check", no_argument, NULL, OPT_CHECK},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0},
};

/* Options that map one to one to rule keys. */
static const char *rule_key(int c)
{
        switch (c) {
        case 'm': return "match";
        case OPT_EXCLUDE: return "exclude";
        case OPT_READY: return "ready";
        case 'j': return "jobs";
        case OPT_TIMEOUT: return "timeout";
        case OPT_KILL_AFTER: return "kill-after";
        case OPT_RETRIES: return "retries";
        case OPT_RETRY_DELAY: return "retry-delay";
        case OPT_DONE: return "done";
        case OPT_FAILED: return "failed";
        case OPT_OUTPUT: return "output";
        case OPT_BATCH: return "batch";
        case OPT_RATE: return "rate";
        case OPT_MIN_SIZE: return "min-size";
        case OPT_ORDER: return "order";
        case OPT_PRIORITY: return "priority";
        case OPT_MAX_SIZE: return "max-size";
        case OPT_MAX_AGE: return "max-age";
        case OPT_PAUSE_FREE: return "pause-when-free-below";
        case OPT_AUDIT: return "audit";
        case OPT_DONE_LAYOUT: return "done-layout";
        case OPT_DONE_RETENTION: return "done-retention";
        case OPT_FAILED_RETENTION: return "failed-retention";
        case OPT_AUDIT_RETENTION: return "audit-retention";
        case OPT_DEDUP: return "dedup";
        case OPT_DEDUP_WINDOW: return "dedup-window";
        case OPT_LEASE: return "lease";
        case OPT_USER: return "user";
        case OPT_BACKEND: return "backend";
        case OPT_POLL_INTERVAL: return "poll-interval";
        case OPT_MAX_FOLDERS: return "max-folders";
        case OPT_MAX_QUEUE: return "max-queue";
        case OPT_REQUIRE_FILE: return "require-file";
        case OPT_ENV: return "env";
        case OPT_PASS_ENV: return "pass-env";
        case OPT_ENV_FILE: return "env-file";
        case OPT_ON_FOLDER_LOST: return "on-folder-lost";
        case OPT_ON_DONE: return "on-done";
        case OPT_ON_FAILURE: return "on-failure";
        default: return NULL;
        }
}

#define DEFAULT_GRACE_NS (30 * INT64_C(1000000000))

struct setting {
        const char *key, *value;
};

static const char *const kind_names[] = {
        [FERRY_LOG_INFO] = "info",         [FERRY_LOG_CLAIMED] = "claimed", [FERRY_LOG_STARTED] = "started",
        [FERRY_LOG_DONE] = "done",         [FERRY_LOG_RETRY] = "retry",     [FERRY_LOG_FAILED] = "failed",
        [FERRY_LOG_RETURNED] = "returned", [FERRY_LOG_WARNING] = "warning", [FERRY_LOG_ERROR] = "error",
};

/* The log is written in whole lines, gathered while the runner works (a
 * burst logs three lines a file) and written out before each wait
 * (wait_for_work), when the next line would not fit, and at exit: one
 * write(2) for many lines, and never half a line, so that workers sharing a
 * log file cannot cut into each other's lines. */
static struct {
        char data[65536];
        size_t used;
        char line[32768]; /* one record, formatted by stdio (fmemopen) */
        FILE *stream;
} logq;

static void log_flush(void)
{
        size_t done = 0;

        while (done < logq.used) {
                ssize_t n = write(STDERR_FILENO, logq.data + done, logq.used - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break; /* stderr is gone: nothing to tell it */
                done += (size_t)n;
        }
        logq.used = 0;
}

/* The stream one record is formatted into, or NULL (out of memory). */
static FILE *log_begin(void)
{
        if (!logq.stream) {
                logq.stream = fmemopen(logq.line, sizeof(logq.line), "w");
                if (!logq.stream)
                        return NULL;
                (void)setvbuf(logq.stream, NULL, _IONBF, 0);
                atexit(log_flush);
        }
        rewind(logq.stream);
        return logq.stream;
}

static void log_end(FILE *out)
{
        long n = ftell(out);

        if (n <= 0)
                return;
        if ((size_t)n >= sizeof(logq.line) - 1) { /* cut short: still one line */
                n = sizeof(logq.line) - 1;
                logq.line[n - 1] = '\n';
        }
        if (logq.used + (size_t)n > sizeof(logq.data))
                log_flush();
        memcpy(logq.data + logq.used, logq.line, (size_t)n);
        logq.used += (size_t)n;
}

/* cli_error after the log lines gathered before it. */
#define run_error(...) (log_flush(), cli_error(__VA_ARGS__))

/* Under systemd, stderr may be the journal: then each line starts with its
 * syslog priority, "<3>" and so on, which journald takes off and keeps. It
 * is, when $JOURNAL_STREAM names the device and inode of our stderr. */
static void journal_priority(FILE *out, const struct ferry_log_record *rec)
{
        static int to_journal = -1;

        if (to_journal < 0) {
                const char *stream = getenv("JOURNAL_STREAM");
                unsigned long long dev, ino;
                struct stat st;

                to_journal = stream && sscanf(stream, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                             st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
        }
        if (!to_journal)
                return;
        switch (rec->kind) {
        case FERRY_LOG_ERROR: fputs("<3>", out); break;
        case FERRY_LOG_WARNING:
        case FERRY_LOG_FAILED: fputs("<4>", out); break;
        case FERRY_LOG_RETRY:
        case FERRY_LOG_RETURNED: fputs("<5>", out); break;
        default: fputs("<6>", out); break;
        }
}

static void log_text(void *userdata, const struct ferry_log_record *rec)
{
        FILE *out = log_begin();

        (void)userdata;
        if (!out)
                return;
        journal_priority(out, rec);
        fprintf(out, "ferry: %s", kind_names[rec->kind]);
        if (rec->rule)
                fprintf(out, " [%s]", rec->rule);
        if (rec->path) {
                fputc(' ', out);
                output_escaped(out, rec->path, rec->path_len);
        }
        /* Messages quote paths (a destination, a folder): escaped too, one record a line. */
        fputs(": ", out);
        output_escaped(out, rec->message, strlen(rec->message));
        fputc('\n', out);
        log_end(out);
}

static void log_json(void *userdata, const struct ferry_log_record *rec)
{
        FILE *out = log_begin();
        struct timespec ts;

        (void)userdata;
        if (!out)
                return;
        journal_priority(out, rec);
        clock_gettime(CLOCK_REALTIME, &ts);
        fprintf(out, "{\"time\":%lld.%03ld,\"event\":\"%s\"", (long long)ts.tv_sec, ts.tv_nsec / 1000000,
                kind_names[rec->kind]);
        if (rec->rule)
                ferry_json_field(out, "rule", rec->rule, strlen(rec->rule));
        if (rec->path)
                ferry_json_field(out, "path", rec->path, rec->path_len);
        ferry_json_field(out, "message", rec->message, strlen(rec->message));
        if (rec->duration_ns >= 0)
                fprintf(out, ",\"duration\":%.6f", (double)rec->duration_ns / 1e9);
        if (rec->pid)
                fprintf(out, ",\"pid\":%d", rec->pid);
        if (rec->attempt)
                fprintf(out, ",\"attempt\":%d", rec->attempt);
        if (!rec->duplicate_of &&
            (rec->kind == FERRY_LOG_DONE || rec->kind == FERRY_LOG_RETRY || rec->kind == FERRY_LOG_FAILED))
                fprintf(out, ",\"exit_code\":%d,\"signal\":%d", rec->exit_code, rec->signal);
        if (rec->path && rec->size >= 0)
                fprintf(out, ",\"size\":%lld", (long long)rec->size);
        if (rec->sha256)
                ferry_json_field(out, "sha256", rec->sha256, strlen(rec->sha256));
        if (rec->duplicate_of)
                ferry_json_field(out, "duplicate_of", rec->duplicate_of, strlen(rec->duplicate_of));
        fputs("}\n", out);
        log_end(out);
}

/* Where the rules come from: a config file, or the command line. */
struct source {
        const char *config_path;  /* -c FILE, or NULL */
        struct setting *settings; /* the command line's rule */
        size_t count;
        const char *name, *dir;
        char **command;
        struct config config; /* grace, log format, metrics file; the command line wins */
        bool grace_given, json_given;
        const char *metrics_option; /* --metrics-file, or NULL */
};

/* The metrics file in force: the command line's, else the config file's. */
static const char *metrics_path(const struct source *src)
{
        return src->metrics_option ? src->metrics_option : src->config.metrics_file;
}

/* Builds a runner with the rules of the source into *ret_runner. Returns -1
 * on success, or the exit code after printing why: 2 for what the user must
 * change in the options or the file, 1 for a folder that is missing. On
 * success with a config file, src->config holds its settings; the metrics
 * file it held before is not freed: the caller owns it. */
static int build(struct source *src, struct ferry_runner **ret_runner)
{
        struct ferry_runner *runner = NULL;
        struct ferry_rule *rule = NULL;
        struct config config = src->config;
        char error[2048];
        int r, status = EXIT_USAGE;

        if (src->metrics_option && !metrics_path_usable(src->metrics_option))
                return EXIT_FAILURE_RUNTIME;
        r = ferry_runner_new(&runner);
        if (r < 0) {
                run_error("cannot start: %s", strerror(-r));
                return EXIT_FAILURE_RUNTIME;
        }
        if (src->config_path) {
                if (config_load(src->config_path, runner, &config, error, sizeof(error)) < 0) {
                        run_error("%s", error);
                        goto fail;
                }
                if (!src->metrics_option && config.metrics_file && !metrics_path_usable(config.metrics_file)) {
                        free(config.metrics_file);
                        status = EXIT_FAILURE_RUNTIME;
                        goto fail;
                }
                if (!src->grace_given)
                        src->config.grace_ns = config.grace_ns;
                if (!src->json_given)
                        src->config.json = config.json;
                src->config.metrics_file = config.metrics_file;
        } else {
                r = ferry_rule_new(&rule, src->name, src->dir);
                if (r < 0) {
                        run_error("invalid rule name '%s' (letters, digits, '-', '_', '.')", src->name);
                        goto fail;
                }
                for (size_t i = 0; i < src->count; i++)
                        if (ferry_rule_set(rule, src->settings[i].key, src->settings[i].value) < 0)
                                goto bad_rule;
                if (ferry_rule_set_command(rule, src->command) < 0)
                        goto bad_rule;
                r = ferry_rule_check(rule);
                if (r < 0) {
                        if (r == -ENOENT)
                                status = EXIT_FAILURE_RUNTIME;
                        goto bad_rule;
                }
                r = ferry_runner_add_rule(runner, rule);
                rule = NULL;
                if (r < 0) {
                        run_error("cannot add the rule: %s", strerror(-r));
                        goto fail;
                }
        }
        ferry_runner_set_log(runner, src->config.json ? log_json : log_text, NULL);
        *ret_runner = runner;
        return -1;
bad_rule:
        run_error("%s", ferry_rule_explain(rule));
fail:
        ferry_rule_free(rule);
        ferry_runner_free(runner);
        return status;
}

/* ---- what systemd and the metrics file are told -------------------------------
 *
 * Under systemd (Type=notify), ferry says READY=1 once its rules run: the
 * folders are watched and the files already in them are known to the runner,
 * which hands them out without further events. STATUS= lines carry the
 * counts, at most once a second. A reload is bracketed by RELOADING=1 and
 * READY=1, a stop announced by STOPPING=1. With WatchdogSec= set, the loop
 * says WATCHDOG=1 every half period, so a loop that hangs gets restarted.
 */

#define SECOND_NS INT64_C(1000000000)

struct service {
        struct notifier notifier;
        struct metrics metrics;
        struct ferry_runner_stats before; /* counters of the runners that reloads replaced */
        uint64_t shown[7];                /* queued, running, waiting, done, failed, lost, paused last sent */
        int64_t shown_at;                 /* when that STATUS= went out */
        int64_t watchdog_at;              /* when the next WATCHDOG=1 is due */
        bool stopping;                    /* STOPPING=1 was sent */
};

/* The runner's counters, with those of the runners it replaced added, so
 * that counters never go back at a reload. */
static void service_stats(const struct service *s, struct ferry_runner *runner, struct ferry_runner_stats *ret)
{
        const struct ferry_runner_stats *b = &s->before;

        if (ferry_runner_stats(runner, ret) < 0)
                *ret = (struct ferry_runner_stats){0};
        ret->ready += b->ready;
        ret->claimed += b->claimed;
        ret->done += b->done;
        ret->failed += b->failed;
        ret->retried += b->retried;
        ret->returned += b->returned;
        ret->rescans += b->rescans;
        ret->errors += b->errors;
        for (int i = 0; i < FERRY_DURATION_BUCKETS; i++)
                ret->duration_count[i] += b->duration_count[i];
        ret->duration_runs += b->duration_runs;
        ret->duration_sum += b->duration_sum;
}

/* Keeps the counters of a runner a reload replaces (its "now" fields end with it). */
static void service_retire(struct service *s, struct ferry_runner *runner)
{
        struct ferry_runner_stats st;

        service_stats(s, runner, &st);
        st.queued = st.running = st.waiting = st.watches = st.found_at_start = st.folders_lost = st.rules_paused = 0;
        s->before = st;
}

/* "Q queued, R running, D done, F failed", as STATUS= and the log say it. */
static void status_text(char *buf, size_t size, const struct ferry_runner_stats *st)
{
        int n = snprintf(buf, size, "%" PRIu64 " queued, %" PRIu64 " running, ", st->queued, st->running);

        if (n >= 0 && (size_t)n < size && st->waiting)
                n += snprintf(buf + n, size - (size_t)n, "%" PRIu64 " waiting to retry, ", st->waiting);
        if (n >= 0 && (size_t)n < size)
                n += snprintf(buf + n, size - (size_t)n, "%" PRIu64 " done, %" PRIu64 " failed", st->done, st->failed);
        if (n >= 0 && (size_t)n < size && st->folders_lost)
                n += snprintf(buf + n, size - (size_t)n, "; %" PRIu64 " folder%s gone, waiting for %s (see the log)",
                              st->folders_lost, st->folders_lost == 1 ? "" : "s",
                              st->folders_lost == 1 ? "it" : "them");
        if (n >= 0 && (size_t)n < size && st->rules_paused)
                snprintf(buf + n, size - (size_t)n, "; %" PRIu64 " rule%s paused (ferry resume)", st->rules_paused,
                         st->rules_paused == 1 ? "" : "s");
}

static void status_remember(struct service *s, const struct ferry_runner_stats *st)
{
        s->shown[0] = st->queued;
        s->shown[1] = st->running;
        s->shown[2] = st->waiting;
        s->shown[3] = st->done;
        s->shown[4] = st->failed;
        s->shown[5] = st->folders_lost;
        s->shown[6] = st->rules_paused;
        s->shown_at = cli_now();
}

/* READY=1, with what the runner found: after the start and after a reload. */
static void service_ready(struct service *s, struct ferry_runner *runner, const char *what)
{
        struct ferry_runner_stats st;
        char counts[256];

        service_stats(s, runner, &st);
        status_text(counts, sizeof(counts), &st);
        notify_send(&s->notifier, "READY=1\nSTATUS=%s: %" PRIu64 " file%s present at start; %s", what,
                    st.found_at_start, st.found_at_start == 1 ? "" : "s", counts);
        status_remember(s, &st);
        (void)metrics_write(&s->metrics, runner, &st, cli_now());
}

static void service_stopping(struct service *s, int64_t grace_ns)
{
        if (s->stopping)
                return;
        s->stopping = true;
        notify_send(&s->notifier, "STOPPING=1\nSTATUS=stopping: running handlers may finish within %.3gs",
                    (double)grace_ns / 1e9);
}

/* Sends what is due (WATCHDOG=1, STATUS= when the counts changed, the
 * metrics file); returns when something will be due next, or INT64_MAX. */
static int64_t service_tick(struct service *s, struct ferry_runner *runner)
{
        struct ferry_runner_stats st;
        int64_t now = cli_now(), next = INT64_MAX;

        if (s->notifier.watchdog_ns > 0) {
                if (now >= s->watchdog_at) {
                        notify_send(&s->notifier, "WATCHDOG=1");
                        s->watchdog_at = now + s->notifier.watchdog_ns / 2;
                }
                next = s->watchdog_at;
        }
        if (s->notifier.fd < 0 && !s->metrics.path)
                return next;
        service_stats(s, runner, &st);
        if (s->notifier.fd >= 0 && !s->stopping &&
            (st.queued != s->shown[0] || st.running != s->shown[1] || st.waiting != s->shown[2] ||
             st.done != s->shown[3] || st.failed != s->shown[4] || st.folders_lost != s->shown[5] ||
             st.rules_paused != s->shown[6])) {
                int64_t due = s->shown_at + SECOND_NS;

                if (now >= due) {
                        char counts[256];

                        status_text(counts, sizeof(counts), &st);
                        notify_send(&s->notifier, "STATUS=%s", counts);
                        status_remember(s, &st);
                } else if (due < next) {
                        next = due;
                }
        }
        int64_t metrics_due = metrics_update(&s->metrics, runner, &st, now);

        return metrics_due < next ? metrics_due : next;
}

/* poll(2)'s timeout until deadline (CLOCK_MONOTONIC ns; INT64_MAX: none). */
static int timeout_until(int64_t deadline)
{
        int64_t left;

        if (deadline == INT64_MAX)
                return -1;
        left = deadline - cli_now();
        if (left <= 0)
                return 0;
        return left / 1000000 >= INT_MAX ? INT_MAX : (int)((left + 999999) / 1000000);
}

/* Waits in poll(2), the log written out first (logq). */
static int wait_for_work(struct pollfd *fds, nfds_t count, int timeout_ms)
{
        log_flush();
        return poll(fds, count, timeout_ms) < 0 && errno != EINTR ? -1 : 0;
}

/* Stops runner gracefully and waits until it is drained, still telling
 * systemd and the metrics file how it goes. Returns 1 when a stop signal came
 * meanwhile (the caller must then stop, not go on), 0, or -errno. */
static int drain(struct ferry_runner *runner, int64_t grace_ns, int signal_fd, struct service *svc)
{
        struct pollfd fds[2] = {{.fd = ferry_runner_fd(runner), .events = POLLIN}, {.fd = signal_fd, .events = POLLIN}};
        bool stop_signal = false;
        int r;

        ferry_runner_stop(runner, grace_ns);
        while ((r = ferry_runner_dispatch(runner, 0)) > 0) {
                if (wait_for_work(fds, signal_fd >= 0 ? 2 : 1, timeout_until(service_tick(svc, runner))) < 0)
                        return -errno;
                if (signal_fd >= 0 && (fds[1].revents & POLLIN)) {
                        struct signalfd_siginfo info;

                        /* A stop signal while draining: stop for good, without
                         * waiting for the rest of the grace period. */
                        while (read(signal_fd, &info, sizeof(info)) == sizeof(info))
                                if (info.ssi_signo != SIGHUP) {
                                        stop_signal = true;
                                        service_stopping(svc, 0);
                                        ferry_runner_stop(runner, 0);
                                }
                }
        }
        return r < 0 ? r : stop_signal;
}

/* Runs until SIGTERM or SIGINT, then stops gracefully (a second signal: at
 * once). SIGHUP reloads the config file: a bad one is rejected and the rules
 * in force keep running; a good one replaces them after the running handlers
 * finished, so that nothing is lost or handled twice. */
static int serve(struct source *src, struct ferry_runner *runner, struct service *svc)
{
        int signal_fd = cli_signal_fd(true);
        int status = EXIT_OK;
        struct ferry_runner_stats st;

        service_ready(svc, runner, "watching");
        for (;;) {
                struct pollfd fds[2] = {{.fd = ferry_runner_fd(runner), .events = POLLIN},
                                        {.fd = signal_fd, .events = POLLIN}};
                struct signalfd_siginfo info;
                bool stop = false, reload = false;
                int r = ferry_runner_dispatch(runner, 0);

                if (r == -ENODEV) {
                        /* A rule's folder went away and the rule says exit (logged). */
                        service_stopping(svc, src->config.grace_ns);
                        (void)drain(runner, src->config.grace_ns, signal_fd, svc);
                        status = EXIT_FAILURE_RUNTIME;
                        break;
                }
                if (r < 0) {
                        run_error("cannot go on: %s", strerror(-r));
                        status = EXIT_FAILURE_RUNTIME;
                        break;
                }
                if (wait_for_work(fds, signal_fd >= 0 ? 2 : 1, timeout_until(service_tick(svc, runner))) < 0)
                        break;
                if (signal_fd < 0 || !(fds[1].revents & POLLIN))
                        continue;
                while (read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
                        if (info.ssi_signo == SIGHUP)
                                reload = true;
                        else
                                stop = true;
                }
                if (stop) {
                        service_stopping(svc, src->config.grace_ns);
                        if (drain(runner, src->config.grace_ns, signal_fd, svc) < 0)
                                status = EXIT_FAILURE_RUNTIME;
                        break;
                }
                if (!reload)
                        continue;
                if (!src->config_path) {
                        run_error("SIGHUP: no config file to reload (rules from the command line)");
                        continue;
                }
                struct ferry_runner *next = NULL;
                struct config old = src->config;

                notify_send(&svc->notifier, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading %s",
                            notify_monotonic_usec(), src->config_path);
                /* Settings the file no longer sets go back to their defaults,
                 * unless the command line gave them. */
                if (!src->grace_given)
                        src->config.grace_ns = DEFAULT_GRACE_NS;
                if (!src->json_given)
                        src->config.json = false;
                src->config.metrics_file = NULL;
                if (build(src, &next) >= 0) {
                        src->config = old;
                        run_error("%s: the new config is rejected; the rules in force keep running", src->config_path);
                        service_ready(svc, runner, "new config rejected, the rules in force keep running");
                        continue;
                }
                r = drain(runner, old.grace_ns, signal_fd, svc);
                service_retire(svc, runner);
                ferry_runner_free(runner);
                runner = next;
                free(old.metrics_file);
                if (metrics_set_path(&svc->metrics, metrics_path(src)) < 0)
                        run_error("metrics: out of memory; no metrics file until the next reload");
                if (r != 0) {
                        status = r < 0 ? EXIT_FAILURE_RUNTIME : EXIT_OK;
                        break;
                }
                if (ferry_runner_start(runner) < 0) {
                        status = EXIT_FAILURE_RUNTIME;
                        break;
                }
                run_error("%s: reloaded", src->config_path);
                service_ready(svc, runner, "reloaded");
        }
        /* The last word of the metrics file: what this process did. */
        service_stats(svc, runner, &st);
        (void)metrics_write(&svc->metrics, runner, &st, cli_now());
        ferry_runner_free(runner);
        if (signal_fd >= 0)
                close(signal_fd);
        return status;
}

static int check_system(void *userdata, struct ferry_rule *rule)
{
        (void)userdata;
        if (ferry_rule_check_system(rule) < 0) {
                run_error("%s", ferry_rule_explain(rule));
                return 1;
        }
        return 0;
}

/* How many words stand before the first "--" that is not an option's
 * argument, options and their arguments left out: the synopsis is
 * DIR -- PROGRAM, so it must be one. -1 when there is no "--". Read before
 * getopt_long(), which moves the words around and drops the "--". */
static int words_before_dashdash(int argc, char **argv, const char *shorts)
{
        int words = 0;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (strcmp(a, "--") == 0)
                        return words;
                if (a[0] != '-' || a[1] == '\0') {
                        words++;
                } else if (a[1] == '-') {
                        size_t n = strcspn(a + 2, "=");

                        for (const struct option *o = options; o->name; o++)
                                if (strlen(o->name) == n && strncmp(o->name, a + 2, n) == 0 &&
                                    o->has_arg == required_argument && !a[2 + n])
                                        i++; /* its argument is the next word */
                } else {
                        for (const char *c = a + 1; *c; c++) {
                                const char *spec = strchr(shorts, *c);

                                if (spec && spec[1] == ':') {
                                        if (!c[1])
                                                i++;
                                        break; /* the rest of the word, or the next word, is its argument */
                                }
                        }
                }
        }
        return -1;
}

int cmd_run(int argc, char **argv)
{
        static char log_buffer[16384];
        struct source src = {.config = {.grace_ns = DEFAULT_GRACE_NS}};
        struct service svc = {.notifier = {.fd = -1}};
        struct ferry_runner *runner = NULL;
        bool check = false;
        int c, r, dashdash, status = EXIT_USAGE;

        /* One write per line, not one per piece of it (an unbuffered stderr
         * cost some 200 write(2) calls per handled file); the runner's log
         * goes through logq. Every line ends in a newline, so nothing waits. */
        (void)setvbuf(stderr, log_buffer, _IOLBF, sizeof(log_buffer));

        src.settings = calloc((size_t)argc + 1, sizeof(*src.settings));
        if (!src.settings) {
                run_error("out of memory");
                return EXIT_FAILURE_RUNTIME;
        }
        opterr = 0;
        dashdash = words_before_dashdash(argc, argv, ":m:rj:c:h");
        while ((c = getopt_long(argc, argv, ":m:rj:c:h", options, NULL)) != -1) {
                const char *key = rule_key(c);

                if (key) {
                        src.settings[src.count++] = (struct setting){key, optarg};
                        continue;
                }
                switch (c) {
                case 'r': src.settings[src.count++] = (struct setting){"recursive", "yes"}; break;
                case OPT_DELETE: src.settings[src.count++] = (struct setting){"on-success", "delete"}; break;
                case OPT_KEEP: src.settings[src.count++] = (struct setting){"on-success", "keep"}; break;
                case OPT_STDIN: src.settings[src.count++] = (struct setting){"stdin", "yes"}; break;
                case OPT_SYMLINKS: src.settings[src.count++] = (struct setting){"symlinks", "yes"}; break;
                case OPT_NAME: src.name = optarg; break; /* the default, "run", is set below */
                case 'c': src.config_path = optarg; break;
                case OPT_GRACE:
                        if (!cli_parse_duration("run", "--grace", optarg, &src.config.grace_ns))
                                goto out;
                        src.grace_given = true;
                        break;
                case OPT_LOG_FORMAT:
                        if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0) {
                                cli_usage_error("run", "--log-format is text or json, not '%s'", optarg);
                                goto out;
                        }
                        src.config.json = strcmp(optarg, "json") == 0;
                        src.json_given = true;
                        break;
                case OPT_METRICS_FILE: src.metrics_option = optarg; break;
                case OPT_CHECK: check = true; break;
                case 'h':
                        fputs(usage, stdout);
                        status = EXIT_OK;
                        goto out;
                default: cli_bad_option("run", c, argv); goto out;
                }
        }
        if (src.config_path) {
                if (optind < argc || src.count || src.name) {
                        cli_usage_error("run", "-c FILE takes the rules from FILE: no DIR, rule options, "
                                               "--name or handler on the command line");
                        goto out;
                }
        } else {
                if (!src.name)
                        src.name = "run";
                /* getopt_long() stops at "--" and leaves DIR first, then the handler. */
                if (optind >= argc) {
                        cli_usage_error("run", "missing DIR and -- PROGRAM (or -c FILE)");
                        goto out;
                }
                if (dashdash != 1) {
                        cli_usage_error("run", dashdash < 0 ? "the handler comes after --: ferry run DIR -- PROGRAM"
                                                            : "one DIR before --: ferry run DIR -- PROGRAM");
                        goto out;
                }
                src.dir = argv[optind++];
                if (optind >= argc) {
                        cli_usage_error("run", "missing the handler: ferry run DIR -- PROGRAM [ARG]...");
                        goto out;
                }
                src.command = argv + optind;
        }
        status = build(&src, &runner);
        if (status >= 0)
                goto out;
        if (check) {
                /* What only the system can tell: the handler, the folder's room for .ferry. */
                if (ferry_runner_each_rule(runner, check_system, NULL) != 0) {
                        status = EXIT_USAGE;
                        goto out;
                }
                printf("ferry: %s is valid\n", src.config_path ? src.config_path : "the rule");
                status = EXIT_OK;
                goto out;
        }
        /* Before the start, which may take a while on a large tree. */
        (void)notify_open(&svc.notifier);
        notify_send(&svc.notifier, "STATUS=starting: scanning the folders");
        if (metrics_set_path(&svc.metrics, metrics_path(&src)) < 0) {
                run_error("out of memory");
                status = EXIT_FAILURE_RUNTIME;
                goto out;
        }
        r = ferry_runner_start(runner);
        if (r < 0) {
                notify_send(&svc.notifier, "STATUS=cannot start: %s\nERRNO=%d", strerror(-r), -r);
                status = EXIT_FAILURE_RUNTIME; /* the runner logged why */
                goto out;
        }
        status = serve(&src, runner, &svc);
        runner = NULL;
out:
        ferry_runner_free(runner);
        notify_close(&svc.notifier);
        metrics_free(&svc.metrics);
        free(src.config.metrics_file);
        free(src.settings);
        return status;
}
