/* run.c: `ferry run`: the hot-folder daemon, one rule from the command line. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
        "Usage: ferry run [OPTION]... DIR -- PROGRAM [ARG]...\n"
        "Hand every file completely written into DIR to PROGRAM, exactly once; move it\n"
        "to a done folder on success, to a failed folder (with a .ferry-error note) on\n"
        "failure. No shell: {} {path} {name} {dir} {stem} {ext} ({paths} with --batch)\n"
        "in ARGs become one argument each.\n"
        "\n"
        "  -m, --match GLOB       only files whose name matches GLOB (repeatable)\n"
        "      --exclude GLOB     never files whose name matches GLOB (repeatable)\n"
        "  -r, --recursive        also files in subdirectories\n"
        "      --ready POLICY     when a file is complete (default auto); see ferry-watch(1)\n"
        "  -j, --jobs N           handlers at once (default: number of CPUs)\n"
        "      --timeout DUR      stop a handler after DUR: SIGTERM, then SIGKILL\n"
        "      --kill-after DUR   from SIGTERM to SIGKILL (default 5s)\n"
        "      --retries N        attempts after the first failure (default 2)\n"
        "      --retry-delay DUR  first back-off, doubled each time (default 1s)\n"
        "      --done DIR         where handled files go (default DIR/.ferry/done)\n"
        "      --delete           delete handled files instead\n"
        "      --failed DIR       where failed files go (default DIR/.ferry/failed)\n"
        "      --output DIR       the handler's stdout becomes DIR/NAME, moved into\n"
        "                         place only on success\n"
        "      --stdin            the file is the handler's stdin\n"
        "      --batch N          up to N files per handler run, as {paths}\n"
        "      --lease DUR        a claim whose worker is silent this long is taken\n"
        "                         over by another host's worker (default 60s)\n"
        "      --user NAME        run handlers as NAME (ferry must run as root)\n"
        "      --name NAME        the rule's name in logs and work areas (default run)\n"
        "      --grace DUR        on SIGTERM, how long handlers may finish (default 30s)\n"
        "      --log-format FMT   text (default) or json, on stderr\n"
        "      --check            check the options and exit\n"
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
        OPT_LEASE,
        OPT_USER,
        OPT_NAME,
        OPT_GRACE,
        OPT_LOG_FORMAT,
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
        {"lease", required_argument, NULL, OPT_LEASE},
        {"user", required_argument, NULL, OPT_USER},
        {"name", required_argument, NULL, OPT_NAME},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"check", no_argument, NULL, OPT_CHECK},
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
        case OPT_LEASE: return "lease";
        case OPT_USER: return "user";
        default: return NULL;
        }
}

struct setting {
        const char *key, *value;
};

static const char *const kind_names[] = {
        [FERRY_LOG_INFO] = "info",       [FERRY_LOG_CLAIMED] = "claimed", [FERRY_LOG_STARTED] = "started",
        [FERRY_LOG_DONE] = "done",       [FERRY_LOG_RETRY] = "retry",     [FERRY_LOG_FAILED] = "failed",
        [FERRY_LOG_RETURNED] = "returned", [FERRY_LOG_WARNING] = "warning", [FERRY_LOG_ERROR] = "error",
};

static void log_text(void *userdata, const struct ferry_log_record *rec)
{
        (void)userdata;
        fprintf(stderr, "ferry: %s", kind_names[rec->kind]);
        if (rec->rule)
                fprintf(stderr, " [%s]", rec->rule);
        if (rec->path) {
                fputc(' ', stderr);
                output_escaped(stderr, rec->path, rec->path_len);
        }
        fprintf(stderr, ": %s\n", rec->message);
}

static void log_json(void *userdata, const struct ferry_log_record *rec)
{
        struct timespec ts;

        (void)userdata;
        clock_gettime(CLOCK_REALTIME, &ts);
        fprintf(stderr, "{\"time\":%lld.%03ld,\"event\":\"%s\"", (long long)ts.tv_sec, ts.tv_nsec / 1000000,
                kind_names[rec->kind]);
        if (rec->rule)
                output_json_field(stderr, "rule", rec->rule, strlen(rec->rule));
        if (rec->path)
                output_json_field(stderr, "path", rec->path, rec->path_len);
        output_json_field(stderr, "message", rec->message, strlen(rec->message));
        if (rec->duration_ns >= 0)
                fprintf(stderr, ",\"duration\":%.6f", (double)rec->duration_ns / 1e9);
        if (rec->pid)
                fprintf(stderr, ",\"pid\":%d", rec->pid);
        if (rec->attempt)
                fprintf(stderr, ",\"attempt\":%d", rec->attempt);
        if (rec->kind == FERRY_LOG_DONE || rec->kind == FERRY_LOG_RETRY || rec->kind == FERRY_LOG_FAILED)
                fprintf(stderr, ",\"exit_code\":%d,\"signal\":%d", rec->exit_code, rec->signal);
        fputs("}\n", stderr);
}

/* Runs until SIGTERM or SIGINT, then stops gracefully (a second signal: at once). */
static int serve(struct ferry_runner *runner, int64_t grace_ns)
{
        int signal_fd = cli_signal_fd();
        struct pollfd fds[2] = {{.fd = ferry_runner_fd(runner), .events = POLLIN},
                                {.fd = signal_fd, .events = POLLIN}};
        int status = EXIT_OK;
        bool stopping = false;

        for (;;) {
                int r = ferry_runner_dispatch(runner, 0);

                if (r < 0) {
                        cli_error("cannot go on: %s", strerror(-r));
                        status = EXIT_FAILURE_RUNTIME;
                        break;
                }
                if (r == 0)
                        break;
                if (poll(fds, signal_fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
                        break;
                if (signal_fd >= 0 && (fds[1].revents & POLLIN)) {
                        struct signalfd_siginfo info;

                        while (read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
                                ferry_runner_stop(runner, stopping ? 0 : grace_ns);
                                stopping = true;
                        }
                }
        }
        if (signal_fd >= 0)
                close(signal_fd);
        return status;
}

int cmd_run(int argc, char **argv)
{
        struct setting *settings = calloc((size_t)argc + 1, sizeof(*settings));
        const char *name = "run", *log_format = "text";
        struct ferry_runner *runner = NULL;
        struct ferry_rule *rule = NULL;
        int64_t grace_ns = 30 * INT64_C(1000000000);
        size_t count = 0;
        bool check = false;
        int c, r, status = EXIT_USAGE;

        if (!settings) {
                cli_error("out of memory");
                return EXIT_FAILURE_RUNTIME;
        }
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":m:rj:h", options, NULL)) != -1) {
                const char *key = rule_key(c);

                if (key) {
                        settings[count++] = (struct setting){key, optarg};
                        continue;
                }
                switch (c) {
                case 'r': settings[count++] = (struct setting){"recursive", "yes"}; break;
                case OPT_DELETE: settings[count++] = (struct setting){"on-success", "delete"}; break;
                case OPT_KEEP: settings[count++] = (struct setting){"on-success", "keep"}; break;
                case OPT_STDIN: settings[count++] = (struct setting){"stdin", "yes"}; break;
                case OPT_NAME: name = optarg; break;
                case OPT_GRACE:
                        if (!cli_parse_duration("run", "--grace", optarg, &grace_ns))
                                goto out;
                        break;
                case OPT_LOG_FORMAT:
                        if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0) {
                                cli_usage_error("run", "--log-format is text or json, not '%s'", optarg);
                                goto out;
                        }
                        log_format = optarg;
                        break;
                case OPT_CHECK: check = true; break;
                case 'h':
                        fputs(usage, stdout);
                        status = EXIT_OK;
                        goto out;
                default: cli_bad_option("run", c, argv); goto out;
                }
        }
        /* getopt_long() stops at "--" and leaves DIR first, then the handler. */
        if (optind >= argc) {
                cli_usage_error("run", "missing DIR and -- PROGRAM");
                goto out;
        }
        const char *dir = argv[optind++];

        if (optind >= argc) {
                cli_usage_error("run", "missing the handler: ferry run DIR -- PROGRAM [ARG]...");
                goto out;
        }
        r = ferry_rule_new(&rule, name, dir);
        if (r < 0) {
                cli_usage_error("run", "invalid rule name '%s' (letters, digits, '-', '_', '.')", name);
                goto out;
        }
        for (size_t i = 0; i < count; i++) {
                r = ferry_rule_set(rule, settings[i].key, settings[i].value);
                if (r < 0) {
                        cli_usage_error("run", "%s", ferry_rule_explain(rule));
                        goto out;
                }
        }
        if (ferry_rule_set_command(rule, argv + optind) < 0) {
                cli_usage_error("run", "%s", ferry_rule_explain(rule));
                goto out;
        }
        r = ferry_runner_new(&runner);
        if (r < 0) {
                cli_error("cannot start: %s", strerror(-r));
                status = EXIT_FAILURE_RUNTIME;
                goto out;
        }
        ferry_runner_set_log(runner, strcmp(log_format, "json") == 0 ? log_json : log_text, NULL);
        if (check) {
                r = ferry_rule_check(rule);
                if (r < 0)
                        cli_usage_error("run", "%s", ferry_rule_explain(rule));
                else
                        printf("ferry: rule %s is valid\n", name);
                status = r < 0 ? EXIT_USAGE : EXIT_OK;
                goto out;
        }
        r = ferry_runner_add_rule(runner, rule);
        rule = NULL;
        if (r < 0 || ferry_runner_start(runner) < 0) {
                status = EXIT_FAILURE_RUNTIME; /* the runner logged why */
                goto out;
        }
        status = serve(runner, grace_ns);
out:
        ferry_rule_free(rule);
        ferry_runner_free(runner);
        free(settings);
        return status;
}
