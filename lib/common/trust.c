/* trust.c: which folders ferry trusts, and how it reaches files beneath them
 * without following a link that someone else planted.
 *
 * The watched folder is hostile input: whoever may write into it may also
 * plant symbolic links, swap a subfolder for a link between the moment ferry
 * sees a file and the moment it claims it, or make a .ferry of their own
 * before ferry first starts. So, after the manner of mail servers writing
 * into folders that others can write (Postfix's safe_open(), sendmail's
 * safefile.c):
 *
 *   - ferry's own state (.ferry and everything in it, done and failed
 *     folders) is trusted only when it is a real directory, owned by the
 *     user ferry runs as, and writable by nobody else; it is opened once, at
 *     start, and used through its descriptor from then on, so that renaming
 *     or replacing a path later changes nothing;
 *   - a path inside the watched folder is walked from the folder's own
 *     descriptor, one component at a time, following no link at all and
 *     never leaving it (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
 *   - every file ferry makes is made with O_CREAT | O_EXCL | O_NOFOLLOW,
 *     private (0600), under a temporary name, then renamed into place;
 *   - a folder named by the administrator (done, failed, output) may be
 *     reached through links, but only through links that root or ferry's
 *     own user made.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

bool ferry__relative_is_clean(const char *relative)
{
        const char *p = relative;

        if (!p || !*p || *p == '/')
                return false;
        while (*p) {
                const char *end = strchrnul(p, '/');
                size_t n = (size_t)(end - p);

                if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                p = *end ? end + 1 : end;
                if (*end && !*p)
                        return false; /* a trailing slash */
        }
        return true;
}

/* The walk by hand, for kernels before openat2 (5.6): one component at a
 * time, each opened with O_NOFOLLOW from the one before. */
static int walk_by_hand(int dir_fd, const char *relative, int flags, int *ret_fd)
{
        char *copy = strdup(relative), *save = NULL, *part, *next;
        int fd = -1, r = 0;

        if (!copy)
                return -ENOMEM;
        part = strtok_r(copy, "/", &save);
        while (part) {
                next = strtok_r(NULL, "/", &save);
                int nfd = openat(fd >= 0 ? fd : dir_fd, part,
                                 next ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                                      : (flags | O_NOFOLLOW | O_CLOEXEC) & ~O_CREAT);

                if (nfd < 0)
                        r = errno == ENOTDIR ? -ELOOP : -errno;
                if (fd >= 0)
                        close(fd);
                fd = nfd;
                if (r < 0)
                        break;
                part = next;
        }
        free(copy);
        if (r < 0)
                return r;
        *ret_fd = fd;
        return 0;
}

int ferry__open_beneath(int dir_fd, const char *relative, int flags, int *ret_fd)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC) & ~(uint64_t)O_CREAT,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        int fd;

        if (!ferry__relative_is_clean(relative))
                return -EINVAL;
        fd = (int)syscall(SYS_openat2, dir_fd, relative, &how, sizeof(how));
        if (fd >= 0) {
                *ret_fd = fd;
                return 0;
        }
        if (errno == ENOSYS || errno == EPERM) /* EPERM: a seccomp filter that does not know it */
                return walk_by_hand(dir_fd, relative, flags, ret_fd);
        /* A link last with O_DIRECTORY | O_NOFOLLOW gives ENOTDIR: for the
         * caller both say that the way is not plain folders. */
        return errno == ENOTDIR || errno == EXDEV ? -ELOOP : -errno;
}

