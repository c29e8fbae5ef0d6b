/* rawloop.c: the physical limit, a bare inotify loop that prints the name of
 * each file closed after writing. Usage: rawloop [-r] [-s] [-n N] [-x PROGRAM ARG [-b N]] DIR
 *   -r  watch every directory below DIR too (nftw, one watch per directory)
 *   -s  set up the watches, print "watching N" and block (setup and memory)
 *   -n  exit after N events
 *   -x  run "PROGRAM ARG DIR/NAME" per file instead of printing, with
 *       posix_spawn (a vfork-style clone in glibc), as many at once as there
 *       are CPUs: the limit of any tool that runs one program per file
 *   -b  with -x: the least a queue that hands each file out once must do,
 *       in batches of up to N files: each file renamed into DIR/.claim/
 *       and looked at there (the claim: what another worker cannot take
 *       too), "PROGRAM ARG PATH..." run for the claimed paths at hand (N
 *       at most, or all those of one read of events), and each file
 *       renamed into DIR/.done/ when it exits. No readiness check, no
 *       notes, no log: the ceiling of ferry run --batch */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* -b: a batch being gathered, or one whose program runs. */
struct batch {
        pid_t pid;
        long count;
        char **names;
};

static int dir_fd = -1, claim_fd = -1, done_fd = -1;
static long batch_max;
static const char *dir;

/* Renames the batch's files from .claim into .done and empties it. */
static void batch_done(struct batch *b)
{
        for (long i = 0; i < b->count; i++) {
                renameat2(claim_fd, b->names[i], done_fd, b->names[i], RENAME_NOREPLACE);
                free(b->names[i]);
        }
        b->count = 0;
        b->pid = 0;
}

/* Runs PROGRAM ARG DIR/.claim/NAME... for the batch. */
static int batch_spawn(struct batch *b, char *program, char *program_arg)
{
        char **args = calloc((size_t)b->count + 3, sizeof(*args));
        int r = -1;

        if (!args) return -1;
        args[0] = program;
        args[1] = program_arg;
        for (long i = 0; i < b->count; i++)
                if (asprintf(&args[i + 2], "%s/.claim/%s", dir, b->names[i]) < 0) goto out;
        r = posix_spawn(&b->pid, program, NULL, NULL, args, environ) == 0 ? 0 : -1;
out:
        for (long i = 0; i < b->count; i++) free(args[i + 2]);
        free(args);
        return r;
}

static int inotify_fd;
static long watch_count;

static int add_watch(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void)st, (void)ftw;
        if (type == FTW_D && inotify_add_watch(inotify_fd, path, IN_CLOSE_WRITE | IN_ONLYDIR) >= 0)
                watch_count++;
        return 0;
}

/* Reaps the runs that ended (waiting for one when wait is set), their files moved to .done. */
static int batch_reap(struct batch *slots, long jobs, long *running, int wait_one)
{
        pid_t pid;
        while (*running > 0 && (pid = waitpid(-1, NULL, wait_one ? 0 : WNOHANG)) != 0) {
                if (pid < 0) return -1;
                for (long i = 0; i < jobs; i++)
                        if (slots[i].pid == pid) batch_done(&slots[i]), (*running)--;
                if (wait_one) break;
        }
        return 0;
}

/* Runs the gathered batch in a free slot, waiting for one when all run. */
static int batch_place(struct batch *slots, long jobs, struct batch *gather, long *running, char *program,
                       char *program_arg)
{
        while (gather->count) {
                long i;
                for (i = 0; i < jobs && slots[i].pid; i++) ;
                if (i == jobs) {
                        if (batch_reap(slots, jobs, running, 1) < 0) return -1;
                        continue;
                }
                struct batch t = slots[i];
                slots[i] = *gather;
                *gather = t;
                if (batch_spawn(&slots[i], program, program_arg) < 0) return -1;
                (*running)++;
        }
        return 0;
}

/* The -b loop: claims on each close, a batch run when N are claimed or the
 * events read are used up, as many batches running as there are CPUs. */
static int batch_loop(char *program, char *program_arg, long jobs, long limit)
{
        struct batch *slots = calloc((size_t)jobs + 1, sizeof(*slots)), *gather;
        char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
        long running = 0;

        if (!slots) return 1;
        for (long i = 0; i <= jobs; i++)
                if (!(slots[i].names = calloc((size_t)batch_max, sizeof(char *)))) return 1;
        gather = &slots[jobs];
        for (;;) {
                /* Runs that end while no event comes are reaped, their files moved, every 10 ms. */
                struct pollfd pf = {.fd = inotify_fd, .events = POLLIN};
                while (running > 0 && poll(&pf, 1, 10) == 0)
                        if (batch_reap(slots, jobs, &running, 0) < 0) return 1;
                ssize_t len = read(inotify_fd, buf, sizeof buf);
                if (len <= 0) return 1;
                for (char *p = buf; p < buf + len; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;
                        struct stat st;
                        if (ev->mask & IN_Q_OVERFLOW) fputs("rawloop: IN_Q_OVERFLOW\n", stderr);
                        if (!(ev->mask & IN_CLOSE_WRITE) || ev->len == 0) continue;
                        if (renameat2(dir_fd, ev->name, claim_fd, ev->name, RENAME_NOREPLACE) < 0 ||
                            fstatat(claim_fd, ev->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        gather->names[gather->count++] = strdup(ev->name);
                        if (limit > 0 && --limit == 0) batch_max = gather->count; /* the last one: run it now */
                        if (gather->count >= batch_max &&
                            batch_place(slots, jobs, gather, &running, program, program_arg) < 0)
                                return 1;
                }
                /* The events at hand used up: what is gathered runs now. */
                if (batch_reap(slots, jobs, &running, 0) < 0 ||
                    batch_place(slots, jobs, gather, &running, program, program_arg) < 0)
                        return 1;
        }
}

int main(int argc, char **argv)
{
        int opt, recursive = 0, setup_only = 0;
        long limit = -1, jobs = sysconf(_SC_NPROCESSORS_ONLN), running = 0;
        char *program = NULL, *program_arg = NULL;
        while ((opt = getopt(argc, argv, "rsn:x:b:")) != -1) {
                if (opt == 'r') recursive = 1;
                else if (opt == 'b') batch_max = atol(optarg);
                else if (opt == 's') setup_only = recursive = 1;
                else if (opt == 'n') limit = atol(optarg);
                else if (opt == 'x') program = optarg;
                else return 2;
        }
        if (program && optind < argc)
                program_arg = argv[optind++];
        if ((program && (!program_arg || recursive)) || jobs < 1 || batch_max < 0 || (batch_max && !program)) return 2;
        if (optind != argc - 1 || (inotify_fd = inotify_init1(IN_CLOEXEC)) < 0) return 2;
        dir = argv[optind];
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
        if (batch_max) {
                dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dir_fd < 0 || (mkdirat(dir_fd, ".claim", 0711) < 0 || mkdirat(dir_fd, ".done", 0700) < 0) ||
                    (claim_fd = openat(dir_fd, ".claim", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
                    (done_fd = openat(dir_fd, ".done", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
                        perror("rawloop: .claim, .done");
                        return 1;
                }
                return batch_loop(program, program_arg, jobs, limit);
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
