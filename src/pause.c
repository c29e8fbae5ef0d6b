/* pause.c: `ferry pause` and `ferry resume`: a rule held back on every host
 * that shares its folder, through the flag the library keeps in DIR/.ferry. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char pause_usage[] =
        "Usage: ferry pause [-c FILE [RULE...] | --dir DIR [--name NAME]]\n"
        "Pause rules on every host that shares their folder: a flag in DIR/.ferry\n"
        "that each worker looks for once a second. While it is there no handler\n"
        "starts (no new file, no retry, no claim taken over); handlers running\n"
        "finish. ferry resume takes the flag away. Without RULE, every rule of FILE.\n"
        "\n"
        "  -c, --config FILE      the rules of FILE\n"
        "      --dir DIR          the folder of a rule given on the command line\n"
        "      --name NAME        that rule's name (default run, as ferry run)\n"
        "  -h, --help             show this help\n";

static const char resume_usage[] =
        "Usage: ferry resume [-c FILE [RULE...] | --dir DIR [--name NAME]]\n"
        "Resume rules that ferry pause paused: within a second every worker starts\n"
        "handlers again. Without RULE, every rule of FILE.\n"
        "\n"
        "  -c, --config FILE      the rules of FILE\n"
        "      --dir DIR          the folder of a rule given on the command line\n"
        "      --name NAME        that rule's name (default run, as ferry run)\n"
        "  -h, --help             show this help\n";

struct pausing {
        char **names; /* the rules asked for; NULL: all */
        int count;
        bool *found;
        int paused;
        bool failed;
};

static int pause_rule(void *userdata, struct ferry_rule *rule)
{
        struct pausing *p = userdata;
        const char *name = ferry_rule_name(rule);
        int i = 0;

        if (p->names) {
                while (i < p->count && strcmp(p->names[i], name) != 0)
                        i++;
                if (i == p->count)
                        return 0;
                p->found[i] = true;
        }
        if (ferry_rule_pause(rule, p->paused) < 0) {
                cli_error("%s", ferry_rule_explain(rule));
                p->failed = true;
                return 0;
        }
        printf("rule %s: ", name);
        output_escaped(stdout, ferry_rule_dir(rule), strlen(ferry_rule_dir(rule)));
        puts(p->paused ? ": paused; its workers start no handler within a second, those running finish" : ": resumed");
        return 0;
}

static int pause_or_resume(int argc, char **argv, const char *command, int paused)
{
        struct rule_args a = {.command = command, .usage = paused ? pause_usage : resume_usage};
        struct ferry_runner *runner = NULL;
        struct pausing p = {.paused = paused};
        int status = rules_load(argc, argv, &a, &runner);

        if (status >= 0)
                return status;
        if (optind < argc && !a.config) {
                ferry_runner_free(runner);
                return cli_usage_error(command, "unexpected argument '%s' (RULE names go with -c FILE)", argv[optind]);
        }
        if (optind < argc) {
                p.names = argv + optind;
                p.count = argc - optind;
                p.found = calloc((size_t)p.count, sizeof(*p.found));
                if (!p.found) {
                        ferry_runner_free(runner);
                        return EXIT_FAILURE_RUNTIME;
                }
        }
        (void)ferry_runner_each_rule(runner, pause_rule, &p);
        ferry_runner_free(runner);
        for (int i = 0; i < p.count; i++)
                if (!p.found[i]) {
                        cli_error("%s: no rule named %s", a.config, p.names[i]);
                        p.failed = true;
                }
        free(p.found);
        return p.failed ? EXIT_FAILURE_RUNTIME : EXIT_OK;
}

int cmd_pause(int argc, char **argv)
{
        return pause_or_resume(argc, argv, "pause", 1);
}

int cmd_resume(int argc, char **argv)
{
        return pause_or_resume(argc, argv, "resume", 0);
}