int ferry__mkdirs_beneath(int dir_fd, const char *relative, mode_t mode, int *ret_fd)
{
        char *copy, *save = NULL, *part;
        int fd, r = 0;

        if (!relative) {
                fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return -errno;
                *ret_fd = fd;
                return 0;
        }
        if (!ferry__relative_is_clean(relative))
                return -EINVAL;
        copy = strdup(relative);
        if (!copy)
                return -ENOMEM;
        fd = -1;
        for (part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
                int base = fd >= 0 ? fd : dir_fd;

                if (mkdirat(base, part, mode) < 0 && errno != EEXIST) {
                        r = -errno;
                        break;
                }
                int nfd = openat(base, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                if (nfd < 0)
                        r = -errno;
                if (fd >= 0)
                        close(fd);
                fd = nfd;
                if (r < 0)
                        break;
        }
        free(copy);
        if (r < 0)
                return r;
        *ret_fd = fd;
        return 0;
}

int ferry__write_note(int dir_fd, const char *name, const char *text, size_t len)
{
        char temp[NAME_MAX + 1];
        int fd = -1, r = 0;

        /* O_EXCL: a name planted here (a link to /etc/...) makes the open
         * fail, never the write go through it; a few tries past leftovers. */
        for (unsigned attempt = 0; attempt < 8 && fd < 0; attempt++) {
                snprintf(temp, sizeof(temp), ".ferry-tmp.%d.%u", (int)getpid(), attempt);
                fd = openat(dir_fd, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0 && errno != EEXIST)
                        return -errno;
        }
        if (fd < 0)
                return -EEXIST;
        for (size_t done = 0; done < len;) {
                ssize_t n = write(fd, text + done, len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                done += (size_t)n;
        }
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && renameat(dir_fd, temp, dir_fd, name) < 0)
                r = -errno;
        if (r < 0)
                (void)unlinkat(dir_fd, temp, 0);
        return r;
}

ssize_t ferry__read_note(int dir_fd, const char *name, char *buffer, size_t size)
{
        struct stat st;
        ssize_t n = -1;
        int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        /* Only a regular file: a fifo planted here would block us, a device worse. */
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
                n = read(fd, buffer, size - 1);
        close(fd);
        if (n < 0)
                return -EINVAL;
        buffer[n] = '\0';
        return n;
}

int ferry__rename_noreplace(int from_fd, const char *from, int to_fd, const char *to)
{
        struct stat st;
        int e;

        /* NFS, SMB and FUSE often refuse RENAME_NOREPLACE (EINVAL): there a
         * hard link (which fails with EEXIST) and an unlink do the same; where
         * even links are refused, a look before a plain rename, which only
         * another worker racing for the same new name could defeat. */
        if (renameat2(from_fd, from, to_fd, to, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                return -errno;
        if (linkat(from_fd, from, to_fd, to, 0) == 0)
                return unlinkat(from_fd, from, 0) < 0 && errno != ENOENT ? -errno : 0;
        e = errno;
        /* A FUSE client (sshfs) looks the new name up after the file server
         * made the link, and says ENOENT when another process took the name
         * away at once (a worker claiming a file put back into its folder):
         * with the file and the folder it went to both there, nothing else
         * was missing, so the link was made. */
        if (e == ENOENT && fstatat(from_fd, from, &st, AT_SYMLINK_NOFOLLOW) == 0 && fstat(to_fd, &st) == 0 &&
            st.st_nlink > 0)
                return unlinkat(from_fd, from, 0) < 0 && errno != ENOENT ? -errno : 0;
        if (e == EEXIST || e == ENOENT)
                return -e;
        if (faccessat(to_fd, to, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return -EEXIST;
        return renameat(from_fd, from, to_fd, to) < 0 ? -errno : 0;
}

/* ---- whom a folder belongs to --------------------------------------------- */

/* What this file system says of a file we have just made ourselves: its
 * owner (a squashed NFS root, a FUSE mount of another user's, an SMB mount
 * all report someone other than our euid) and whether it kept the modes we
 * asked for (SMB and some FUSE mounts report every file as 0777 or 0755). */
static void learn_file_system(int dir_fd, struct ferry__trust *t)
{
        char name[64];
        struct stat st;
        int fd;

        if (t->learned)
                return;
        t->learned = true;
        t->owner = geteuid();
        t->modes_kept = true;
        snprintf(name, sizeof(name), ".ferry-probe.%d", (int)getpid());
        fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        if (fstat(fd, &st) == 0) {
                t->owner = st.st_uid;
                t->modes_kept = (st.st_mode & 077) == 0;
        }
        close(fd);
        (void)unlinkat(dir_fd, name, 0);
}

int ferry__trust_check(struct ferry__trust *t, int fd, int probe_dir_fd, const char *path)
{
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode)) {
                snprintf(t->why, sizeof(t->why), "%s is not a folder: remove it, and ferry makes its own", path);
                return -ENOTDIR;
        }
        if (st.st_uid != geteuid() || (st.st_mode & 022)) {
                /* Maybe a file system that shows us as someone else, or keeps no modes. */
                learn_file_system(probe_dir_fd, t);
        }
        if (st.st_uid != geteuid() && st.st_uid != t->owner) {
                snprintf(t->why, sizeof(t->why),
                         "%s is not owned by uid %u but by uid %u: ferry trusts only a folder it made itself "
                         "(someone who can write into its parent may have made it); remove it (rm -r) and start "
                         "again",
                         path, (unsigned)geteuid(), (unsigned)st.st_uid);
                return -EPERM;
        }
        if ((st.st_mode & 022) && t->modes_kept) {
                snprintf(t->why, sizeof(t->why),
                         "%s is writable by %s: others could plant links or claims there; chmod go-w it", path,
                         (st.st_mode & 002) ? "everyone" : "its group");
                return -EPERM;
        }
        return 0;
}

int ferry__trusted_dir(struct ferry__trust *t, int parent_fd, const char *name, mode_t mode, bool ours,
                       const char *path, int *ret_fd)
{
        bool made;
        int fd, r;

        made = mkdirat(parent_fd, name, mode) == 0;
        if (!made && errno != EEXIST) {
                r = -errno;
                snprintf(t->why, sizeof(t->why), "cannot make %s: %s", path, strerror(-r));
                return r;
        }
        fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                if (r == -ELOOP || r == -ENOTDIR) {
                        struct stat st;
                        bool link = fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);

                        snprintf(t->why, sizeof(t->why),
                                 link ? "%s is a symbolic link: ferry never follows one into its own state; remove "
                                        "it, and ferry makes a folder of its own"
                                      : "%s is not a folder: remove it, and ferry makes its own",
                                 path);
                        return link ? -ELOOP : -ENOTDIR;
                }
                snprintf(t->why, sizeof(t->why), "cannot open %s: %s", path, strerror(-r));
                return r;
        }
        r = ferry__trust_check(t, fd, parent_fd, path);
        if (r < 0) {
                close(fd);
                return r;
        }
        /* Made now, or by an earlier version with other modes: as we want it,
         * whatever the umask (a file system that keeps no modes refuses). */
        if (ours)
                (void)fchmod(fd, mode);
        *ret_fd = fd;
        return 0;
}

/* Whether a link found on the way to an administrator's folder may be
 * followed: only one that root or we made. */
static bool link_trusted(int dir_fd, const char *name)
{
        struct stat st;

        return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_uid == 0 || st.st_uid == geteuid());
}

