/* rawloop.c: the physical limit, a bare inotify loop that prints the name of
 * each file closed after writing. Usage: rawloop [-r] [-s] [-n N] [-x PROGRAM ARG] DIR
 *   -r  watch every directory below DIR too (nftw, one watch per directory)
 *   -s  set up the watches, print "watching N" and block (setup and memory)
 *   -n  exit after N events
 *   -x  run "PROGRAM ARG DIR/NAME" per file instead of printing, with
 *       posix_spawn (a vfork-style clone in glibc), as many at once as there
 *       are CPUs: the limit of any tool that runs one program per file */
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int inotify_fd;
static long watch_count;

static int add_watch(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void)st, (void)ftw;
        if (type == FTW_D && inotify_add_watch(inotify_fd, path, IN_CLOSE_WRITE | IN_ONLYDIR) >= 0)
                watch_count++;
        return 0;
}

int main(int argc, char **argv)
{
        int opt, recursive = 0, setup_only = 0;
        long limit = -1, jobs = sysconf(_SC_NPROCESSORS_ONLN), running = 0;
        char *program = NULL, *program_arg = NULL;
        while ((opt = getopt(argc, argv, "rsn:x:")) != -1) {
                if (opt == 'r') recursive = 1;
                else if (opt == 's') setup_only = recursive = 1;
                else if (opt == 'n') limit = atol(optarg);
                else if (opt == 'x') program = optarg;
                else return 2;
        }
        if (program && optind < argc)
                program_arg = argv[optind++];
        if ((program && (!program_arg || recursive)) || jobs < 1) return 2;
        if (optind != argc - 1 || (inotify_fd = inotify_init1(IN_CLOEXEC)) < 0) return 2;
        if (recursive ? nftw(argv[optind], add_watch, 64, FTW_PHYS) != 0
                      : add_watch(argv[optind], NULL, FTW_D, NULL) != 0 || watch_count == 0) {
                perror("rawloop");
                return 1;
        }
        if (setup_only) {
                printf("watching %ld\n", watch_count);
                fflush(stdout);
                for (;;) pause();
        }
        char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
        for (;;) {
                ssize_t len = read(inotify_fd, buf, sizeof buf);
                if (len <= 0) return 1;
                for (char *p = buf; p < buf + len; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;
                        if (ev->mask & IN_Q_OVERFLOW) fputs("rawloop: IN_Q_OVERFLOW\n", stderr);
                        if (!(ev->mask & IN_CLOSE_WRITE) || ev->len == 0) continue;
                        if (program) {
                                char path[PATH_MAX];
                                char *args[] = {program, program_arg, path, NULL};
                                pid_t pid;
                                snprintf(path, sizeof path, "%s/%s", argv[optind], ev->name);
                                for (; running >= jobs; running--)
                                        if (wait(NULL) < 0) return 1;
                                if (posix_spawn(&pid, program, NULL, NULL, args, environ) != 0) return 1;
                                running++;
                        } else {
                                printf("%s\n", ev->name);
                        }
                        if (limit > 0 && --limit == 0) return fflush(stdout) != 0;
                }
                while (running > 0 && waitpid(-1, NULL, WNOHANG) > 0)
                        running--;
                fflush(stdout);
        }
}
