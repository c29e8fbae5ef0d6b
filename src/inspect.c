/* inspect.c: `ferry status` and `ferry explain`: what a rule's folder holds,
 * and why a file was or was not handled, read from the folders themselves, so
 * they work whether ferry run is running, stopped, or on another machine. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char status_usage[] =
        "Usage: ferry status [-c FILE | --dir DIR [--name NAME]] [--json]\n"
        "Show, per rule: files queued, in flight (file, handler pid, for how long),\n"
        "retries pending, claims of dead workers, done, failed with their reasons, how\n"
        "the folder is watched and why, the handler and hooks a config's rule runs,\n"
        "and what the rule adds to its handlers' environment (values of keys, tokens,\n"
        "secrets and passwords hidden). Reads the folders: works whether ferry run\n"
        "runs or not.\n"
        "\n"
        "  -c, --config FILE      the rules of FILE (see ferry.conf(5))\n"
        "      --dir DIR          the folder of a rule given on the command line\n"
        "      --name NAME        that rule's name (default run, as ferry run)\n"
        "      --match, --exclude, -r, --ready, --done, --failed, --keep, --delete,\n"
        "      --symlinks, --require-file, --backend, --poll-interval: as given to\n"
        "                         ferry run, so the same files count\n"
        "      --json             one JSON object per rule\n"
        "  -h, --help             show this help\n";

static const char explain_usage[] =
        "Usage: ferry explain [-c FILE | --dir DIR [RULE OPTIONS]] PATH\n"
        "Say why PATH was or was not handled: which rule takes it or why none does\n"
        "(not in its folder, temporary name, glob, symlink), whether it is ready (a\n"
        "writer still has it open, settling, waiting for or mismatching its marker),\n"
        "claimed by which worker since when, done, or failed and why; under dedup,\n"
        "whether its content was handled already.\n"
        "\n"
        "  -c, --config FILE      the rules of FILE\n"
        "      --dir DIR          one rule given as for ferry run (--match, --exclude, -r,\n"
        "                         --ready, --done, --failed, --keep, --delete, --symlinks,\n"
        "                         --require-file, --backend, --poll-interval,\n"
        "                         --done-layout, --dedup, --dedup-window)\n"
        "  -h, --help             show this help\n";

static void print_time(FILE *out, int64_t unix_seconds)
{
        char text[64];
        time_t t = (time_t)unix_seconds;
        struct tm tm;

        if (unix_seconds && localtime_r(&t, &tm) && strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &tm))
                fputs(text, out);
        else
                fputs("unknown time", out);
}

struct printer {
        bool json;
        bool first;       /* JSON: no element in the current array yet */
        bool in_failures; /* JSON: the claims array is closed, the failures one open */
        bool unreadable;  /* a rule's folder could not be read: exit 1 */
        bool programs;    /* the rules come with their programs (-c FILE; --dir has none) */
        int64_t now_ns;
};

/* JSON: closes the claims array and opens the failures one, once. */
static void start_failures(struct printer *p)
{
        if (!p->json || p->in_failures)
                return;
        fputs("],\"failures\":[", stdout);
        p->first = true;
        p->in_failures = true;
}

static void print_claim(void *userdata, const struct ferry_claim_info *c)
{
        struct printer *p = userdata;
        double for_s = (double)(p->now_ns - c->since) / 1e9;

        if (p->json) {
                fputs(p->first ? "" : ",", stdout);
                p->first = false;
                printf("{\"worker\":\"%s\",\"pid\":%d,\"for\":%.3f,\"worker_alive\":%s,\"handled\":%s", c->worker,
                       c->pid, for_s, c->worker_alive ? "true" : "false", c->handled ? "true" : "false");
                ferry_json_field(stdout, "path", c->path, strlen(c->path));
                fputs("}", stdout);
                return;
        }
        fputs("  ", stdout);
        fputs(c->handled         ? "handled, to move "
              : !c->worker_alive ? "orphaned "
              : c->pid           ? "in flight "
                                 : "retry pending ",
              stdout);
        output_escaped(stdout, c->path, strlen(c->path));
        if (c->pid)
                printf("  pid %d, running for %.1fs", c->pid, for_s);
        else
                printf("  claimed %.1fs ago", for_s);
        printf("  (worker %s%s)\n", c->worker, c->worker_alive ? "" : ", dead: its claims are taken over");
}

