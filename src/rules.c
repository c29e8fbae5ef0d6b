/* rules.c: the rules a folder command acts on (status, explain, pause,
 * resume, retry, purge): those of a config file (-c FILE), or one given on the
 * command line as for ferry run (--dir DIR and the rule options that decide
 * which files are the rule's). */
#include "cli.h"
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum {
        OPT_DIR = 256,
        OPT_NAME,
        OPT_JSON,
        OPT_EXCLUDE,
        OPT_READY,
        OPT_DONE,
        OPT_FAILED,
        OPT_KEEP,
        OPT_DELETE,
        OPT_SYMLINKS,
        OPT_REQUIRE_FILE,
        OPT_BACKEND,
        OPT_POLL_INTERVAL,
        OPT_ALL,
        OPT_REASON,
        OPT_SINCE,
        OPT_DRY_RUN,
        OPT_DONE_LAYOUT,
        OPT_DONE_RETENTION,
        OPT_FAILED_RETENTION,
        OPT_AUDIT_RETENTION,
        OPT_DEDUP,
        OPT_DEDUP_WINDOW,
};

static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"dir", required_argument, NULL, OPT_DIR},
        {"name", required_argument, NULL, OPT_NAME},
        {"json", no_argument, NULL, OPT_JSON},
        {"match", required_argument, NULL, 'm'},
        {"exclude", required_argument, NULL, OPT_EXCLUDE},
        {"recursive", no_argument, NULL, 'r'},
        {"ready", required_argument, NULL, OPT_READY},
        {"done", required_argument, NULL, OPT_DONE},
        {"failed", required_argument, NULL, OPT_FAILED},
        {"keep", no_argument, NULL, OPT_KEEP},
        {"delete", no_argument, NULL, OPT_DELETE},
        {"symlinks", no_argument, NULL, OPT_SYMLINKS},
        {"require-file", required_argument, NULL, OPT_REQUIRE_FILE},
        {"backend", required_argument, NULL, OPT_BACKEND},
        {"poll-interval", required_argument, NULL, OPT_POLL_INTERVAL},
        {"all", no_argument, NULL, OPT_ALL},
        {"reason", required_argument, NULL, OPT_REASON},
        {"since", required_argument, NULL, OPT_SINCE},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"done-layout", required_argument, NULL, OPT_DONE_LAYOUT},
        {"done-retention", required_argument, NULL, OPT_DONE_RETENTION},
        {"failed-retention", required_argument, NULL, OPT_FAILED_RETENTION},
        {"audit-retention", required_argument, NULL, OPT_AUDIT_RETENTION},
        {"dedup", required_argument, NULL, OPT_DEDUP},
        {"dedup-window", required_argument, NULL, OPT_DEDUP_WINDOW},
        {"help", no_argument, NULL, 'h'},
        {0},
};

