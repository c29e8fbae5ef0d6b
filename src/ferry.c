/* ferry.c: the ferry command: dispatch to a subcommand. */
#include "cli.h"

#include <locale.h>
#include <string.h>

static const char usage[] =
        "Usage: ferry COMMAND [ARG]...\n"
        "Run work the moment files are completely written, exactly once per file.\n"
        "\n"
        "Commands:\n"
        "  watch DIR...          print what happens in folders (--ready: completed files)\n"
        "  wait FILE             wait until FILE is completely written\n"
        "  wait DIR --match GLOB wait until N matching files are completely written\n"
        "  run DIR -- PROGRAM    hand each completed file to PROGRAM, exactly once\n"
        "  put SOURCE... DEST    deliver files atomically (temp name, sync, rename)\n"
        "  status -c FILE        what each rule is doing: queued, in flight, done, failed\n"
        "  explain -c FILE PATH  why PATH was or was not handled\n"
        "  pause -c FILE [RULE]  no handler starts, on every host sharing the folder\n"
        "  resume -c FILE [RULE] handlers start again\n"
        "  retry -c FILE --all   put failed files back, to be handled again\n"
        "  purge -c FILE         remove what is older than the retention from done, failed\n"
        "  history -c FILE PATH  what happened to a file, from the folder's audit trail\n"
        "  help COMMAND          show the help of COMMAND\n"
        "\n"
        "  -h, --help            show this help\n"
        "      --version         show the version\n"
        "\n"
        "See ferry(1), ferry-watch(1), ferry-wait(1), ferry-run(1), ferry-put(1), ferry-status(1).\n";

/* clang-format off */
static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
} commands[] = {
        {"watch", cmd_watch},
        {"wait", cmd_wait},
        {"run", cmd_run},
        {"put", cmd_put},
        {"status", cmd_status},
        {"explain", cmd_explain},
        {"pause", cmd_pause},
        {"resume", cmd_resume},
        {"retry", cmd_retry},
        {"purge", cmd_purge},
        {"history", cmd_history},
};
/* clang-format on */

int main(int argc, char **argv)
{
        const char *name = argc > 1 ? argv[1] : NULL;
        char *help_argv[] = {NULL, "--help", NULL};

        /* Globs and names are bytes: match them in the C locale. */
        setlocale(LC_ALL, "C");
        if (!name) {
                cli_error("missing command; see 'ferry --help'");
                return EXIT_USAGE;
        }
        if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
                fputs(usage, stdout);
                return EXIT_OK;
        }
        if (strcmp(name, "--version") == 0) {
                printf("ferry %s\n", FERRY_VERSION);
                return EXIT_OK;
        }
        if (strcmp(name, "help") == 0) {
                if (argc < 3) {
                        fputs(usage, stdout);
                        return EXIT_OK;
                }
                name = argv[2];
                help_argv[0] = argv[2];
                argc = 2;
                argv = help_argv;
        } else {
                argc--;
                argv++;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(commands[i].name, name) == 0)
                        return commands[i].run(argc, argv);
        cli_error("unknown command '%s'; see 'ferry --help'", name);
        return EXIT_USAGE;
}
