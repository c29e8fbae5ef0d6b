/* wait.c: `ferry wait`: block until a file, or N files matching a glob, are
 * completely written. The seed's "machine A pauses until the result is there". */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
        "Usage: ferry wait [OPTION]... FILE\n"
        "   or: ferry wait [OPTION]... DIR --match GLOB [--count N]\n"
        "Wait until FILE (which need not exist yet), or N files in DIR whose names\n"
        "match GLOB, are completely written; print their paths.\n"
        "\n"
        "  -m, --match GLOB       in DIR, wait for files whose name matches GLOB\n"
        "  -n, --count N          how many distinct files to wait for (default 1)\n"
        "  -r, --recursive        with --match: also in subdirectories\n"
        "      --ready POLICY     when a file counts as complete (default auto):\n"
        "                         auto, close[=GUARD], rename, done-file[=.SUFFIX|=MARKER],\n"
        "                         settle=DURATION\n"
        "  -t, --timeout DUR      give up after DUR (e.g. 30s, 500ms, 2m)\n"
        "      --backend B        auto (default), inotify, or poll; see ferry-watch(1)\n"
        "      --poll-interval DUR  how often polled folders are listed (default 2s)\n"
        "  -0, --null             end each printed path with NUL instead of newline\n"
        "  -q, --quiet            print nothing\n"
        "  -h, --help             show this help\n"
        "\n"
        "A file already there and complete counts at once.\n"
        "Exit status: 0 ready, 1 error, 2 usage, 3 timed out. See ferry-wait(1).\n";

enum { OPT_READY = 256, OPT_BACKEND, OPT_POLL_INTERVAL };

static const struct option options[] = {
        {"match", required_argument, NULL, 'm'},
        {"count", required_argument, NULL, 'n'},
        {"recursive", no_argument, NULL, 'r'},
        {"ready", required_argument, NULL, OPT_READY},
        {"backend", required_argument, NULL, OPT_BACKEND},
        {"poll-interval", required_argument, NULL, OPT_POLL_INTERVAL},
        {"timeout", required_argument, NULL, 't'},
        {"null", no_argument, NULL, '0'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0},
};

struct wait_args {
        const char *match;
        uint64_t count;
        bool recursive, null, quiet;
        const char *ready;
        const char *backend;
        int64_t poll_interval_ns;
        int64_t timeout_ns;
        const char *path;
};

/* The distinct paths that became ready, so that a file rewritten counts once. */
struct path_set {
        char **items;
        size_t count;
};

static bool path_set_add(struct path_set *set, const char *path)
{
        char **items;

        for (size_t i = 0; i < set->count; i++)
                if (strcmp(set->items[i], path) == 0)
                        return false;
        items = realloc(set->items, (set->count + 1) * sizeof(*items));
        if (!items)
                return false;
        set->items = items;
        set->items[set->count] = strdup(path);
        if (!set->items[set->count])
                return false;
        set->count++;
        return true;
}

static void path_set_done(struct path_set *set)
{
        for (size_t i = 0; i < set->count; i++)
                free(set->items[i]);
        free(set->items);
}

static int parse(int argc, char **argv, struct wait_args *a)
{
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":m:n:rt:0qh", options, NULL)) != -1) {
                switch (c) {
                case 'm': a->match = optarg; break;
                case 'n':
                        if (!cli_parse_count("wait", "--count", optarg, &a->count))
                                return EXIT_USAGE;
                        break;
                case 'r': a->recursive = true; break;
                case OPT_READY: a->ready = optarg; break;
                case OPT_BACKEND: a->backend = optarg; break;
                case OPT_POLL_INTERVAL:
                        if (!cli_parse_duration("wait", "--poll-interval", optarg, &a->poll_interval_ns))
                                return EXIT_USAGE;
                        break;
                case 't':
                        if (!cli_parse_duration("wait", "--timeout", optarg, &a->timeout_ns))
                                return EXIT_USAGE;
                        break;
                case '0': a->null = true; break;
                case 'q': a->quiet = true; break;
                case 'h': fputs(usage, stdout); return EXIT_OK;
                default: return cli_bad_option("wait", c, argv);
                }
        }
        if (optind >= argc)
                return cli_usage_error("wait", "missing FILE or DIR to wait for");
        if (optind + 1 < argc)
                return cli_usage_error("wait", "give one FILE, or one DIR with --match");
        a->path = argv[optind];
        if (!a->match && (a->count != 1 || a->recursive))
                return cli_usage_error("wait", "--count and --recursive go with DIR --match GLOB");
        return -1;
}

