/* claim.c: the folder is the queue: claims by rename, leases, done and failed.
 *
 * Layout inside a rule's folder DIR (all on DIR's file system, so that every
 * move is an atomic rename):
 *
 *   DIR/.ferry/work/RULE@WORKER/        one worker's claims; WORKER = host.pid.start
 *   DIR/.ferry/work/RULE@WORKER/.lease  "HOST MACHINE-ID BOOT-ID PID START LEASE-NS"; its mtime is the heartbeat
 *   DIR/.ferry/work/RULE@WORKER/N/NAME  a claimed file
 *   DIR/.ferry/work/RULE@WORKER/N/.origin  its folder relative to DIR, when not DIR itself
 *   DIR/.ferry/done/, DIR/.ferry/failed/ default outcome folders
 *
 * A claim is one rename(2) of DIR/PATH into the worker's folder: when several
 * workers (processes or machines sharing DIR) race for a file, exactly one
 * rename succeeds and the others see ENOENT. A worker is dead when, in the
 * same boot of the same machine, its pid is gone or belongs to a younger
 * process; on the same machine after a reboot, at once; on another machine,
 * when its lease file's mtime is older than its own lease compared with a
 * file touched now, both stamped by the same file server, so that clocks of
 * different machines never meet. A live worker adopts a dead one's claims by
 * renaming each claim folder into its own: again, exactly one wins.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WORK_DIR ".ferry/work"
#define ORIGIN_FILE ".origin"
#define LEASE_FILE ".lease"
#define HANDLER_FILE ".handler" /* "PID": the claim's running handler, for ferry status; its mtime: since when */
#define OUTPUT_FILE ".output"   /* the path the handler's output is written to (--output), until it is done */

/* Start time of a process in clock ticks since boot, or 0 when it is gone. */
static unsigned long long process_start(pid_t pid)
{
        char path[64], buffer[1024];
        unsigned long long start = 0;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buffer, sizeof(buffer) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buffer[n] = '\0';
        /* Field 22, counted after the command name, which may hold spaces. */
        char *p = strrchr(buffer, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                         &start) != 1)
                return 0;
        return start;
}

int ferry__mkdir_p(char *path, mode_t mode)
{
        for (char *p = path + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(path, mode) < 0 && errno != EEXIST) {
                        int r = -errno;

                        *p = '/';
                        return r;
                }
                *p = '/';
        }
        return mkdir(path, mode) < 0 && errno != EEXIST ? -errno : 0;
}

