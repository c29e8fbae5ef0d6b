/* probe.c: what the kernel says about one file: its version, and whether anyone still has it open for writing.
 *
 * IN_CLOSE_WRITE says that one writer closed; a read lease says whether it was
 * the last. fcntl(F_SETLEASE, F_RDLCK) fails with EAGAIN while any process
 * holds the file open for writing. We take the lease and drop it at once. A
 * writer that opens the file in that instant makes the kernel signal the lease
 * holder; F_SETSIG routes that signal to SIGURG, whose default action is to be
 * ignored, so the host process is never killed by the default SIGIO.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
        (void)fcntl(fd, F_SETLEASE, F_UNLCK);
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