int ferry__open_admin_dir(struct ferry__trust *t, const char *path, mode_t create_mode, int *ret_fd)
{
        char *pending = NULL;
        int fd, r = 0, links = 0;

        /* pending holds what is left to walk; a link's target is put in front of it. */
        pending = strdup(path);
        if (!pending)
                return -ENOMEM;
        fd = open(path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                free(pending);
                return -errno;
        }
        char *p = pending;

        while (*p) {
                char part[NAME_MAX + 1];
                char *end;
                size_t n;
                int nfd;

                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                end = strchrnul(p, '/');
                n = (size_t)(end - p);
                if (n > NAME_MAX) {
                        r = -ENAMETOOLONG;
                        break;
                }
                memcpy(part, p, n);
                part[n] = '\0';
                p = end;
                nfd = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0 && errno == ENOENT && create_mode) {
                        /* Missing: made here, privately, whether last or on the way. */
                        if (mkdirat(fd, part, create_mode) < 0 && errno != EEXIST) {
                                r = -errno;
                                break;
                        }
                        nfd = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                }
                if (nfd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
                        char target[PATH_MAX], *rest;
                        ssize_t len;

                        if (!link_trusted(fd, part)) {
                                struct stat st;

                                if (fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(st.st_mode)) {
                                        r = -ENOTDIR;
                                        snprintf(t->why, sizeof(t->why), "%s: %s is not a folder", path, part);
                                } else {
                                        r = -ELOOP;
                                        snprintf(t->why, sizeof(t->why),
                                                 "%s: the way there goes through the symbolic link %s, which "
                                                 "neither root nor uid %u made; name the folder by its real path",
                                                 path, part, (unsigned)geteuid());
                                }
                                break;
                        }
                        len = readlinkat(fd, part, target, sizeof(target) - 1);
                        if (len <= 0 || ++links > 40) {
                                r = len <= 0 ? -errno : -ELOOP;
                                break;
                        }
                        target[len] = '\0';
                        if (asprintf(&rest, "%s%s", target, p) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        free(pending);
                        pending = p = rest;
                        if (target[0] == '/') {
                                close(fd);
                                fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                                if (fd < 0) {
                                        r = -errno;
                                        break;
                                }
                        }
                        continue;
                }
                if (nfd < 0) {
                        r = -errno;
                        break;
                }
                close(fd);
                fd = nfd;
        }
        free(pending);
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                if (!t->why[0])
                        snprintf(t->why, sizeof(t->why), "cannot open %s: %s", path, strerror(-r));
                return r;
        }
        *ret_fd = fd;
        return 0;
}