static void print_failure(void *userdata, const struct ferry_failure_info *f)
{
        struct printer *p = userdata;

        start_failures(p);
        if (p->json) {
                fputs(p->first ? "" : ",", stdout);
                p->first = false;
                printf("{\"when\":%lld", (long long)f->when);
                ferry_json_field(stdout, "path", f->path, strlen(f->path));
                ferry_json_field(stdout, "reason", f->reason, strlen(f->reason));
                fputs("}", stdout);
                return;
        }
        fputs("  failed ", stdout);
        output_escaped(stdout, f->path, strlen(f->path));
        fputs(": ", stdout);
        output_escaped(stdout, f->reason, strlen(f->reason));
        fputs(" (", stdout);
        print_time(stdout, f->when);
        fputs(")\n", stdout);
}

/* The programs the rule runs (handler, hooks), as their words: a line each,
 * a word with a space or a quote in it between single quotes; in JSON,
 * "handler", "on_done", "on_failure": arrays of words (with a _base64 twin
 * when a word is not UTF-8), or null (always, for a rule given with --dir:
 * it has no program). */
static void print_programs(const struct printer *p, const struct ferry_rule *rule)
{
        static const struct {
                const char *which, *label, *key; /* ferry_rule_program's, the text's, the JSON's */
        } programs[] = {
                {"command", "handler", "handler"},
                {"on-done", "on-done", "on_done"},
                {"on-failure", "on-failure", "on_failure"},
        };

        for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
                char *const *words = p->programs ? ferry_rule_program(rule, programs[i].which) : NULL;

                if (p->json) {
                        if (words)
                                ferry_json_words(stdout, programs[i].key, words);
                        else
                                printf(",\"%s\":null", programs[i].key);
                        continue;
                }
                if (!words)
                        continue;
                printf("  %s:", programs[i].label);
                for (size_t w = 0; words[w]; w++) {
                        bool quote = !words[w][0] || strpbrk(words[w], " '\"") != NULL;

                        fputs(quote ? " '" : " ", stdout);
                        output_escaped(stdout, words[w], strlen(words[w]));
                        fputs(quote ? "'" : "", stdout);
                }
                fputc('\n', stdout);
        }
}

/* One variable rule adds to its handlers' environment: a secret's value is not shown. */
static void print_env(void *userdata, const char *name, const char *value, int secret)
{
        struct printer *p = userdata;

        if (p->json) {
                fputs(p->first ? "" : ",", stdout);
                p->first = false;
                printf("{\"hidden\":%s", secret ? "true" : "false");
                ferry_json_field(stdout, value ? "name" : "pass", name, strlen(name));
                if (value && !secret)
                        ferry_json_field(stdout, "value", value, strlen(value));
                fputc('}', stdout);
                return;
        }
        fputs("  environment: ", stdout);
        if (!value) {
                output_escaped(stdout, name, strlen(name));
                fputs(" passed from ferry's own environment\n", stdout);
                return;
        }
        output_escaped(stdout, name, strlen(name));
        fputc('=', stdout);
        if (secret)
                fputs("(hidden: a key, token, secret or password)", stdout);
        else
                output_escaped(stdout, value, strlen(value));
        fputc('\n', stdout);
}

