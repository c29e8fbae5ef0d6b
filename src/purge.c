/* purge.c: `ferry purge`: what has been in a rule's done and failed folders
 * longer than its retention (and its audit trail's old days) is removed now,
 * or listed with --dry-run,
 * through the library's ferry_rule_purge (the sweep ferry run makes). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char purge_usage[] =
        "Usage: ferry purge [-c FILE [RULE] | --dir DIR [RULE OPTIONS]] [--dry-run]\n"
        "Remove what has been in the done and failed folders longer than the rule's\n"
        "done-retention and failed-retention (dated folders of done-layout whole), and\n"
        "the audit trail's days older than audit-retention, as ferry run does now and\n"
        "then. Works whether ferry run runs or not.\n"
        "\n"
        "  -c, --config FILE      the rules of FILE (RULE: only that one)\n"
        "      --dir DIR          one rule given as for ferry run (--done,\n"
        "                         --done-layout, --done-retention, --failed,\n"
        "                         --failed-retention, --audit-retention, ...)\n"
        "      --dry-run          list what would be removed, and remove nothing\n"
        "  -h, --help             show this help\n";

struct purge {
        const struct rule_args *a;
        const char *only; /* a rule's name, or NULL */
        unsigned long long files, folders;
        bool any, error;
};

static void purged(void *userdata, const char *path, int whole_folder, int64_t when)
{
        struct purge *p = userdata;
        time_t t = (time_t)when;
        struct tm tm;
        char stamp[32] = "?";

        if (localtime_r(&t, &tm))
                strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M", &tm);
        if (whole_folder == 1)
                p->folders++;
        else
                p->files++;
        fputs(p->a->dry_run ? "would remove " : "removed ", stdout);
        output_escaped(stdout, path, strlen(path));
        printf(whole_folder == 1   ? "/ (a dated folder, whole; its period ended %s)\n"
               : whole_folder == 2 ? " (a day of the audit trail, ended %s)\n"
                                   : " (there since %s)\n",
               stamp);
}

static int purge_rule(void *userdata, struct ferry_rule *rule)
{
        struct purge *p = userdata;

        if (p->only && strcmp(p->only, ferry_rule_name(rule)) != 0)
                return 0;
        p->any = true;
        if (ferry_rule_purge(rule, p->a->dry_run, purged, p) < 0) {
                cli_error("%s", ferry_rule_explain(rule));
                p->error = true;
        }
        return 0;
}

static int has_rule(void *userdata, struct ferry_rule *rule)
{
        return strcmp(userdata, ferry_rule_name(rule)) == 0;
}

int cmd_purge(int argc, char **argv)
{
        struct rule_args a = {.command = "purge", .usage = purge_usage};
        struct ferry_runner *runner = NULL;
        struct purge p = {.a = &a};
        int status = rules_load(argc, argv, &a, &runner), first = optind;

        if (status >= 0)
                return status;
        status = EXIT_USAGE;
        if (a.config && first < argc) {
                if (ferry_runner_each_rule(runner, has_rule, argv[first]) != 1) {
                        cli_usage_error("purge", "%s has no rule named '%s'", a.config, argv[first]);
                        goto out;
                }
                p.only = argv[first++];
        }
        if (first < argc) {
                cli_usage_error("purge", "unexpected argument '%s'", argv[first]);
                goto out;
        }
        (void)ferry_runner_each_rule(runner, purge_rule, &p);
        if (!p.files && !p.folders && !p.error)
                printf("nothing is older than its retention%s\n", p.any ? "" : " (no rule)");
        status = p.error ? EXIT_FAILURE_RUNTIME : EXIT_OK;
out:
        ferry_runner_free(runner);
        return status;
}
