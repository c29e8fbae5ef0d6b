/* watch.c: `ferry watch`: stream the events of one or more folders. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
        "Usage: ferry watch [OPTION]... DIR...\n"
        "Print what happens in each DIR, one event at a time.\n"
        "\n"
        "  -r, --recursive        watch subdirectories, present and future\n"
        "  -e, --events LIST      events to print, comma-separated: create, modify, attrib,\n"
        "                         close_write, delete, moved_from, moved_to, move, ready, all\n"
        "      --ready[=POLICY]   print files once they are completely written (default\n"
        "                         policy auto); POLICY: auto, close[=GUARD], rename,\n"
        "                         done-file[=.SUFFIX|=MARKER], settle=DURATION\n"
        "      --include GLOB     only files whose name matches GLOB (repeatable)\n"
        "      --exclude GLOB     never files whose name matches GLOB (repeatable)\n"
        "      --existing         also report files already present at start\n"
        "      --follow           when a DIR goes away, wait for it to come back\n"
        "      --backend B        auto (default: inotify, and polling too on network\n"
        "                         and FUSE file systems), inotify, or poll (listing\n"
        "                         only, no inotify watch)\n"
        "      --poll-interval DUR  how often polled folders are listed (default 2s)\n"
        "  -t, --timeout DUR      stop after DUR (e.g. 30s, 500ms, 2m)\n"
        "  -n, --count N          stop after N events\n"
        "      --json             one JSON object per event and line\n"
        "  -0, --null             print each path followed by a NUL byte, nothing else\n"
        "      --format FMT       printf-like: %e event, %p path, %r root, %n name,\n"
        "                         %f path relative to root, %o old path, %s size, %%;\n"
        "                         \\n \\t \\0 \\\\ escapes\n"
        "      --publish SUBJECT  send each event's JSON (as --json prints it) to SUBJECT\n"
        "                         on the NATS server of --nats, instead of printing it\n"
        "      --nats URL         nats://HOST:PORT or tls://HOST:PORT (comma-separated\n"
        "                         for a cluster)\n"
        "      --nats-creds FILE  NATS credentials (.creds: user JWT and NKey seed)\n"
        "      --nats-ca FILE     CA certificates for the server's TLS certificate\n"
        "  -h, --help             show this help\n"
        "\n"
        "Exit status: 0 done, 1 error, 2 usage, 3 timed out before N events,\n"
        "4 every DIR went away. See ferry-watch(1).\n";

enum {
        OPT_READY = 256,
        OPT_INCLUDE,
        OPT_EXCLUDE,
        OPT_EXISTING,
        OPT_FOLLOW,
        OPT_JSON,
        OPT_FORMAT,
        OPT_BACKEND,
        OPT_POLL_INTERVAL,
        OPT_PUBLISH,
        OPT_NATS,
        OPT_NATS_CREDS,
        OPT_NATS_CA,
};

static const struct option options[] = {
        {"recursive", no_argument, NULL, 'r'},
        {"events", required_argument, NULL, 'e'},
        {"ready", optional_argument, NULL, OPT_READY},
        {"include", required_argument, NULL, OPT_INCLUDE},
        {"exclude", required_argument, NULL, OPT_EXCLUDE},
        {"existing", no_argument, NULL, OPT_EXISTING},
        {"follow", no_argument, NULL, OPT_FOLLOW},
        {"backend", required_argument, NULL, OPT_BACKEND},
        {"poll-interval", required_argument, NULL, OPT_POLL_INTERVAL},
        {"timeout", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, OPT_JSON},
        {"null", no_argument, NULL, '0'},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"publish", required_argument, NULL, OPT_PUBLISH},
        {"nats", required_argument, NULL, OPT_NATS},
        {"nats-creds", required_argument, NULL, OPT_NATS_CREDS},
        {"nats-ca", required_argument, NULL, OPT_NATS_CA},
        {"help", no_argument, NULL, 'h'},
        {0},
};

struct watch_args {
        unsigned flags;
        const char **includes, **excludes; /* borrowed from argv */
        size_t include_count, exclude_count;
        unsigned events;
        const char *ready;
        const char *backend;
        int64_t poll_interval_ns; /* 0: default */
        int64_t timeout_ns;       /* INT64_MAX: none */
        uint64_t count;           /* 0: unlimited */
        struct output output;
        const char *subject; /* --publish */
        struct ferry_nats_options nats;
};

