/* probe.c: what the kernel says about one file: its version, and whether anyone still has it open for writing.
 *
 * IN_CLOSE_WRITE says that one writer closed; a read lease says whether it was
 * the last. fcntl(F_SETLEASE, F_RDLCK) fails with EAGAIN while any process
 * holds the file open for writing. We take the lease and drop it at once. A
 * writer that opens the file in that instant makes the kernel signal the lease
 * holder; F_SETSIG routes that signal to SIGURG, whose default action is to be
 * ignored, so the host process is never killed by the default SIGIO.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void ferry__version_from_stat(const struct stat *st, struct ferry__version *v)
{
        v->ino = st->st_ino;
        v->size = st->st_size;
        v->mtime_ns = (int64_t)st->st_mtim.tv_sec * FERRY__NSEC_PER_SEC + st->st_mtim.tv_nsec;
}

int ferry__writers_check(const char *path, struct ferry__version *ret_version)
{
        const int flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
        struct stat st;
        int fd, r;

        fd = open(path, flags | O_NOATIME);
        if (fd < 0 && errno == EPERM) /* O_NOATIME needs ownership */
                fd = open(path, flags);
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT || stat(path, &st) < 0)
                        return -ENOENT;
                ferry__version_from_stat(&st, ret_version);
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -ENOENT;
                goto out;
        }
        ferry__version_from_stat(&st, ret_version);
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                goto out;
        }
        (void)fcntl(fd, F_SETSIG, SIGURG);
        if (fcntl(fd, F_SETLEASE, F_RDLCK) < 0) {
                r = errno == EAGAIN ? FERRY__WRITER_OPEN : -errno;
                goto out;
        }
        /* The lease goes with the descriptor's close below: no F_UNLCK call. */
        r = FERRY__NO_WRITER;
out:
        close(fd);
        return r;
}

int ferry__stat_version(const char *path, struct ferry__version *ret_version, bool *ret_is_dir)
{
        struct stat st;

        if (lstat(path, &st) < 0)
                return -errno;
        ferry__version_from_stat(&st, ret_version);
        if (ret_is_dir)
                *ret_is_dir = S_ISDIR(st.st_mode);
        return 0;
}

/* Processes that hold files open on behalf of remote writers, and keep them
 * open after the remote writer is done (they cache descriptors). */
static bool is_file_server(const char *comm)
{
        static const char *const servers[] = {"ganesha.nfsd", "smbd",    "sftp-server", "sshd",      "nfsd",
                                              "ksmbd",        "proftpd", "vsftpd",      "pure-ftpd", "in.tftpd"};

        for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++)
                if (strcmp(comm, servers[i]) == 0)
                        return true;
        return false;
}

struct holders {
        dev_t dev;
        ino_t ino;
};

/* 1 (stop) when fd of pid is the file, open for writing, in a process that is not a file server. */
static int local_writer(int pid, int fd, void *data)
{
        const struct holders *h = data;
        char path[64], line[128], comm[64] = "";
        unsigned flags = 0;
        struct stat st;
        FILE *f;
        int cfd;

        snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
        if (stat(path, &st) < 0 || st.st_dev != h->dev || st.st_ino != h->ino)
                return 0;
        f = ferry__proc_fdinfo(pid, fd);
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "flags: %o", &flags) == 1)
                        break;
        if (f)
                fclose(f);
        if ((flags & O_ACCMODE) == O_RDONLY)
                return 0;
        snprintf(path, sizeof(path), "/proc/%d/comm", pid);
        cfd = open(path, O_RDONLY | O_CLOEXEC);
        if (cfd >= 0) {
                ssize_t n = read(cfd, comm, sizeof(comm) - 1);

                comm[n > 0 ? n : 0] = '\0';
                comm[strcspn(comm, "\n")] = '\0';
                close(cfd);
        }
        return !is_file_server(comm);
}

int ferry__writers_are_servers(const char *path)
{
        struct stat target;
        struct holders h;
        int r;

        if (stat(path, &target) < 0)
                return -errno;
        h = (struct holders){.dev = target.st_dev, .ino = target.st_ino};
        /* Who has it open for writing? A holder that no process shows is in
         * the kernel (nfsd, ksmbd): a server too. */
        r = ferry__proc_each_fd(NULL, local_writer, &h);
        return r < 0 ? r : !r;
}