/* Writes text to dirfd/name through a temporary name and a rename. */
static int write_file_at(int dirfd, const char *name, const char *text, size_t len)
{
        char temp[NAME_MAX + 1];
        int fd, r = 0;

        snprintf(temp, sizeof(temp), ".ferry-tmp.%d", (int)getpid());
        fd = openat(dirfd, temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
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
        if (r == 0 && renameat(dirfd, temp, dirfd, name) < 0)
                r = -errno;
        if (r < 0)
                (void)unlinkat(dirfd, temp, 0);
        return r;
}

/* The first word of a one-line file, or "-". */
static void read_id(const char *path, char *id, size_t size)
{
        FILE *f = fopen(path, "re");

        snprintf(id, size, "-");
        if (!f)
                return;
        if (fscanf(f, "%63s", id) != 1)
                snprintf(id, size, "-");
        fclose(f);
}

static int write_lease(struct ferry__workarea *wa, int fd, int pid)
{
        char lease[512];
        int n = snprintf(lease, sizeof(lease), "%s %s %s %d %llu %lld\n", wa->host, wa->machine, wa->boot, pid,
                         pid ? process_start(pid) : 0ULL, (long long)wa->lease_ns);

        return write_file_at(fd, LEASE_FILE, lease, (size_t)n);
}

int ferry__workarea_open(struct ferry__workarea *wa, const char *dir, const char *rule, int64_t lease_ns)
{
        char host[256] = "localhost", *path = NULL;
        unsigned long long start = process_start(getpid());
        int r;

        *wa = (struct ferry__workarea){.work_fd = -1, .lease_ns = lease_ns};
        (void)gethostname(host, sizeof(host) - 1);
        for (char *p = host; *p; p++)
                if (*p == '/' || *p == '@')
                        *p = '_';
        wa->dir = strdup(dir);
        if (asprintf(&wa->worker, "%s@%s.%d.%llu", rule, host, (int)getpid(), start) < 0)
                wa->worker = NULL;
        if (asprintf(&wa->rule_prefix, "%s@", rule) < 0)
                wa->rule_prefix = NULL;
        if (!wa->dir || !wa->worker || !wa->rule_prefix ||
            asprintf(&path, "%s/" WORK_DIR "/%s", dir, wa->worker) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        r = ferry__mkdir_p(path, 0755);
        if (r < 0)
                goto fail;
        wa->work_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (wa->work_fd < 0) {
                r = -errno;
                goto fail;
        }
        snprintf(wa->host, sizeof(wa->host), "%s", host);
        read_id("/etc/machine-id", wa->machine, sizeof(wa->machine));
        read_id("/proc/sys/kernel/random/boot_id", wa->boot, sizeof(wa->boot));
        r = write_lease(wa, wa->work_fd, (int)getpid());
        if (r < 0)
                goto fail;
        free(path);
        return 0;
fail:
        free(path);
        ferry__workarea_close(wa);
        return r;
}

/* Our work folder was removed: another worker judged us dead (our heartbeat
 * came later than our lease) and took what we held. Make it again, so that
 * claiming goes on; what we held is the others' now. */
static int workarea_restore(struct ferry__workarea *wa)
{
        char *path;
        int fd, r;

        if (asprintf(&path, "%s/" WORK_DIR "/%s", wa->dir, wa->worker) < 0)
                return -ENOMEM;
        r = ferry__mkdir_p(path, 0755);
        fd = r < 0 ? -1 : open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(path);
        if (fd < 0)
                return r < 0 ? r : -errno;
        r = write_lease(wa, fd, (int)getpid());
        if (r < 0) {
                close(fd);
                return r;
        }
        (void)dup3(fd, wa->work_fd, O_CLOEXEC);
        close(fd);
        wa->restored++;
        return 0;
}

void ferry__workarea_close(struct ferry__workarea *wa)
{
        if (wa->work_fd >= 0) {
                /* Leave nothing behind when no claim is left. */
                (void)unlinkat(wa->work_fd, LEASE_FILE, 0);
                close(wa->work_fd);
                if (wa->dir && wa->worker) {
                        char *path;

                        if (asprintf(&path, "%s/" WORK_DIR "/%s", wa->dir, wa->worker) >= 0) {
                                if (rmdir(path) < 0 && errno == ENOTEMPTY) {
                                        /* Claims remain (could not be returned): keep the lease so
                                         * that they are found as a dead worker's. */
                                        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                                        if (fd >= 0) {
                                                (void)write_lease(wa, fd, 0); /* pid 0: dead at once */
                                                close(fd);
                                        }
                                }
                                free(path);
                        }
                }
        }
        free(wa->dir);
        free(wa->worker);
        free(wa->rule_prefix);
        *wa = (struct ferry__workarea){.work_fd = -1};
}

void ferry__workarea_heartbeat(struct ferry__workarea *wa)
{
        (void)utimensat(wa->work_fd, LEASE_FILE, NULL, 0);
}

/* Fills the claim's paths from its sequence number, name and origin. */
static int claim_paths(struct ferry__workarea *wa, struct ferry__claim *c)
{
        free(c->claimed_path);
        free(c->original_path);
        c->claimed_path = c->original_path = NULL;
        if (asprintf(&c->claimed_path, "%s/" WORK_DIR "/%s/%llu/%s", wa->dir, wa->worker,
                     (unsigned long long)c->seq, c->name) < 0)
                c->claimed_path = NULL;
        if (asprintf(&c->original_path, "%s/%s%s%s", wa->dir, c->origin ? c->origin : "", c->origin ? "/" : "",
                     c->name) < 0)
                c->original_path = NULL;
        return c->claimed_path && c->original_path ? 0 : -ENOMEM;
}

void ferry__claim_free(struct ferry__claim *c)
{
        if (!c)
                return;
        free(c->name);
        free(c->origin);
        free(c->claimed_path);
        free(c->original_path);
        free(c);
}

/* Removes the claim's own folder once its file has left it. */
static void claim_folder_remove(struct ferry__workarea *wa, const struct ferry__claim *c)
{
        char seq[32];
        int fd;

        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)c->seq);
        fd = openat(wa->work_fd, seq, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                if (c->origin)
                        (void)unlinkat(fd, ORIGIN_FILE, 0);
                (void)unlinkat(fd, HANDLER_FILE, 0);
                if (c->output_noted)
                        (void)unlinkat(fd, OUTPUT_FILE, 0);
                close(fd);
        }
        (void)unlinkat(wa->work_fd, seq, AT_REMOVEDIR);
}

