/* cli.c: helpers every subcommand uses: errors, option values, waiting. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

void cli_error(const char *format, ...)
{
        va_list ap;

        fflush(stdout);
        fputs("ferry: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
}

int cli_usage_error(const char *command, const char *format, ...)
{
        va_list ap;

        fputs("ferry: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fprintf(stderr, "; see 'ferry %s --help'\n", command);
        return EXIT_USAGE;
}

int cli_bad_option(const char *command, int c, char **argv)
{
        const char *word = argv[optind - 1];

        if (c == ':')
                return cli_usage_error(command, "option '%s' needs a value", word);
        if (optopt && strncmp(word, "--", 2) != 0)
                return cli_usage_error(command, "unknown option '-%c'", optopt);
        return cli_usage_error(command, "unknown option '%s'", word);
}

int cli_watch_error(struct ferry_watch *w, int error, const char *path)
{
        char message[8192];

        if (ferry_watch_explain(w, error, path, message, sizeof(message)) < 0)
                snprintf(message, sizeof(message), "cannot watch %s: %s", path, strerror(-error));
        cli_error("%s", message);
        return EXIT_FAILURE_RUNTIME;
}

bool cli_parse_duration(const char *command, const char *option, const char *text, int64_t *ret_ns)
{
        if (ferry_duration_parse(text, ret_ns) == 0)
                return true;
        cli_usage_error(command, "invalid duration for %s: '%s' (use e.g. 500ms, 2s, 1.5m, 1h)", option, text);
        return false;
}

bool cli_parse_count(const char *command, const char *option, const char *text, uint64_t *ret_count)
{
        char *end;
        uintmax_t value;

        errno = 0;
        value = strtoumax(text, &end, 10);
        if (*text < '1' || *text > '9' || *end || errno == ERANGE || value > UINT64_MAX) {
                cli_usage_error(command, "invalid count for %s: '%s' (use a positive whole number)", option, text);
                return false;
        }
        *ret_count = value;
        return true;
}

bool cli_parse_events(const char *command, const char *text, unsigned *ret_mask)
{
        char *copy = strdup(text), *save = NULL;
        unsigned mask = 0;
        bool ok = copy != NULL;

        for (char *word = copy ? strtok_r(copy, ",", &save) : NULL; ok && word; word = strtok_r(NULL, ",", &save)) {
                int type;

                if (strcmp(word, "all") == 0)
                        type = FERRY_EVENT_ALL;
                else if (strcmp(word, "move") == 0)
                        type = FERRY_EVENT_MOVED_FROM | FERRY_EVENT_MOVED_TO;
                else if (strcmp(word, "close") == 0)
                        type = FERRY_EVENT_CLOSE_WRITE;
                else
                        type = ferry_event_type_parse(word);
                if (type < 0) {
                        cli_usage_error(command,
                                        "unknown event '%s' in --events (use create, modify, attrib, close_write, "
                                        "delete, moved_from, moved_to, move, ready, all)",
                                        word);
                        ok = false;
                }
                mask |= (unsigned)type;
        }
        free(copy);
        if (ok && mask == 0) {
                cli_usage_error(command, "--events needs at least one event name");
                ok = false;
        }
        *ret_mask = mask;
        return ok;
}

int cli_signal_fd(bool hangup)
{
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        if (hangup)
                sigaddset(&set, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                return -1;
        return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int64_t cli_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int cli_wait(struct ferry_watch *w, int signal_fd, int64_t deadline_ns)
{
        struct pollfd fds[2] = {
                {.fd = ferry_watch_fd(w), .events = POLLIN},
                {.fd = signal_fd, .events = POLLIN},
        };

        fflush(stdout);
        for (;;) {
                int timeout = -1;
                int r;

                if (deadline_ns != INT64_MAX) {
                        int64_t left = deadline_ns - cli_now();

                        if (left <= 0)
                                return 0;
                        timeout = left / 1000000 >= INT_MAX ? INT_MAX : (int)((left + 999999) / 1000000);
                }
                r = poll(fds, signal_fd >= 0 ? 2 : 1, timeout);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return 1; /* let ferry_watch_next() report it */
                if (r > 0 && (fds[1].revents & POLLIN))
                        return -1;
                if (r > 0)
                        return 1;
        }
}

int cli_next_event(struct ferry_watch *w, int signal_fd, int64_t deadline_ns, const struct ferry_event **ret_event)
{
        for (;;) {
                int r = ferry_watch_next(w, ret_event, 0);

                if (r < 0) {
                        cli_error("cannot read events: %s", strerror(-r));
                        return CLI_NEXT_ERROR;
                }
                if (r == 1)
                        return CLI_NEXT_EVENT;
                r = cli_wait(w, signal_fd, deadline_ns);
                if (r == 0)
                        return CLI_NEXT_DEADLINE;
                if (r < 0)
                        return CLI_NEXT_SIGNAL;
        }
}
