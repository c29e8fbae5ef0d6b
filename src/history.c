/* history.c: `ferry history`: what happened to a file, from the audit trail
 * the rule's workers keep in its folder (ferry_rule_history), in time order. */
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char history_usage[] =
        "Usage: ferry history [-c FILE [RULE] | --dir DIR [--name NAME]] PATH|NAME [--json]\n"
        "What happened to a file: each claim, handler start, outcome, requeue and purge,\n"
        "on every host, from the audit trail in DIR/.ferry/audit/, oldest first.\n"
        "\n"
        "  -c, --config FILE      the rules of FILE (RULE: only that one)\n"
        "      --dir DIR          one rule's folder, as for ferry run (--name NAME)\n"
        "  PATH                   a file by its path (where it was found in DIR)\n"
        "  NAME                   a name without '/': every file of that name\n"
        "      --json             the trail's own JSON lines\n"
        "  -h, --help             show this help\n";

struct history {
        const struct rule_args *a;
        const char *only; /* a rule's name, or NULL */
        const char *arg;  /* PATH or NAME */
        char *absolute;   /* PATH made absolute, or NULL for a NAME */
        char **lines;
        size_t count, capacity;
        bool any, error;
};

static void collect(void *userdata, const char *line, size_t len)
{
        struct history *h = userdata;

        if (h->count == h->capacity) {
                size_t bigger_capacity = h->capacity ? h->capacity * 2 : 64;
                char **bigger = realloc(h->lines, bigger_capacity * sizeof(*bigger));

                if (!bigger)
                        return;
                h->lines = bigger;
                h->capacity = bigger_capacity;
        }
        if ((h->lines[h->count] = strndup(line, len)))
                h->count++;
}

static int history_rule(void *userdata, struct ferry_rule *rule)
{
        struct history *h = userdata;
        const char *dir = ferry_rule_dir(rule), *relative = h->arg;
        char *real_dir = NULL;
        size_t n;

        if (h->only && strcmp(h->only, ferry_rule_name(rule)) != 0)
                return 0;
        if (h->absolute) {
                /* PATH: only the rule whose folder holds it, by its path there. */
                real_dir = realpath(dir, NULL);
                n = real_dir ? strlen(real_dir) : 0;
                if (!real_dir || strncmp(h->absolute, real_dir, n) != 0 || h->absolute[n] != '/') {
                        free(real_dir);
                        return 0;
                }
                relative = h->absolute + n + 1;
        }
        h->any = true;
        if (ferry_rule_history(rule, relative, !h->absolute, collect, h) < 0) {
                cli_error("%s", ferry_rule_explain(rule));
                h->error = true;
        }
        free(real_dir);
        return 0;
}

static int by_time(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b); /* each line begins with its time */
}

/* The raw text of "key":"..." in line ("" when absent), JSON escapes kept. */
static void show_field(const char *line, const char *key, int width)
{
        char pattern[32];
        const char *p, *q;

        snprintf(pattern, sizeof(pattern), "\"%s\":\"", key);
        p = strstr(line, pattern);
        if (!p) {
                printf("%-*s", width, "");
                return;
        }
        p += strlen(pattern);
        for (q = p; *q && *q != '"'; q++)
                if (*q == '\\' && q[1])
                        q++;
        printf("%-*.*s", width, (int)(q - p), p);
}

/* "  (SIZE B, sha256 FIRST-12-DIGITS)" when the line has them: what the file was. */
static void show_file(const char *line)
{
        const char *size = strstr(line, "\"size\":"), *sha = strstr(line, "\"sha256\":\"");
        long long bytes;

        if (!size || sscanf(size + 7, "%lld", &bytes) != 1)
                return;
        printf("  (%lld B", bytes);
        if (sha && strlen(sha + 10) > 12)
                printf(", sha256 %.12s", sha + 10);
        putchar(')');
}

int cmd_history(int argc, char **argv)
{
        struct rule_args a = {.command = "history", .usage = history_usage};
        struct ferry_runner *runner = NULL;
        struct history h = {.a = &a};
        int status = rules_load(argc, argv, &a, &runner), first = optind;

        if (status >= 0)
                return status;
        status = EXIT_USAGE;
        if (a.config && argc - first == 2) {
                h.only = argv[first++];
        }
        if (argc - first != 1) {
                cli_usage_error("history", "give one PATH or NAME");
                goto out;
        }
        h.arg = argv[first];
        if (strchr(h.arg, '/')) {
                char *slash, *copy = strdup(h.arg), *dir;

                if (!copy)
                        goto out;
                slash = strrchr(copy, '/');
                *slash = '\0';
                dir = realpath(*copy ? copy : "/", NULL);
                if (!dir || asprintf(&h.absolute, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, slash + 1) < 0) {
                        cli_error("%s: its folder cannot be found", h.arg);
                        free(dir);
                        free(copy);
                        status = EXIT_FAILURE_RUNTIME;
                        goto out;
                }
                free(dir);
                free(copy);
        }
        (void)ferry_runner_each_rule(runner, history_rule, &h);
        status = h.error ? EXIT_FAILURE_RUNTIME : EXIT_OK;
        if (!h.any) {
                cli_error("%s: %s", h.arg, h.absolute ? "in no rule's folder" : "no such rule");
                status = EXIT_FAILURE_RUNTIME;
                goto out;
        }
        if (h.count)
                qsort(h.lines, h.count, sizeof(*h.lines), by_time);
        for (size_t i = 0; i < h.count; i++) {
                if (a.json) {
                        puts(h.lines[i]);
                        continue;
                }
                show_field(h.lines[i], "time", 29);
                show_field(h.lines[i], "event", 10);
                show_field(h.lines[i], "host", 16);
                show_field(h.lines[i], "path", 0);
                fputs("  ", stdout);
                show_field(h.lines[i], "message", 0);
                show_file(h.lines[i]);
                putchar('\n');
        }
        if (!h.count && !h.error)
                printf("nothing in the audit trail about %s\n", h.arg);
out:
        for (size_t i = 0; i < h.count; i++)
                free(h.lines[i]);
        free(h.lines);
        free(h.absolute);
        ferry_runner_free(runner);
        return status;
}