/* Returns -1 to go on, or an exit code. */
static int parse(int argc, char **argv, struct watch_args *a)
{
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":re:t:n:0h", options, NULL)) != -1) {
                switch (c) {
                case 'r': a->flags |= FERRY_WATCH_RECURSIVE; break;
                case 'e':
                        if (!cli_parse_events("watch", optarg, &a->events))
                                return EXIT_USAGE;
                        break;
                case OPT_READY: a->ready = optarg ? optarg : "auto"; break;
                case OPT_INCLUDE: a->includes[a->include_count++] = optarg; break;
                case OPT_EXCLUDE: a->excludes[a->exclude_count++] = optarg; break;
                case OPT_EXISTING: a->flags |= FERRY_WATCH_EXISTING; break;
                case OPT_FOLLOW: a->flags |= FERRY_WATCH_FOLLOW; break;
                case OPT_BACKEND: a->backend = optarg; break;
                case OPT_POLL_INTERVAL:
                        if (!cli_parse_duration("watch", "--poll-interval", optarg, &a->poll_interval_ns))
                                return EXIT_USAGE;
                        break;
                case 't':
                        if (!cli_parse_duration("watch", "--timeout", optarg, &a->timeout_ns))
                                return EXIT_USAGE;
                        break;
                case 'n':
                        if (!cli_parse_count("watch", "--count", optarg, &a->count))
                                return EXIT_USAGE;
                        break;
                case OPT_JSON:
                case '0':
                case OPT_FORMAT:
                        if (a->output.mode != OUTPUT_TEXT)
                                return cli_usage_error("watch", "--json, -0 and --format exclude each other");
                        a->output.mode = c == OPT_JSON ? OUTPUT_JSON : c == '0' ? OUTPUT_NULL : OUTPUT_FORMAT;
                        a->output.format = optarg;
                        if (c == OPT_FORMAT) {
                                char bad[8];

                                if (!output_format_check(optarg, bad, sizeof(bad)))
                                        return cli_usage_error("watch",
                                                               "--format: '%s' is no directive or escape (directives "
                                                               "%%e %%p %%r %%n %%f %%o %%s %%%%, escapes %s)",
                                                               bad, "\\n \\t \\0 \\\\");
                        }
                        break;
                case OPT_PUBLISH: a->subject = optarg; break;
                case OPT_NATS: a->nats.url = optarg; break;
                case OPT_NATS_CREDS: a->nats.creds = optarg; break;
                case OPT_NATS_CA: a->nats.ca = optarg; break;
                case 'h': fputs(usage, stdout); return EXIT_OK;
                default: return cli_bad_option("watch", c, argv);
                }
        }
        if (optind >= argc)
                return cli_usage_error("watch", "missing DIR to watch");
        if (a->subject && !a->nats.url)
                return cli_usage_error("watch", "--publish needs the NATS server: --nats nats://HOST:PORT");
        if (!a->subject && (a->nats.url || a->nats.creds || a->nats.ca))
                return cli_usage_error("watch", "--nats, --nats-creds and --nats-ca go with --publish SUBJECT");
        if (a->subject && a->output.mode != OUTPUT_TEXT)
                return cli_usage_error("watch",
                                       "--publish sends the JSON that --json prints: no --json, -0 or --format "
                                       "with it");
        if (a->subject)
                a->output.mode = OUTPUT_JSON;
        return -1;
}

/* A special event that the output leaves out (-0, a --format without %e) is
 * said on stderr instead; errors always are, by cli_watch_error(). */
static void say_special(const struct watch_args *a, const struct ferry_event *ev)
{
        if (ev->type == FERRY_EVENT_ROOT_GONE)
                cli_error("%s: went away%s", ev->path,
                          a->flags & FERRY_WATCH_FOLLOW ? "; waiting for it to come back" : "");
        else if (ev->type == FERRY_EVENT_ROOT_BACK)
                cli_error("%s: back, and watched again", ev->path);
        else if (ev->type == FERRY_EVENT_RESCAN)
                cli_error("the kernel's event queue overflowed: rescanning the watched folders "
                          "(raise fs.inotify.max_queued_events to make it rarer)");
}

