/* put.c: `ferry put`: deliver files atomically into a watched folder. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
        "Usage: ferry put [OPTION]... SOURCE... DEST\n"
        "Copy each SOURCE into the folder DEST (or to the file DEST, for one SOURCE) so\n"
        "that it appears there complete, by rename: a temporary name in DEST's folder,\n"
        "synced, renamed into place, folder synced. Safe on NFS, SMB and FUSE mounts.\n"
        "\n"
        "  -m, --marker[=SUFFIX]  then write NAME.done (or NAME+SUFFIX) holding the size\n"
        "                         and SHA-256, which the done-file policy verifies\n"
        "  -q, --quiet            no progress bar\n"
        "  -h, --help             show this help\n"
        "\n"
        "A progress bar is shown on a terminal for files over 1 MiB.\n"
        "Exit status: 0 all delivered, 1 an error, 2 usage. See ferry-put(1).\n";

static const struct option options[] = {
        {"marker", optional_argument, NULL, 'm'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0},
};

struct progress {
        int64_t last; /* when the bar was last drawn */
        bool shown;
};

static int draw(void *userdata, const char *source, uint64_t done, uint64_t total)
{
        struct progress *p = userdata;
        int64_t now = cli_now();
        int width = 30, filled;

        if (total < 1024 * 1024 || (now - p->last < 100000000 && done < total))
                return 0;
        p->last = now;
        p->shown = true;
        filled = total ? (int)(done * (uint64_t)width / total) : width;
        fprintf(stderr, "\r%-30.30s [%.*s%*s] %3d%% %6.1f MiB", source, filled, "##############################",
                width - filled, "", total ? (int)(done * 100 / total) : 100, (double)done / (1024 * 1024));
        fflush(stderr);
        return 0;
}

int cmd_put(int argc, char **argv)
{
        const char *marker = NULL, *dest;
        bool quiet = false, dest_is_dir;
        struct stat st;
        int c, status = EXIT_OK;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":m::qh", options, NULL)) != -1) {
                switch (c) {
                case 'm':
                        marker = optarg ? optarg : ".done";
                        if (!*marker || strchr(marker, '/'))
                                return cli_usage_error("put", "invalid marker suffix '%s'", marker);
                        break;
                case 'q': quiet = true; break;
                case 'h': fputs(usage, stdout); return EXIT_OK;
                default: return cli_bad_option("put", c, argv);
                }
        }
        if (argc - optind < 2)
                return cli_usage_error("put", "give SOURCE... DEST");
        dest = argv[argc - 1];
        dest_is_dir = stat(dest, &st) == 0 && S_ISDIR(st.st_mode);
        if (!dest_is_dir && argc - optind > 2)
                return cli_usage_error("put", "%s is not a folder: with several sources, DEST must be one", dest);
        for (int i = optind; i < argc - 1; i++) {
                struct progress progress = {0};
                char *copy = strdup(argv[i]), *target = NULL;
                bool tty = !quiet && isatty(STDERR_FILENO);
                int r;

                if (!copy) {
                        cli_error("out of memory");
                        return EXIT_FAILURE_RUNTIME;
                }
                if (dest_is_dir) {
                        if (asprintf(&target, "%s/%s", dest, basename(copy)) < 0)
                                target = NULL;
                } else {
                        target = strdup(dest);
                }
                free(copy);
                if (!target) {
                        cli_error("out of memory");
                        return EXIT_FAILURE_RUNTIME;
                }
                r = ferry_put(argv[i], target, marker, tty ? draw : NULL, &progress);
                if (progress.shown)
                        fputc('\n', stderr);
                if (r < 0) {
                        cli_error("cannot put %s into %s: %s", argv[i], target, strerror(-r));
                        status = EXIT_FAILURE_RUNTIME;
                }
                free(target);
        }
        return status;
}