int ferry__claim(struct ferry__workarea *wa, const char *path, struct ferry__claim **ret_claim)
{
        struct ferry__claim *c = calloc(1, sizeof(*c));
        size_t dir_len = strlen(wa->dir);
        const char *relative, *slash;
        char seq[32];
        int fd, r;

        if (!c)
                return -ENOMEM;
        /* path is DIR/[ORIGIN/]NAME, as the watcher reported it. */
        if (strncmp(path, wa->dir, dir_len) != 0 || path[dir_len] != '/') {
                free(c);
                return -EINVAL;
        }
        relative = path + dir_len + 1;
        slash = strrchr(relative, '/');
        c->name = strdup(slash ? slash + 1 : relative);
        c->origin = slash ? strndup(relative, (size_t)(slash - relative)) : NULL;
        c->seq = ++wa->seq;
        if (!c->name || (slash && !c->origin) || claim_paths(wa, c) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)c->seq);
        r = mkdirat(wa->work_fd, seq, 0755) < 0 ? -errno : 0;
        if (r == -ENOENT && (r = workarea_restore(wa)) == 0)
                r = mkdirat(wa->work_fd, seq, 0755) < 0 ? -errno : 0;
        if (r < 0) {
                if (r == -ENOENT)
                        r = -ESTALE; /* not a lost race: our folder is gone */
                goto fail;
        }
        if (c->origin) {
                /* The origin is written before the claim, so a crash in
                 * between never leaves a claimed file whose home is unknown. */
                fd = openat(wa->work_fd, seq, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                r = fd < 0 ? -errno : write_file_at(fd, ORIGIN_FILE, c->origin, strlen(c->origin));
                if (fd >= 0)
                        close(fd);
                if (r < 0)
                        goto fail_folder;
        }
        if (rename(path, c->claimed_path) < 0) {
                r = -errno; /* ENOENT: another worker was faster, or it went away */
                goto fail_folder;
        }
        *ret_claim = c;
        return 0;
fail_folder:
        claim_folder_remove(wa, c);
fail:
        ferry__claim_free(c);
        return r;
}

int ferry__claim_in_place(const char *dir, const char *path, struct ferry__claim **ret_claim)
{
        struct ferry__claim *c = calloc(1, sizeof(*c));
        size_t dir_len = strlen(dir);
        const char *relative, *slash;
        int r;

        if (!c)
                return -ENOMEM;
        if (strncmp(path, dir, dir_len) != 0 || path[dir_len] != '/') {
                free(c);
                return -EINVAL;
        }
        relative = path + dir_len + 1;
        slash = strrchr(relative, '/');
        c->in_place = true;
        c->name = strdup(slash ? slash + 1 : relative);
        c->origin = slash ? strndup(relative, (size_t)(slash - relative)) : NULL;
        c->claimed_path = strdup(path);
        c->original_path = strdup(path);
        if (!c->name || (slash && !c->origin) || !c->claimed_path || !c->original_path) {
                ferry__claim_free(c);
                return -ENOMEM;
        }
        r = ferry__stat_version(path, &c->version, NULL);
        if (r < 0) {
                ferry__claim_free(c);
                return r;
        }
        *ret_claim = c;
        return 0;
}

char *ferry__claim_relative(const struct ferry__claim *c)
{
        char *s;

        if (asprintf(&s, "%s%s%s", c->origin ? c->origin : "", c->origin ? "/" : "", c->name) < 0)
                return NULL;
        return s;
}

/* rename(2) that never replaces: RENAME_NOREPLACE where the file system has
 * it; NFS, SMB and FUSE often refuse the flag (EINVAL), and there a hard link
 * (which fails with EEXIST) and an unlink do the same; where even links are
 * refused, a look before a plain rename, which only another worker racing
 * for the same new name could defeat. */
