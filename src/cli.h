/* cli.h: what the subcommands of the ferry command share: exit codes,
 * error reporting, option values, and event output. */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <ferry.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* Exit codes, documented in ferry(1). */
enum {
        EXIT_OK = 0,
        EXIT_FAILURE_RUNTIME = 1, /* cannot watch, watch limit reached, I/O error */
        EXIT_USAGE = 2,           /* bad option or value */
        EXIT_TIMED_OUT = 3,       /* --timeout passed before the goal was reached */
        EXIT_GONE = 4,            /* every watched root went away, without --follow */
};

/* Prints "ferry: MESSAGE" on stderr. */
void cli_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* Prints "ferry: MESSAGE; see 'ferry COMMAND --help'" (one line); returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Reports what getopt_long() returned as c ('?' or ':'); returns EXIT_USAGE.
 * The option strings start with ':' and opterr is 0, so this is the only message. */
int cli_bad_option(const char *command, int c, char **argv);
/* Prints the library's explanation of error for path; returns EXIT_FAILURE_RUNTIME. */
int cli_watch_error(struct ferry_watch *w, int error, const char *path);

/* Option values; return false (after printing the error) when invalid. */
bool cli_parse_duration(const char *command, const char *option, const char *text, int64_t *ret_ns);
bool cli_parse_count(const char *command, const char *option, const char *text, uint64_t *ret_count);
bool cli_parse_events(const char *command, const char *text, unsigned *ret_mask);

/* Blocks SIGINT and SIGTERM (and SIGHUP when hangup) and returns a signalfd for them, or -1. */
int cli_signal_fd(bool hangup);

/* Waits for the watcher (or a signal) until deadline_ns (CLOCK_MONOTONIC,
 * INT64_MAX: no deadline). Returns 1 when events may be ready, 0 on
 * deadline, -1 when a stop signal arrived. */
int cli_wait(struct ferry_watch *w, int signal_fd, int64_t deadline_ns);
int64_t cli_now(void);

/* The next event of w, waiting until deadline_ns; what ended the wait. */
enum { CLI_NEXT_EVENT, CLI_NEXT_DEADLINE, CLI_NEXT_SIGNAL, CLI_NEXT_ERROR /* said on stderr */ };
int cli_next_event(struct ferry_watch *w, int signal_fd, int64_t deadline_ns, const struct ferry_event **ret_event);

/* The rules a folder command (status, explain, pause, resume, retry) acts on
 * (rules.c): -c FILE, or --dir DIR with rule options. */
struct rule_args {
        const char *command;
        const char *usage; /* printed for -h */
        const char *config, *dir, *name;
        bool json;
        bool all, dry_run;          /* retry */
        const char *reason, *since; /* retry */
        struct ferry_rule *rule;    /* the command line's rule, before it goes to the runner */
};
/* Parses argv into a runner of those rules, not started; returns -1, with
 * optind at the first operand, or the exit code after saying why (or the
 * help). */
int rules_load(int argc, char **argv, struct rule_args *a, struct ferry_runner **ret_runner);

/* Output of events: text, JSON lines, NUL-terminated paths, or a format. */
enum output_mode { OUTPUT_TEXT, OUTPUT_JSON, OUTPUT_NULL, OUTPUT_FORMAT };

struct output {
        enum output_mode mode;
        const char *format; /* OUTPUT_FORMAT */
        FILE *stream;
};

void output_event(const struct output *o, const struct ferry_event *ev);
/* Whether a --format knows every directive (%e %p %r %n %f %o %s %%) and
 * escape (\n \t \0 \\) in it; the first unknown one, or a lone % or \ at its
 * end, goes to bad. */
bool output_format_check(const char *format, char *bad, size_t size);
/* Whether output_event() writes ev: special events (rescan, root_gone,
 * root_back, error) are left out of -0 and of a --format without %e. */
bool output_writes(const struct output *o, const struct ferry_event *ev);
/* Bytes as one line of text: backslash, control and non-ASCII bytes escaped (\n, \t, \\, \xHH). */
void output_escaped(FILE *out, const char *s, size_t n);

/* notify.c: systemd's notification protocol (sd_notify(3)), without libsystemd. */
struct notifier {
        int fd;                     /* -1: no $NOTIFY_SOCKET, every send does nothing */
        struct sockaddr_un address; /* where to send */
        socklen_t address_len;
        int64_t watchdog_ns; /* $WATCHDOG_USEC meant for us, in ns; 0: no watchdog */
        bool failed;         /* the last send failed (and was reported) */
};

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID (and unsets them, so
 * that handlers do not inherit them). Returns 1 when notifications go out, 0
 * when the variable is not set, -errno (after saying why) when it is unusable:
 * ferry then runs without notifying. */
int notify_open(struct notifier *n);
void notify_close(struct notifier *n);
/* Sends one datagram of newline-separated VARIABLE=VALUE lines. Returns 1,
 * 0 without a socket, or -errno (reported once until a send works again). */
int notify_send(struct notifier *n, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* CLOCK_MONOTONIC in microseconds, for MONOTONIC_USEC= with RELOADING=1. */
uint64_t notify_monotonic_usec(void);

/* metrics.c: the runner's counters in the Prometheus text format, written
 * atomically for node_exporter's textfile collector. */
struct metrics {
        char *path;                        /* owned; NULL: no metrics file */
        mode_t mode;                       /* of the file: 0666 less the umask */
        int64_t written_at;                /* CLOCK_MONOTONIC ns of the last write; 0: never */
        struct ferry_runner_stats written; /* what the last write held */
        bool failing;                      /* the last write failed (and was reported) */
};

/* The file can be made: its folder exists. Says why not, on stderr. */
bool metrics_path_usable(const char *path);
/* Sets the file (copied; NULL: none). The next update writes it. */
int metrics_set_path(struct metrics *m, const char *path);
void metrics_free(struct metrics *m);
/* Replaces the file with st (and, with runner, whether each rule's folder is
 * up) now. 0, or -errno (reported once until a write works again). */
int metrics_write(struct metrics *m, struct ferry_runner *runner, const struct ferry_runner_stats *st, int64_t now);
/* Writes st when it differs from the file's and the last write is 5 s old.
 * Returns when to call again (a later write is due), or INT64_MAX. */
int64_t metrics_update(struct metrics *m, struct ferry_runner *runner, const struct ferry_runner_stats *st,
                       int64_t now);

int cmd_watch(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_put(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_retry(int argc, char **argv);
int cmd_purge(int argc, char **argv);
int cmd_history(int argc, char **argv);

#endif