/* Where events go with --publish. */
struct publishing {
        struct ferry_publisher *p;
        FILE *body; /* the event's JSON, gathered in text */
        char *text;
        size_t len;
        bool said_down; /* that NATS does not take events: said once until it does */
        int stored;     /* the last event's way (-1: none yet), said when it changes */
};

/* Sends ev's JSON, trying again while NATS does not take it, until it does or
 * a stop signal comes (then false: the event is not published). */
static bool publish(struct publishing *pub, const struct watch_args *a, const struct ferry_event *ev, int signal_fd)
{
        char why[512];

        rewind(pub->body);
        output_event(&(struct output){.mode = OUTPUT_JSON, .stream = pub->body}, ev);
        fflush(pub->body);
        for (;;) {
                struct pollfd pfd = {.fd = signal_fd, .events = POLLIN};
                int r = ferry_publisher_send(pub->p, pub->text, pub->len ? pub->len - 1 : 0, INT64_C(2000000000), why,
                                             sizeof(why));

                if (r == 0)
                        break;
                if (r != -EAGAIN) {
                        cli_error("%s: not published to %s: %s", ev->path, a->subject, why);
                        return true; /* one event that can never go: said, and the stream goes on */
                }
                if (!pub->said_down)
                        cli_error("NATS at %s does not take events now (%s): holding them, and trying again until it "
                                  "does",
                                  a->nats.url, why);
                pub->said_down = true;
                if (poll(&pfd, signal_fd >= 0 ? 1 : 0, 250) > 0)
                        return false; /* a stop: the signal stays for the caller */
        }
        if (pub->said_down)
                cli_error("NATS at %s takes events again", a->nats.url);
        pub->said_down = false;
        if (ferry_publisher_stored(pub->p) != pub->stored) {
                pub->stored = ferry_publisher_stored(pub->p);
                if (pub->stored)
                        cli_error("publishing to %s into the JetStream stream that takes it (each event stored and "
                                  "acknowledged)",
                                  a->subject);
                else
                        cli_error("publishing to %s on core NATS: no JetStream stream takes that subject, so only "
                                  "subscribers connected at the time get the events (a stream on it keeps them)",
                                  a->subject);
        }
        return true;
}

static int run(struct ferry_watch *w, const struct watch_args *a, size_t root_count, struct publishing *pub,
               int signal_fd)
{
        int64_t deadline = a->timeout_ns == INT64_MAX ? INT64_MAX : cli_now() + a->timeout_ns;
        size_t gone = 0;
        uint64_t seen = 0;
        int status = EXIT_OK;

        for (;;) {
                const struct ferry_event *ev;
                int r = cli_next_event(w, signal_fd, deadline, &ev);

                if (r == CLI_NEXT_ERROR)
                        status = EXIT_FAILURE_RUNTIME;
                if (r == CLI_NEXT_DEADLINE)
                        status = a->count ? EXIT_TIMED_OUT : EXIT_OK;
                if (r != CLI_NEXT_EVENT)
                        break; /* a stop signal ends the stream: exit 0 */
                if (pub && !publish(pub, a, ev, signal_fd)) {
                        cli_error("%s: stopped before NATS at %s took this %s event: not published", ev->path,
                                  a->nats.url, ferry_event_type_name(ev->type));
                        status = EXIT_FAILURE_RUNTIME;
                        break;
                }
                if (!pub)
                        output_event(&a->output, ev);
                if (pub || !output_writes(&a->output, ev))
                        say_special(a, ev);
                if (ev->type == FERRY_EVENT_ERROR) {
                        /* Reported, not fatal: the library lists that folder again
                         * every few seconds, so nothing made there is lost. */
                        cli_watch_error(w, ev->error, ev->path);
                        continue;
                }
                if (ev->type == FERRY_EVENT_ROOT_GONE) {
                        if (++gone == root_count && !(a->flags & FERRY_WATCH_FOLLOW)) {
                                cli_error("%s: every watched folder went away", ev->root);
                                status = EXIT_GONE;
                                break;
                        }
                        continue;
                }
                if (ev->type == FERRY_EVENT_ROOT_BACK) {
                        gone--;
                        continue;
                }
                if (ev->type == FERRY_EVENT_RESCAN)
                        continue;
                if (a->count && ++seen >= a->count)
                        break;
        }
        fflush(stdout);
        return status;
}

