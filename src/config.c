/* config.c: ferry.conf: rules for `ferry run -c FILE`, in an INI-like grammar.
 *
 *   # comment (also ;), only at the start of a line
 *   [ferry]                 settings of the daemon: grace, log-format, metrics-file
 *   [rule NAME]             one rule; NAME: letters, digits, - _ .
 *   dir = /srv/in           key = value; the value runs to the end of the line
 *   command = enrich --in {} "two words"
 *
 * Why not libinih: Debian's build cuts lines at 200 bytes and treats " ;" as
 * a comment inside values, which breaks long paths and handler commands. The
 * grammar is small enough to own, and every error names FILE:LINE.
 *
 * The command is split into words by the library (ferry_rule_set's
 * "command", lib/run/words.c), as systemd splits ExecStart=: no variable
 * expansion, no globbing: there is no shell.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct parser {
        const char *path;
        unsigned line;
        char *error;
        size_t error_size;
};

static int failure(struct parser *p, const char *format, ...) __attribute__((format(printf, 2, 3)));

static int failure(struct parser *p, const char *format, ...)
{
        va_list ap;
        int n = snprintf(p->error, p->error_size, "%s:%u: ", p->path, p->line);

        va_start(ap, format);
        if (n >= 0 && (size_t)n < p->error_size)
                vsnprintf(p->error + n, p->error_size - (size_t)n, format, ap);
        va_end(ap);
        return -1;
}

static char *trim(char *s)
{
        char *end;

        while (isspace((unsigned char)*s))
                s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
                *--end = '\0';
        return s;
}

/* The rule being read, until its section ends. */
struct section {
        struct ferry_rule *rule;
        char *dir;
        unsigned line;
        bool is_global;
};

static int close_rule(struct parser *p, struct section *sec, struct ferry_runner *runner)
{
        struct ferry_rule *rule = sec->rule;
        unsigned line = p->line;
        int r;

        if (!rule)
                return 0;
        sec->rule = NULL;
        /* Errors about the rule as a whole point at its section header. */
        p->line = sec->line;
        r = ferry_rule_check(rule);
        if (r < 0) {
                failure(p, "%s", ferry_rule_explain(rule));
                ferry_rule_free(rule);
                return -1;
        }
        r = ferry_runner_add_rule(runner, rule);
        if (r == -EEXIST)
                return failure(p, "a rule of that name is already defined");
        if (r < 0)
                return failure(p, "cannot add the rule: %s", strerror(-r));
        p->line = line;
        return 0;
}

static int section_start(struct parser *p, struct section *sec, char *line, struct ferry_runner *runner)
{
        char *end = strchr(line, ']'), *name;

        if (!end || *trim(end + 1))
                return failure(p, "a section header looks like [rule NAME] or [ferry]");
        *end = '\0';
        name = trim(line + 1);
        if (close_rule(p, sec, runner) < 0)
                return -1;
        sec->is_global = strcmp(name, "ferry") == 0;
        if (sec->is_global)
                return 0;
        if (strncmp(name, "rule", 4) != 0 || !isspace((unsigned char)name[4]))
                return failure(p, "unknown section [%s]: use [rule NAME] or [ferry]", name);
        name = trim(name + 4);
        sec->line = p->line;
        /* The folder comes with "dir ="; the rule is made when it does. */
        free(sec->dir);
        sec->dir = strdup(name);
        return sec->dir ? 0 : failure(p, "out of memory");
}

static int set_global(struct parser *p, struct config *config, const char *key, const char *value)
{
        if (strcmp(key, "grace") == 0) {
                if (ferry_duration_parse(value, &config->grace_ns) < 0)
                        return failure(p, "grace: '%s' is not a duration (use e.g. 30s, 2m)", value);
                return 0;
        }
        if (strcmp(key, "log-format") == 0) {
                if (strcmp(value, "text") != 0 && strcmp(value, "json") != 0)
                        return failure(p, "log-format is text or json, not '%s'", value);
                config->json = strcmp(value, "json") == 0;
                return 0;
        }
        if (strcmp(key, "metrics-file") == 0) {
                char *copy;

                if (!*value)
                        return failure(p, "metrics-file needs a path, such as %s",
                                       "/var/lib/prometheus/node-exporter/ferry.prom");
                copy = strdup(value);
                if (!copy)
                        return failure(p, "out of memory");
                free(config->metrics_file);
                config->metrics_file = copy;
                return 0;
        }
        return failure(p, "unknown setting '%s' in [ferry] (grace, log-format, metrics-file)", key);
}

static int set_key(struct parser *p, struct section *sec, struct config *config, const char *key, const char *value)
{
        int r;

        if (sec->is_global)
                return set_global(p, config, key, value);
        if (!sec->dir)
                return failure(p, "'%s' outside a section: start with [rule NAME]", key);
        if (strcmp(key, "dir") == 0) {
                if (sec->rule)
                        return failure(p, "dir is set twice in this rule");
                r = ferry_rule_new(&sec->rule, sec->dir, value);
                if (r < 0)
                        return failure(p, "invalid rule name '%s' (letters, digits, '-', '_', '.') or empty dir",
                                       sec->dir);
                return 0;
        }
        if (!sec->rule)
                return failure(p, "set dir = FOLDER first in [rule %s]", sec->dir);
        r = ferry_rule_set(sec->rule, key, value);
        return r < 0 ? failure(p, "%s", ferry_rule_explain(sec->rule)) : 0;
}

int config_load(const char *path, struct ferry_runner *runner, struct config *config, char *error, size_t size)
{
        struct parser p = {.path = path, .error = error, .error_size = size};
        struct section sec = {0};
        char *line = NULL;
        size_t capacity = 0;
        bool any_rule = false;
        int r = 0;
        FILE *f = fopen(path, "re");

        config->metrics_file = NULL; /* the caller owns the old value */
        if (!f) {
                snprintf(error, size, "cannot read %s: %s", path, strerror(errno));
                return -1;
        }
        for (ssize_t n; r == 0 && (n = getline(&line, &capacity, f)) >= 0;) {
                char *s, *eq;

                p.line++;
                /* A NUL byte would end the value early, silently (*.t\0xt read as *.t). */
                if (memchr(line, '\0', (size_t)n)) {
                        r = failure(&p, "a NUL byte in the line: a value cannot hold one");
                        continue;
                }
                s = trim(line);
                if (!*s || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        r = section_start(&p, &sec, s, runner);
                        any_rule |= !sec.is_global;
                        continue;
                }
                eq = strchr(s, '=');
                if (!eq) {
                        r = failure(&p, "expected key = value, [rule NAME] or a # comment");
                        continue;
                }
                *eq = '\0';
                r = set_key(&p, &sec, config, trim(s), trim(eq + 1));
        }
        if (r == 0 && ferror(f))
                r = failure(&p, "read error: %s", strerror(errno));
        if (r == 0 && sec.dir && !sec.rule) {
                p.line = sec.line;
                r = failure(&p, "[rule %s] has no dir = FOLDER", sec.dir);
        }
        if (r == 0)
                r = close_rule(&p, &sec, runner);
        if (r == 0 && !any_rule)
                r = failure(&p, "no [rule NAME] section: nothing to run");
        if (r < 0) {
                free(config->metrics_file);
                config->metrics_file = NULL;
        }
        ferry_rule_free(sec.rule);
        free(sec.dir);
        free(line);
        fclose(f);
        return r;
}