static int rename_noreplace(const char *from, const char *to)
{
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                return -errno;
        if (link(from, to) == 0)
                return unlink(from) < 0 && errno != ENOENT ? -errno : 0;
        if (errno == EEXIST || errno == ENOENT)
                return -errno;
        if (access(to, F_OK) == 0)
                return -EEXIST;
        return rename(from, to) < 0 ? -errno : 0;
}

/* Moves the claimed file to folder/ORIGIN/NAME without replacing anything: a
 * name already there gets ".1", ".2", ... Returns the final path in *ret_path. */
static int move_out(struct ferry__workarea *wa, struct ferry__claim *c, const char *folder, char **ret_path)
{
        char *target = NULL;
        int r = 0;

        for (unsigned n = 0; n < 1000; n++) {
                char suffix[16] = "";

                if (n)
                        snprintf(suffix, sizeof(suffix), ".%u", n);
                free(target);
                /* A name near NAME_MAX gives way to its suffix. */
                int keep = (int)strlen(c->name);

                if (keep + (int)strlen(suffix) > NAME_MAX)
                        keep = NAME_MAX - (int)strlen(suffix);
                if (asprintf(&target, "%s/%s%s%.*s%s", folder, c->origin ? c->origin : "", c->origin ? "/" : "",
                             keep, c->name, suffix) < 0)
                        return -ENOMEM;
                r = rename_noreplace(c->claimed_path, target);
                if (r == -ENOENT && n == 0) {
                        /* the folder is not there yet (the claimed file's absence is found out below) */
                        char *slash = strrchr(target, '/');

                        *slash = '\0';
                        r = ferry__mkdir_p(target, 0755);
                        *slash = '/';
                        if (r < 0)
                                break;
                        r = rename_noreplace(c->claimed_path, target);
                }
                if (r == 0) {
                        claim_folder_remove(wa, c);
                        if (ret_path)
                                *ret_path = target;
                        else
                                free(target);
                        return 0;
                }
                if (r != -EEXIST)
                        break;
        }
        free(target);
        if (r == -ENOENT && access(c->claimed_path, F_OK) < 0)
                claim_folder_remove(wa, c); /* the handler removed or moved the file itself */
        return r;
}

int ferry__claim_finish(struct ferry__workarea *wa, struct ferry__claim *c, const char *folder,
                        char **ret_path)
{
        if (!folder) {
                int r = unlink(c->claimed_path) < 0 ? -errno : 0;

                if (r == 0 || r == -ENOENT)
                        claim_folder_remove(wa, c);
                return r;
        }
        return move_out(wa, c, folder, ret_path);
}

int ferry__claim_return(struct ferry__workarea *wa, struct ferry__claim *c)
{
        int r = rename_noreplace(c->claimed_path, c->original_path);

        if (r < 0)
                return r; /* EEXIST: a new file took the name; the claim stays for recovery */
        claim_folder_remove(wa, c);
        return 0;
}

/* Writes the note FILE of the claim's folder with text; NULL removes it.
 * Notes help (ferry status, recovery); a claim stands without them. */
static void claim_note(struct ferry__workarea *wa, const struct ferry__claim *c, const char *file, const char *text)
{
        char name[64];
        size_t n = text ? strlen(text) : 0;
        int fd;

        if (c->in_place)
                return;
        snprintf(name, sizeof(name), "%llu/%s", (unsigned long long)c->seq, file);
        if (!text) {
                (void)unlinkat(wa->work_fd, name, 0);
                return;
        }
        fd = openat(wa->work_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        if (write(fd, text, n) != (ssize_t)n)
                (void)unlinkat(wa->work_fd, name, 0);
        close(fd);
}

void ferry__claim_note_handler(struct ferry__workarea *wa, const struct ferry__claim *c, pid_t pid)
{
        char text[32];

        snprintf(text, sizeof(text), "%d\n", (int)pid);
        claim_note(wa, c, HANDLER_FILE, pid > 0 ? text : NULL);
}

void ferry__claim_note_output(struct ferry__workarea *wa, struct ferry__claim *c, const char *path)
{
        claim_note(wa, c, OUTPUT_FILE, path);
        c->output_noted = path && !c->in_place;
}

/* A dead worker's partial output: the note says where it is. */
static void remove_noted_output(int claim_fd)
{
        char path[PATH_MAX];
        int fd = openat(claim_fd, OUTPUT_FILE, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, path, sizeof(path) - 1);

        if (fd >= 0)
                close(fd);
        if (n > 0) {
                path[n] = '\0';
                (void)unlink(path);
        }
        (void)unlinkat(claim_fd, OUTPUT_FILE, 0);
}

int ferry__write_sidecar(const char *path, const char *text, size_t len)
{
        char *dir = strdup(path), *slash;
        int fd, r;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash)
                *slash = '\0';
        fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(dir);
        if (fd < 0)
                return -errno;
        r = write_file_at(fd, strrchr(path, '/') ? strrchr(path, '/') + 1 : path, text, len);
        close(fd);
        return r;
}

