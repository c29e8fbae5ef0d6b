/* put.c: delivering a file atomically into a folder that someone watches.
 *
 * The data goes to a temporary name in the target's own folder (so the final
 * step is a rename on one file system), is synced, renamed into place, and
 * the folder is synced: a watcher sees the file appear complete, by rename,
 * the one signal every file server tested delivers reliably. With a marker,
 * NAME.done (say) follows the same way and carries the size and SHA-256, so
 * the receiver can also tell a complete file from one whose writer died.
 * Temporary names start with ".ferry-put.": watchers in ready mode ignore them.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens a new temporary file beside target; *ret_temp is its path. */
static int open_temp(const char *target, char **ret_temp)
{
        const char *slash = strrchr(target, '/');
        int dir_len = slash ? (int)(slash - target) + 1 : 0;
        char *temp;
        int fd;

        if (asprintf(&temp, "%.*s.ferry-put.%d.XXXXXX", dir_len, target, (int)getpid()) < 0)
                return -ENOMEM;
        fd = mkostemp(temp, O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;

                free(temp);
                return r;
        }
        *ret_temp = temp;
        return fd;
}

static int write_all(int fd, const char *data, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, data, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                data += n;
                len -= (size_t)n;
        }
        return 0;
}

static int sync_folder(const char *path)
{
        const char *slash = strrchr(path, '/');
        char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
        int fd, r = 0;

        if (!dir)
                return -ENOMEM;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(dir);
        if (fd < 0)
                return -errno;
        /* Some network file systems refuse to sync a folder; the rename itself is what matters there. */
        if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS && errno != ENOTSUP)
                r = -errno;
        close(fd);
        return r;
}

/* Syncs fd, closes it and renames temp to target; removes temp on failure. */
static int commit(int fd, char *temp, const char *target)
{
        int r = 0;

        if (fsync(fd) < 0 && errno != EINVAL)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(temp, target) < 0)
                r = -errno;
        if (r < 0)
                (void)unlink(temp);
        free(temp);
        return r == 0 ? sync_folder(target) : r;
}

int ferry_put(const char *source, const char *target, const char *marker, ferry_progress_cb progress, void *userdata)
{
        char buffer[256 * 1024], text[256], *temp = NULL, *marker_path = NULL;
        uint8_t digest[FERRY__SHA256_SIZE];
        struct sha256_ctx ctx;
        uint64_t done = 0, total;
        struct stat st;
        int in, out, r;

        if (!source || !target || !*target || (marker && (!*marker || strchr(marker, '/'))))
                return -EINVAL;
        in = open(source, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return -errno;
        if (fstat(in, &st) < 0) {
                r = -errno;
                close(in);
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                close(in);
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        }
        total = (uint64_t)st.st_size;
        out = open_temp(target, &temp);
        if (out < 0) {
                close(in);
                return out;
        }
        sha256_init(&ctx);
        for (;;) {
                ssize_t n = read(in, buffer, sizeof(buffer));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : 0;
                        break;
                }
                r = write_all(out, buffer, (size_t)n);
                if (r < 0)
                        break;
                if (marker)
                        sha256_update(&ctx, (size_t)n, (const uint8_t *)buffer);
                done += (uint64_t)n;
                if (progress && progress(userdata, source, done, total) != 0) {
                        r = -ECANCELED;
                        break;
                }
        }
        close(in);
        if (r < 0) {
                close(out);
                (void)unlink(temp);
                free(temp);
                return r;
        }
        (void)fchmod(out, st.st_mode & 0777);
        r = commit(out, temp, target);
        if (r < 0 || !marker)
                return r;

        /* The marker comes after the data is in place, and says what it is. */
        sha256_digest(&ctx, FERRY__SHA256_SIZE, digest);
        int len = ferry__marker_format(text, sizeof(text), done, digest);

        if (len < 0 || asprintf(&marker_path, "%s%s", target, marker) < 0)
                return -ENOMEM;
        out = open_temp(marker_path, &temp);
        if (out < 0) {
                free(marker_path);
                return out;
        }
        r = write_all(out, text, (size_t)len);
        (void)fchmod(out, 0644);
        if (r < 0) {
                close(out);
                (void)unlink(temp);
                free(temp);
        } else {
                r = commit(out, temp, marker_path);
        }
        free(marker_path);
        return r;
}
