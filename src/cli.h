/* cli.h: what the subcommands of the ferry command share: exit codes,
 * error reporting, option values, and event output. */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <ferry.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

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

/* Output of events: text, JSON lines, NUL-terminated paths, or a format. */
enum output_mode { OUTPUT_TEXT, OUTPUT_JSON, OUTPUT_NULL, OUTPUT_FORMAT };

struct output {
        enum output_mode mode;
        const char *format; /* OUTPUT_FORMAT */
        FILE *stream;
};

void output_event(const struct output *o, const struct ferry_event *ev);
/* Bytes as one line of text: backslash, control and non-ASCII bytes escaped (\n, \t, \\, \xHH). */
void output_escaped(FILE *out, const char *s, size_t n);
/* ,"key":"value" and, when value is not UTF-8, ,"key_base64":"exact bytes". */
void output_json_field(FILE *out, const char *key, const char *s, size_t n);

int cmd_watch(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_put(int argc, char **argv);

#endif