/* ---- recovering dead workers' claims ------------------------------------- */

enum worker_state { WORKER_ALIVE, WORKER_DEAD, WORKER_NO_LEASE };

/* Whether the worker that owns folder (fd) is alive. */
static enum worker_state worker_state(struct ferry__workarea *wa, int base_fd, int fd)
{
        char text[512], host[256], machine[64], boot[64];
        struct stat lease, now;
        unsigned long long start;
        long long lease_ns;
        int pid, lease_fd;
        ssize_t n;

        /* No lease: its worker is gone, or is starting (it writes the lease
         * before it claims anything). */
        lease_fd = openat(fd, LEASE_FILE, O_RDONLY | O_CLOEXEC);
        if (lease_fd < 0)
                return WORKER_NO_LEASE;
        n = read(lease_fd, text, sizeof(text) - 1);
        if (n <= 0 || fstat(lease_fd, &lease) < 0) {
                close(lease_fd);
                return WORKER_NO_LEASE;
        }
        close(lease_fd);
        text[n] = '\0';
        if (sscanf(text, "%255s %63s %63s %d %llu %lld", host, machine, boot, &pid, &start, &lease_ns) != 6)
                return WORKER_DEAD;
        if (strcmp(machine, "-") != 0 && strcmp(machine, wa->machine) == 0) {
                /* This machine: its processes can be asked. After a reboot, all of them are gone. */
                if (strcmp(boot, wa->boot) != 0)
                        return WORKER_DEAD;
                return pid > 0 && process_start(pid) == start ? WORKER_ALIVE : WORKER_DEAD;
        }
        /* Another host: compare its heartbeat with the file server's clock,
         * read from a file touched now in the same folder. */
        fd = openat(base_fd, ".clock", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return WORKER_ALIVE;
        (void)futimens(fd, NULL);
        if (fstat(fd, &now) < 0) {
                close(fd);
                return WORKER_ALIVE;
        }
        close(fd);
        int64_t age = ((int64_t)now.st_mtim.tv_sec - lease.st_mtim.tv_sec) * FERRY__NSEC_PER_SEC +
                      (now.st_mtim.tv_nsec - lease.st_mtim.tv_nsec);
        /* Judged by the owner's own lease, so that workers with different
         * leases never take each other's live claims. */
        return age < (int64_t)lease_ns ? WORKER_ALIVE : WORKER_DEAD;
}

/* Reads a claim folder N of another worker, now renamed into ours as seq. */
static struct ferry__claim *adopted_claim(struct ferry__workarea *wa, uint64_t seq)
{
        struct ferry__claim *c = calloc(1, sizeof(*c));
        char name[32], origin[PATH_MAX];
        struct dirent *de;
        DIR *listing;
        int fd;
        ssize_t n;