static int status_of_rule(void *userdata, struct ferry_rule *rule)
{
        struct printer *p = userdata;
        struct ferry_rule_status st;
        struct timespec now;
        const char *name, *dir;
        int64_t since = 0;
        int r, paused;

        clock_gettime(CLOCK_REALTIME, &now);
        p->now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
        name = ferry_rule_name(rule);
        dir = ferry_rule_dir(rule);
        if (!p->json) {
                printf("rule %s: ", name);
                output_escaped(stdout, dir, strlen(dir));
                fputc('\n', stdout);
        }
        if (p->json) {
                printf("{\"rule\":\"%s\"", name);
                ferry_json_field(stdout, "dir", dir, strlen(dir));
                fputs(",\"claims\":[", stdout);
                p->first = true;
        }
        paused = ferry_rule_paused(rule, &since);
        /* One pass over the folders: claims come first, then failures. */
        p->in_failures = false;
        r = ferry_rule_status(rule, &st, print_claim, print_failure, p);
        if (r < 0) {
                if (p->json)
                        fputs("]}\n", stdout);
                cli_error("cannot read %s: %s", dir, strerror(-r));
                p->unreadable = true; /* the other rules are still shown; the exit status says it */
                return 0;
        }
        if (p->json) {
                start_failures(p);
                printf("],\"queued\":%llu,\"in_flight\":%llu,\"retries_pending\":%llu,\"orphaned\":%llu,"
                       "\"done\":%llu,\"failed\":%llu",
                       (unsigned long long)st.queued, (unsigned long long)st.in_flight, (unsigned long long)st.waiting,
                       (unsigned long long)st.orphaned, (unsigned long long)st.done, (unsigned long long)st.failed);
                ferry_json_field(stdout, "backend", st.backend, strlen(st.backend));
                printf(",\"paused\":%s", paused > 0 ? "true" : "false");
                print_programs(p, rule);
                fputs(",\"env\":[", stdout);
                p->first = true;
                r = ferry_rule_env(rule, print_env, p);
                fputs("]}\n", stdout);
        } else {
                printf("  queued %llu, in flight %llu, retries pending %llu, orphaned %llu, done %llu, failed %llu\n",
                       (unsigned long long)st.queued, (unsigned long long)st.in_flight, (unsigned long long)st.waiting,
                       (unsigned long long)st.orphaned, (unsigned long long)st.done, (unsigned long long)st.failed);
                printf("  watched with %s\n", st.backend);
                print_programs(p, rule);
                if (paused > 0) {
                        fputs("  paused since ", stdout);
                        print_time(stdout, since / 1000000000);
                        fputs(": no handler starts until ferry resume\n", stdout);
                }
                r = ferry_rule_env(rule, print_env, p);
        }
        if (r < 0) {
                cli_error("%s", ferry_rule_explain(rule));
                p->unreadable = true;
        }
        return 0;
}

int cmd_status(int argc, char **argv)
{
        struct rule_args a = {.command = "status", .usage = status_usage};
        struct ferry_runner *runner = NULL;
        struct printer p = {0};
        int status = rules_load(argc, argv, &a, &runner);

        if (status >= 0)
                return status;
        if (optind < argc) {
                ferry_runner_free(runner);
                return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
        }
        p.json = a.json;
        p.programs = a.config != NULL;
        (void)ferry_runner_each_rule(runner, status_of_rule, &p);
        ferry_runner_free(runner);
        return p.unreadable ? EXIT_FAILURE_RUNTIME : EXIT_OK;
}

struct explaining {
        const char *path;
        bool any;
};

static int explain_rule(void *userdata, struct ferry_rule *rule)
{
        struct explaining *e = userdata;
        char text[8192];

        if (ferry_rule_explain_path(rule, e->path, text, sizeof(text)) == 0) {
                /* One line each; names inside escaped, as everywhere in text output. */
                for (char *line = text, *end; *line; line = *end ? end + 1 : end) {
                        end = line + strcspn(line, "\n");
                        output_escaped(stdout, line, (size_t)(end - line));
                        fputc('\n', stdout);
                }
                e->any = true;
        }
        return 0;
}

int cmd_explain(int argc, char **argv)
{
        struct rule_args a = {.command = "explain", .usage = explain_usage};
        struct ferry_runner *runner = NULL;
        struct explaining e = {0};
        int status = rules_load(argc, argv, &a, &runner);

        if (status >= 0)
                return status;
        if (optind + 1 != argc) {
                ferry_runner_free(runner);
                return cli_usage_error("explain", "give one PATH");
        }
        e.path = argv[optind];
        (void)ferry_runner_each_rule(runner, explain_rule, &e);
        ferry_runner_free(runner);
        return e.any ? EXIT_OK : EXIT_FAILURE_RUNTIME;
}