int rules_load(int argc, char **argv, struct rule_args *a, struct ferry_runner **ret_runner)
{
        struct {
                const char *key, *value;
        } *settings = calloc((size_t)argc + 1, sizeof(*settings));
        struct config config = {0};
        struct ferry_runner *runner = NULL;
        size_t count = 0;
        char error[2048];
        int c, status = EXIT_USAGE;

        if (!settings)
                return EXIT_FAILURE_RUNTIME;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":c:m:rh", options, NULL)) != -1) {
                switch (c) {
                case 'c': a->config = optarg; break;
                case OPT_DIR: a->dir = optarg; break;
                case OPT_NAME: a->name = optarg; break;
                case OPT_JSON: a->json = true; break;
                case 'm': settings[count].key = "match", settings[count++].value = optarg; break;
                case OPT_EXCLUDE: settings[count].key = "exclude", settings[count++].value = optarg; break;
                case 'r': settings[count].key = "recursive", settings[count++].value = "yes"; break;
                case OPT_READY: settings[count].key = "ready", settings[count++].value = optarg; break;
                case OPT_DONE: settings[count].key = "done", settings[count++].value = optarg; break;
                case OPT_FAILED: settings[count].key = "failed", settings[count++].value = optarg; break;
                case OPT_KEEP: settings[count].key = "on-success", settings[count++].value = "keep"; break;
                case OPT_DELETE: settings[count].key = "on-success", settings[count++].value = "delete"; break;
                case OPT_SYMLINKS: settings[count].key = "symlinks", settings[count++].value = "yes"; break;
                case OPT_REQUIRE_FILE: settings[count].key = "require-file", settings[count++].value = optarg; break;
                case OPT_BACKEND: settings[count].key = "backend", settings[count++].value = optarg; break;
                case OPT_POLL_INTERVAL: settings[count].key = "poll-interval", settings[count++].value = optarg; break;
                case OPT_DONE_LAYOUT: settings[count].key = "done-layout", settings[count++].value = optarg; break;
                case OPT_DEDUP: settings[count].key = "dedup", settings[count++].value = optarg; break;
                case OPT_DEDUP_WINDOW: settings[count].key = "dedup-window", settings[count++].value = optarg; break;
                case OPT_DONE_RETENTION:
                        settings[count].key = "done-retention", settings[count++].value = optarg;
                        break;
                case OPT_FAILED_RETENTION:
                        settings[count].key = "failed-retention", settings[count++].value = optarg;
                        break;
                case OPT_AUDIT_RETENTION:
                        settings[count].key = "audit-retention", settings[count++].value = optarg;
                        break;
                case OPT_DRY_RUN:
                        if (strcmp(a->command, "retry") != 0 && strcmp(a->command, "purge") != 0) {
                                cli_usage_error(a->command, "unknown option '%s'", argv[optind - 1]);
                                goto out;
                        }
                        a->dry_run = true;
                        break;
                case OPT_ALL:
                case OPT_REASON:
                case OPT_SINCE:
                        if (strcmp(a->command, "retry") != 0) {
                                cli_usage_error(a->command, "unknown option '%s'", argv[optind - 1]);
                                goto out;
                        }
                        a->all |= c == OPT_ALL;
                        if (c == OPT_REASON)
                                a->reason = optarg;
                        if (c == OPT_SINCE)
                                a->since = optarg;
                        break;
                case 'h':
                        fputs(a->usage, stdout);
                        status = EXIT_OK;
                        goto out;
                default: cli_bad_option(a->command, c, argv); goto out;
                }
        }
        if (!a->config == !a->dir) {
                cli_usage_error(a->command, "give -c FILE or --dir DIR");
                goto out;
        }
        if (a->config && (count || a->name)) {
                cli_usage_error(a->command, "-c FILE takes the rules from FILE: no rule options");
                goto out;
        }
        if (ferry_runner_new(&runner) < 0) {
                status = EXIT_FAILURE_RUNTIME;
                goto out;
        }
        if (a->config) {
                if (config_load(a->config, runner, &config, error, sizeof(error)) < 0) {
                        cli_error("%s", error);
                        goto out;
                }
        } else {
                struct ferry_rule *rule;
                char *const no_command[] = {"true", NULL};

                if (ferry_rule_new(&rule, a->name ? a->name : "run", a->dir) < 0) {
                        cli_usage_error(a->command, "invalid rule name or folder");
                        goto out;
                }
                for (size_t i = 0; i < count; i++)
                        if (ferry_rule_set(rule, settings[i].key, settings[i].value) < 0) {
                                cli_usage_error(a->command, "%s", ferry_rule_explain(rule));
                                ferry_rule_free(rule);
                                goto out;
                        }
                (void)ferry_rule_set_command(rule, no_command);
                (void)ferry_runner_add_rule(runner, rule);
        }
        *ret_runner = runner;
        runner = NULL;
        status = -1;
out:
        ferry_runner_free(runner);
        free(settings);
        return status;
}