static int setup(const struct wait_args *a, struct ferry_watch **ret_watch)
{
        unsigned flags = FERRY_WATCH_EXISTING | (a->recursive ? FERRY_WATCH_RECURSIVE : 0);
        struct ferry_watch *w;
        struct stat st;
        int r;

        r = ferry_watch_new(&w, flags);
        if (r < 0) {
                cli_error("cannot start watching: %s", strerror(-r));
                return EXIT_FAILURE_RUNTIME;
        }
        *ret_watch = w;
        if (ferry_watch_set_ready(w, a->ready) < 0)
                return cli_usage_error("wait",
                                       "invalid ready policy '%s' (use auto, close[=GUARD], rename, "
                                       "done-file[=.SUFFIX|=MARKER] or settle=DURATION)",
                                       a->ready);
        (void)ferry_watch_set_events(w, FERRY_EVENT_READY);
        if (a->backend && ferry_watch_set_backend(w, a->backend) < 0)
                return cli_usage_error("wait", "--backend is auto, inotify or poll, not '%s'", a->backend);
        if (a->poll_interval_ns && ferry_watch_set_poll_interval(w, a->poll_interval_ns) < 0)
                return cli_usage_error("wait", "--poll-interval must be at least 10ms");
        if (a->match) {
                if (ferry_watch_include(w, a->match) < 0)
                        return cli_usage_error("wait", "invalid glob '%s'", a->match);
                r = ferry_watch_add(w, a->path);
        } else {
                if (stat(a->path, &st) == 0 && S_ISDIR(st.st_mode))
                        return cli_usage_error("wait", "%s is a directory: give a file, or add --match GLOB", a->path);
                r = ferry_watch_add_file(w, a->path);
        }
        if (r < 0)
                return cli_watch_error(w, r, a->path);
        return -1;
}

int cmd_wait(int argc, char **argv)
{
        struct wait_args a = {.count = 1, .ready = "auto", .timeout_ns = INT64_MAX};
        struct ferry_watch *w = NULL;
        struct path_set done = {0};
        int64_t deadline;
        int signal_fd = -1;
        int status;

        status = parse(argc, argv, &a);
        if (status >= 0)
                return status;
        /* The deadline counts from the start: setting up is part of the wait. */
        deadline = a.timeout_ns == INT64_MAX ? INT64_MAX : cli_now() + a.timeout_ns;
        status = setup(&a, &w);
        if (status >= 0)
                goto out;
        signal_fd = cli_signal_fd(false);
        for (;;) {
                const struct ferry_event *ev;
                int r = cli_next_event(w, signal_fd, deadline, &ev);

                if (r != CLI_NEXT_EVENT) {
                        /* A stop signal while waiting: the file was not ready. */
                        status = r == CLI_NEXT_DEADLINE ? EXIT_TIMED_OUT : EXIT_FAILURE_RUNTIME;
                        break;
                }
                if (ev->type == FERRY_EVENT_ERROR) {
                        cli_watch_error(w, ev->error, ev->path);
                        continue;
                }
                if (ev->type == FERRY_EVENT_ROOT_GONE) {
                        cli_error("%s: the folder went away while waiting", ev->root);
                        status = EXIT_FAILURE_RUNTIME;
                        break;
                }
                if (ev->type != FERRY_EVENT_READY || !path_set_add(&done, ev->path))
                        continue;
                if (!a.quiet) {
                        fwrite(ev->path, 1, ev->path_len, stdout);
                        fputc(a.null ? '\0' : '\n', stdout);
                }
                if (done.count >= a.count) {
                        status = EXIT_OK;
                        break;
                }
        }
out:
        fflush(stdout);
        if (signal_fd >= 0)
                close(signal_fd);
        path_set_done(&done);
        ferry_watch_free(w);
        return status;
}
