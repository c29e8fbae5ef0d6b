/* proc.c: the open files of every process on this machine, as /proc shows them.
 *
 * Two questions need them: who holds a file open for writing (probe.c), and
 * how many inotify watches this user's processes hold (inotify.c, for the
 * message when watches run out). Processes and fds come and go while the
 * walk runs; one that is gone when its turn comes is skipped.
 */
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* A name of all digits: a pid in /proc, an fd in /proc/PID/fd. */
static int number_of(const char *name)
{
        char *end;
        long n;

        if (name[0] < '0' || name[0] > '9')
                return -1;
        n = strtol(name, &end, 10);
        return *end || n > INT_MAX ? -1 : (int)n;
}

int ferry__proc_each_fd(bool (*process_cb)(int pid, void *data), int (*fd_cb)(int pid, int fd, void *data), void *data)
{
        struct dirent *pe;
        DIR *proc = opendir("/proc");
        int r = 0;

        if (!proc)
                return -errno;
        while (r == 0 && (pe = readdir(proc))) {
                char path[64];
                struct dirent *fe;
                DIR *fds;
                int pid = number_of(pe->d_name);

                if (pid < 0 || (process_cb && !process_cb(pid, data)))
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/fd", pid);
                fds = opendir(path);
                if (!fds)
                        continue;
                while (r == 0 && (fe = readdir(fds))) {
                        int fd = number_of(fe->d_name);

                        if (fd >= 0)
                                r = fd_cb(pid, fd, data);
                }
                closedir(fds);
        }
        closedir(proc);
        return r;
}

FILE *ferry__proc_fdinfo(int pid, int fd)
{
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
        return fopen(path, "re");
}