/* Builds the watcher the options describe; returns -1 on success or an exit code. */
static int build(const struct watch_args *a, struct ferry_watch **ret_watch)
{
        unsigned events = a->events;
        int r = ferry_watch_new(ret_watch, a->flags);

        if (r < 0) {
                cli_error("cannot start watching: %s", strerror(-r));
                return EXIT_FAILURE_RUNTIME;
        }
        for (size_t i = 0; i < a->include_count; i++)
                if (ferry_watch_include(*ret_watch, a->includes[i]) < 0)
                        return cli_usage_error("watch", "invalid glob '%s'", a->includes[i]);
        for (size_t i = 0; i < a->exclude_count; i++)
                if (ferry_watch_exclude(*ret_watch, a->excludes[i]) < 0)
                        return cli_usage_error("watch", "invalid glob '%s'", a->excludes[i]);
        if (a->backend && ferry_watch_set_backend(*ret_watch, a->backend) < 0)
                return cli_usage_error("watch", "--backend is auto, inotify or poll, not '%s'", a->backend);
        if (a->poll_interval_ns && ferry_watch_set_poll_interval(*ret_watch, a->poll_interval_ns) < 0)
                return cli_usage_error("watch", "--poll-interval must be at least 10ms");
        if (a->ready && ferry_watch_set_ready(*ret_watch, a->ready) < 0)
                return cli_usage_error("watch",
                                       "invalid ready policy '%s' (use auto, close[=GUARD], rename, "
                                       "done-file[=.SUFFIX|=MARKER] or settle=DURATION)",
                                       a->ready);
        if (!events)
                events = a->ready ? FERRY_EVENT_READY
                                  : FERRY_EVENT_CREATE | FERRY_EVENT_MODIFY | FERRY_EVENT_ATTRIB |
                                            FERRY_EVENT_CLOSE_WRITE | FERRY_EVENT_DELETE | FERRY_EVENT_MOVED_FROM |
                                            FERRY_EVENT_MOVED_TO;
        (void)ferry_watch_set_events(*ret_watch, events);
        return -1;
}

int cmd_watch(int argc, char **argv)
{
        struct watch_args a = {.timeout_ns = INT64_MAX, .output = {.mode = OUTPUT_TEXT, .stream = stdout}};
        struct publishing pub = {.stored = -1};
        struct ferry_watch *w = NULL;
        int status, r, signal_fd = -1;

        a.includes = calloc((size_t)argc, sizeof(char *));
        a.excludes = calloc((size_t)argc, sizeof(char *));
        if (!a.includes || !a.excludes) {
                cli_error("out of memory");
                status = EXIT_FAILURE_RUNTIME;
                goto out;
        }
        status = parse(argc, argv, &a);
        if (status >= 0)
                goto out;
        status = build(&a, &w);
        if (status >= 0)
                goto out;
        for (int i = optind; i < argc; i++) {
                char how[256];

                r = ferry_watch_add(w, argv[i]);
                if (r < 0) {
                        status = cli_watch_error(w, r, argv[i]);
                        goto out;
                }
                /* Polling is worth a word: it has a delay inotify has not. */
                if (ferry_watch_describe_root(w, argv[i], how, sizeof(how)) == 0 && strncmp(how, "poll", 4) == 0)
                        cli_error("%s: %s", argv[i], how);
        }
        /* Before the NATS client starts its threads: they take the blocked set from here. */
        signal_fd = cli_signal_fd(false);
        if (a.subject) {
                char why[512];

                pub.body = open_memstream(&pub.text, &pub.len);
                if (!pub.body) {
                        cli_error("out of memory");
                        status = EXIT_FAILURE_RUNTIME;
                        goto out;
                }
                r = ferry_publisher_new(&pub.p, &a.nats, a.subject, why, sizeof(why));
                if (r < 0) {
                        cli_error("%s", why);
                        status = r == -EINVAL ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
                        goto out;
                }
        }
        status = run(w, &a, (size_t)(argc - optind), a.subject ? &pub : NULL, signal_fd);
out:
        if (signal_fd >= 0)
                close(signal_fd);
        ferry_publisher_free(pub.p);
        if (pub.body)
                fclose(pub.body);
        free(pub.text);
        ferry_watch_free(w);
        free(a.includes);
        free(a.excludes);
        return status;
}