        if (!c)
                return NULL;
        c->seq = seq;
        snprintf(name, sizeof(name), "%llu", (unsigned long long)seq);
        fd = openat(wa->work_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                goto fail;
        listing = fdopendir(fd);
        if (!listing) {
                close(fd);
                goto fail;
        }
        while ((de = readdir(listing))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (strcmp(de->d_name, ORIGIN_FILE) == 0) {
                        int ofd = openat(dirfd(listing), ORIGIN_FILE, O_RDONLY | O_CLOEXEC);

                        n = ofd < 0 ? -1 : read(ofd, origin, sizeof(origin) - 1);
                        if (ofd >= 0)
                                close(ofd);
                        if (n > 0) {
                                origin[n] = '\0';
                                c->origin = strdup(origin);
                        }
                        continue;
                }
                if (strcmp(de->d_name, OUTPUT_FILE) == 0) {
                        remove_noted_output(dirfd(listing));
                        continue;
                }
                if (de->d_name[0] == '.')
                        continue; /* ours (.handler, temporary files); claimed names are never hidden */
                free(c->name);
                c->name = strdup(de->d_name);
        }
        closedir(listing);
        if (!c->name || claim_paths(wa, c) < 0)
                goto fail;
        return c;
fail:
        ferry__claim_free(c);
        return NULL;
}

int ferry__recover_own(struct ferry__workarea *wa, ferry__adopt_cb adopt, void *userdata)
{
        uint64_t *found = NULL;
        size_t count = 0, capacity = 0;
        struct dirent *de;
        DIR *listing = fdopendir(dup(wa->work_fd));
        int adopted = 0;

        if (!listing)
                return -errno;
        /* Claims left by an earlier runner of this process (a reload, or a
         * return that found its name taken): ours to run again. */
        while ((de = readdir(listing))) {
                unsigned long long seq;
                char *end;

                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                seq = strtoull(de->d_name, &end, 10);
                if (*end)
                        continue;
                if (seq > wa->seq)
                        wa->seq = seq; /* new claims never reuse a number */
                if (count == capacity) {
                        size_t bigger_capacity = capacity ? capacity * 2 : 16;
                        uint64_t *bigger = realloc(found, bigger_capacity * sizeof(*found));

                        if (!bigger)
                                break;
                        found = bigger;
                        capacity = bigger_capacity;
                }
                found[count++] = seq;
        }
        closedir(listing);
        for (size_t i = 0; i < count; i++) {
                struct ferry__claim *c = adopted_claim(wa, found[i]);

                if (!c) {
                        struct ferry__claim empty = {.seq = found[i]};

                        claim_folder_remove(wa, &empty);
                        continue;
                }
                adopted++;
                adopt(userdata, c);
        }
        free(found);
        return adopted;
}

int ferry__recover(struct ferry__workarea *wa, ferry__adopt_cb adopt, void *userdata)
{
        char *path;
        int base_fd, adopted = 0;
        struct dirent *de;
        DIR *workers;

        if (asprintf(&path, "%s/" WORK_DIR, wa->dir) < 0)
                return -ENOMEM;
        base_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(path);
        if (base_fd < 0)
                return -errno;
        workers = fdopendir(dup(base_fd));
        if (!workers) {
                close(base_fd);
                return -errno;
        }
        while ((de = readdir(workers))) {
                enum worker_state state;
                struct dirent *ce;
                DIR *claims;
                int fd;

                if (strncmp(de->d_name, wa->rule_prefix, strlen(wa->rule_prefix)) != 0 ||
                    strcmp(de->d_name, wa->worker) == 0)
                        continue;
                fd = openat(base_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                state = worker_state(wa, base_fd, fd);
                if (state == WORKER_ALIVE) {
                        close(fd);
                        continue;
                }
                claims = fdopendir(fd);
                if (!claims) {
                        close(fd);
                        continue;
                }
                while ((ce = readdir(claims))) {
                        struct ferry__claim *c;
                        char seq[32];
                        uint64_t mine;

                        if (ce->d_name[0] < '0' || ce->d_name[0] > '9')
                                continue;
                        mine = ++wa->seq;
                        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)mine);
                        if (renameat(dirfd(claims), ce->d_name, wa->work_fd, seq) < 0)
                                continue; /* another worker adopted it first */
                        c = adopted_claim(wa, mine);
                        if (!c) {
                                /* Its file already left (the worker died after moving it
                                 * to done): only the folder is left to remove. */
                                struct ferry__claim empty = {.seq = mine};

                                claim_folder_remove(wa, &empty);
                                continue;
                        }
                        adopted++;
                        adopt(userdata, c);
                }
                /* Empty now, unless a claim could not be moved: then it stays
                 * dead and visible. A folder without a lease may be a worker
                 * that is starting: leave it. */
                if (state == WORKER_DEAD) {
                        (void)unlinkat(dirfd(claims), LEASE_FILE, 0);
                        (void)unlinkat(base_fd, de->d_name, AT_REMOVEDIR);
                }
                closedir(claims);
        }
        closedir(workers);
        close(base_fd);
        return adopted;
}

/* ---- listing claims, for ferry status and ferry explain ------------------- */

/* The pid in a claim's .handler note when that process still runs, else 0. */
static int running_handler(int claim_fd, int64_t *ret_since)
{
        char text[32];
        struct stat st;
        ssize_t n;
        int pid = 0, fd = openat(claim_fd, HANDLER_FILE, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return 0;
        n = read(fd, text, sizeof(text) - 1);
        if (n > 0 && fstat(fd, &st) == 0) {
                text[n] = '\0';
                pid = atoi(text);
                *ret_since = (int64_t)st.st_mtim.tv_sec * FERRY__NSEC_PER_SEC + st.st_mtim.tv_nsec;
        }
        close(fd);
        return pid > 0 && process_start(pid) ? pid : 0;
}

int ferry__claims_list(const char *dir, const char *rule, ferry__claim_list_cb callback, void *userdata)
{
        struct ferry__workarea me = {.work_fd = -1};
        char *path, prefix[300];
        struct dirent *de;
        DIR *workers;
        int base_fd, count = 0;

        /* To judge liveness, we are a worker on this host with no claims. */
        (void)gethostname(me.host, sizeof(me.host) - 1);
        read_id("/etc/machine-id", me.machine, sizeof(me.machine));
        read_id("/proc/sys/kernel/random/boot_id", me.boot, sizeof(me.boot));
        snprintf(prefix, sizeof(prefix), "%s@", rule);
        if (asprintf(&path, "%s/" WORK_DIR, dir) < 0)
                return -ENOMEM;
        base_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(path);
        if (base_fd < 0)
                return errno == ENOENT ? 0 : -errno;
        workers = fdopendir(dup(base_fd));
        if (!workers) {
                close(base_fd);
                return -errno;
        }
        while ((de = readdir(workers))) {
                struct dirent *ce;
                DIR *claims;
                bool alive;
                int fd;

                if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
                        continue;
                fd = openat(base_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                alive = worker_state(&me, base_fd, fd) == WORKER_ALIVE;
                claims = fdopendir(fd);
                if (!claims) {
                        close(fd);
                        continue;
                }
                while ((ce = readdir(claims))) {
                        struct ferry__claim_info info = {.worker = de->d_name, .worker_alive = alive};
                        char origin[PATH_MAX] = "", name[NAME_MAX + 1] = "";
                        struct dirent *fe;
                        struct stat st;
                        DIR *files;
                        int claim_fd;

                        if (ce->d_name[0] < '0' || ce->d_name[0] > '9')
                                continue;
                        claim_fd = openat(dirfd(claims), ce->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (claim_fd < 0)
                                continue;
                        if (fstat(claim_fd, &st) == 0)
                                info.since = (int64_t)st.st_mtim.tv_sec * FERRY__NSEC_PER_SEC + st.st_mtim.tv_nsec;
                        info.pid = alive ? running_handler(claim_fd, &info.since) : 0;
                        files = fdopendir(claim_fd);
                        if (!files) {
                                close(claim_fd);
                                continue;
                        }
                        while ((fe = readdir(files))) {
                                if (strcmp(fe->d_name, ORIGIN_FILE) == 0) {
                                        int ofd = openat(dirfd(files), ORIGIN_FILE, O_RDONLY | O_CLOEXEC);
                                        ssize_t n = ofd < 0 ? -1 : read(ofd, origin, sizeof(origin) - 1);

                                        if (ofd >= 0)
                                                close(ofd);
                                        origin[n > 0 ? n : 0] = '\0';
                                } else if (fe->d_name[0] != '.') {
                                        snprintf(name, sizeof(name), "%s", fe->d_name);
                                }
                        }
                        closedir(files);
                        if (!name[0])
                                continue;
                        if (asprintf(&path, "%s/%s%s%s", dir, origin, origin[0] ? "/" : "", name) < 0)
                                continue;
                        info.path = path;
                        callback(userdata, &info);
                        free(path);
                        count++;
                }
                closedir(claims);
        }
        closedir(workers);
        close(base_fd);
        return count;
}
