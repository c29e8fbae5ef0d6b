/* retry.c: `ferry retry`: failed files put back into their folder, chosen by
 * path, reason or time, through the library's ferry_rule_retry. */
#include "cli.h"

#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char retry_usage[] =
        "Usage: ferry retry [-c FILE [RULE] | --dir DIR [RULE OPTIONS]]\n"
        "                   (PATH... | --all | --reason GLOB | --since TIME) [--dry-run]\n"
        "Put failed files back into their folder, to be handled again: by rename,\n"
        "never replacing a file (a taken name comes back as STEM.N.EXT); their notes\n"
        "are kept in the failed folder's .requeued/. Works whether ferry run runs or\n"
        "not, from any host that shares the folder.\n"
        "\n"
        "  -c, --config FILE      the rules of FILE (RULE: only that one)\n"
        "      --dir DIR          one rule given as for ferry run (--name, --failed, ...)\n"
        "  PATH                   a failed file, by its path in the failed folder or\n"
        "                         where it was found\n"
        "      --all              every failed file\n"
        "      --reason GLOB      those whose reason matches GLOB, e.g. 'exit status 7'\n"
        "                         or 'timed out*'\n"
        "      --since TIME       those that failed within TIME (a duration: 2h, 7d) or\n"
        "                         since TIME (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], UTC)\n"
        "      --dry-run          say what would be put back, and move nothing\n"
        "  -h, --help             show this help\n";

struct retry {
        const struct rule_args *a;
        char **paths; /* absolute */
        bool *found;
        int path_count;
        int64_t since; /* unix seconds; 0: any */
        int selected, failed;
};

/* path made absolute (its folder resolved, so that "in/../in/x" and "./in/x" are the same); NULL: out of memory */
static char *absolute(const char *path)
{
        char *copy = strdup(path), *slash, *dir, *result = NULL;

        if (!copy)
                return NULL;
        slash = strrchr(copy, '/');
        if (slash)
                *slash = '\0';
        dir = realpath(slash ? (*copy ? copy : "/") : ".", NULL);
        if (dir && asprintf(&result, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, slash ? slash + 1 : copy) < 0)
                result = NULL;
        free(dir);
        if (!result)
                result = strdup(path);
        free(copy);
        return result;
}

static int retry_select(void *userdata, const struct ferry_failure_info *f, const char *back_to)
{
        struct retry *r = userdata;

        if (r->a->reason && fnmatch(r->a->reason, f->reason, 0) != 0)
                return 0;
        if (r->since && f->when < r->since)
                return 0;
        if (!r->path_count)
                return 1;
        for (int i = 0; i < r->path_count; i++) {
                char *failed = absolute(f->path), *back = absolute(back_to);
                bool same = (failed && strcmp(failed, r->paths[i]) == 0) || (back && strcmp(back, r->paths[i]) == 0);

                free(failed);
                free(back);
                if (same) {
                        r->found[i] = true;
                        return 1;
                }
        }
        return 0;
}

static void retry_done(void *userdata, const struct ferry_failure_info *f, const char *back_to, int error)
{
        struct retry *r = userdata;

        if (error < 0) {
                cli_error("cannot put %s back to %s: %s", f->path, back_to, strerror(-error));
                r->failed++;
                return;
        }
        r->selected++;
        fputs(r->a->dry_run ? "would requeue " : "requeued ", stdout);
        output_escaped(stdout, f->path, strlen(f->path));
        fputs(" -> ", stdout);
        output_escaped(stdout, back_to, strlen(back_to));
        fputs(" (", stdout);
        output_escaped(stdout, f->reason, strlen(f->reason));
        fputs(")\n", stdout);
}

struct retry_rules {
        struct retry *r;
        const char *only; /* a rule's name, or NULL */
        bool any, error;
};

static int retry_rule(void *userdata, struct ferry_rule *rule)
{
        struct retry_rules *rr = userdata;

        if (rr->only && strcmp(rr->only, ferry_rule_name(rule)) != 0)
                return 0;
        rr->any = true;
        if (ferry_rule_retry(rule, retry_select, retry_done, rr->r->a->dry_run, rr->r) < 0) {
                cli_error("%s", ferry_rule_explain(rule));
                rr->error = true;
        }
        return 0;
}

static int has_rule(void *userdata, struct ferry_rule *rule)
{
        return strcmp(userdata, ferry_rule_name(rule)) == 0;
}

/* --since: a duration back from now, or a UTC date and time. */
static bool parse_since(const char *text, int64_t *ret_unix)
{
        static const char *const formats[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"};
        int64_t ns;

        if (ferry_duration_parse(text, &ns) == 0) {
                *ret_unix = (int64_t)time(NULL) - ns / 1000000000;
                return true;
        }
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                struct tm tm = {0};
                const char *end = strptime(text, formats[i], &tm);

                if (end && !*end) {
                        *ret_unix = (int64_t)timegm(&tm);
                        return true;
                }
        }
        return false;
}

int cmd_retry(int argc, char **argv)
{
        struct rule_args a = {.command = "retry", .usage = retry_usage};
        struct ferry_runner *runner = NULL;
        struct retry r = {.a = &a};
        struct retry_rules rr = {.r = &r};
        int status = rules_load(argc, argv, &a, &runner), first = optind;

        if (status >= 0)
                return status;
        if (a.config && first < argc && !strchr(argv[first], '/') &&
            ferry_runner_each_rule(runner, has_rule, argv[first]) == 1)
                rr.only = argv[first++];
        r.path_count = argc - first;
        status = EXIT_USAGE;
        if (!r.path_count && !a.all && !a.reason && !a.since) {
                cli_usage_error("retry", "say which failed files: PATH..., --all, --reason GLOB or --since TIME");
                goto out;
        }
        if (r.path_count && a.all) {
                cli_usage_error("retry", "--all or PATH..., not both");
                goto out;
        }
        if (a.since && !parse_since(a.since, &r.since)) {
                cli_usage_error("retry", "--since: '%s' is not a duration (2h, 7d) nor YYYY-MM-DD[THH:MM[:SS]]",
                                a.since);
                goto out;
        }
        status = EXIT_FAILURE_RUNTIME;
        r.paths = calloc((size_t)r.path_count + 1, sizeof(*r.paths));
        r.found = calloc((size_t)r.path_count + 1, sizeof(*r.found));
        if (!r.paths || !r.found)
                goto out;
        for (int i = 0; i < r.path_count; i++)
                if (!(r.paths[i] = absolute(argv[first + i])))
                        goto out;
        (void)ferry_runner_each_rule(runner, retry_rule, &rr);
        for (int i = 0; i < r.path_count; i++)
                if (!r.found[i]) {
                        cli_error("%s: not a failed file of %s", argv[first + i], rr.only ? rr.only : "any rule");
                        rr.error = true;
                }
        if (!r.selected && !r.failed && !rr.error)
                printf("no failed file matches\n");
        status = rr.error || r.failed ? EXIT_FAILURE_RUNTIME : EXIT_OK;
out:
        for (int i = 0; r.paths && i < r.path_count; i++)
                free(r.paths[i]);
        free(r.paths);
        free(r.found);
        ferry_runner_free(runner);
        return status;
}
