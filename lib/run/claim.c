/* claim.c: the folder is the queue: claims by rename, leases, done and failed.
 *
 * Layout inside a rule's folder DIR (all on DIR's file system, so that every
 * move is an atomic rename):
 *
 *   DIR/.ferry/                         ferry's own (0711): trusted only when
 *                                       it is a real folder that ferry's user owns
 *   DIR/.ferry/work/RULE@WORKER/        one worker's claims; WORKER = host.pid.start
 *   DIR/.ferry/work/RULE@WORKER/.lease  "HOST MACHINE-ID BOOT-ID PID START LEASE-NS"; its mtime is the heartbeat
 *   DIR/.ferry/work/RULE@WORKER/N/NAME  a claimed file (N: a claim folder; an empty one is
 *                                       kept for the worker's next claim)
 *   DIR/.ferry/work/RULE@WORKER/N/.origin  its folder relative to DIR, when not DIR itself
 *   DIR/.ferry/work/RULE@WORKER/N/.outcome handled already, its move to done or failed not made
 *                                       yet: "done", or "failed" and the failure note
 *   DIR/.ferry/done/, DIR/.ferry/failed/ default outcome folders (0700)
 *
 * Folders are 0711, so that a handler running as another user reaches the
 * file it is given but nobody lists what is waiting; notes are 0600.
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
 *
 * Everything goes through descriptors opened at start (trust.c): DIR's,
 * .ferry's, the work folder's, the outcome folders'. A file's folder inside
 * DIR is walked from DIR's descriptor without following any link, so that a
 * subfolder swapped for a link to /root between the ready event and the
 * claim is refused, not followed. What another worker left (claim folders,
 * .origin and .output notes) is data to check, never a path to use as is.
 */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WORK_DIR ".ferry/work"
#define FOLDER_MODE 0711 /* reachable by a handler of another user; listed by nobody */
#define ORIGIN_FILE ".origin"
#define LEASE_FILE ".lease"
#define HANDLER_FILE ".handler" /* "PID": the claim's running handler, for ferry status; its mtime: since when */
#define OUTPUT_FILE ".output"   /* the name of the handler's partial output in the output folder, until it is done */
#define OUTPUT_PREFIX ".ferry-out."
#define OUTCOME_FILE ".outcome" /* "done", or "failed" and its note: handled, but not moved out yet */
#define OUTCOME_MAX 65536
#define CLAIM_FOLDERS_KEPT_MAX 4096 /* empty claim folders a worker keeps: 16 MiB at most on ext4 */

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

        return ferry__write_note(fd, LEASE_FILE, lease, (size_t)n);
}

static void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

int ferry__workarea_home(struct ferry__workarea *wa, const char *dir)
{
        char *path = NULL;
        int r;

        *wa = (struct ferry__workarea){.root_fd = -1, .ferry_fd = -1, .base_fd = -1, .work_fd = -1, .output_fd = -1};
        wa->dir = strdup(dir);
        if (!wa->dir || asprintf(&path, "%s/.ferry", dir) < 0) {
                path = NULL;
                r = -ENOMEM;
                goto fail;
        }
        wa->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (wa->root_fd < 0) {
                r = -errno;
                snprintf(wa->trust.why, sizeof(wa->trust.why), "cannot open %s: %s", dir, strerror(-r));
                goto fail;
        }
        r = ferry__trusted_dir(&wa->trust, wa->root_fd, ".ferry", FOLDER_MODE, true, path, &wa->ferry_fd);
        if (r < 0)
                goto fail;
        {
                struct stat st;

                if (fstat(wa->ferry_fd, &st) == 0) {
                        wa->ferry_dev = st.st_dev;
                        wa->ferry_ino = st.st_ino;
                }
        }
        free(path);
        return 0;
fail:
        free(path);
        {
                /* The reason outlives the area: the caller says it. */
                struct ferry__trust trust = wa->trust;

                ferry__workarea_close(wa);
                wa->trust = trust;
        }
        return r;
}

int ferry__workarea_open(struct ferry__workarea *wa, const char *rule, int64_t lease_ns)
{
        char host[256] = "localhost", *path = NULL;
        unsigned long long start = process_start(getpid());
        int r;

        wa->lease_ns = lease_ns;
        (void)gethostname(host, sizeof(host) - 1);
        for (char *p = host; *p; p++)
                if (*p == '/' || *p == '@')
                        *p = '_';
        if (asprintf(&wa->worker, "%s@%s.%d.%llu", rule, host, (int)getpid(), start) < 0)
                wa->worker = NULL;
        if (asprintf(&wa->rule_prefix, "%s@", rule) < 0)
                wa->rule_prefix = NULL;
        if (!wa->worker || !wa->rule_prefix || asprintf(&path, "%s/" WORK_DIR, wa->dir) < 0) {
                path = NULL;
                r = -ENOMEM;
                goto fail;
        }
        r = ferry__trusted_dir(&wa->trust, wa->ferry_fd, "work", FOLDER_MODE, true, path, &wa->base_fd);
        if (r < 0)
                goto fail;
        free(path);
        if (asprintf(&path, "%s/" WORK_DIR "/%s", wa->dir, wa->worker) < 0) {
                path = NULL;
                r = -ENOMEM;
                goto fail;
        }
        r = ferry__trusted_dir(&wa->trust, wa->base_fd, wa->worker, FOLDER_MODE, true, path, &wa->work_fd);
        if (r < 0)
                goto fail;
        snprintf(wa->host, sizeof(wa->host), "%s", host);
        read_id("/etc/machine-id", wa->machine, sizeof(wa->machine));
        read_id("/proc/sys/kernel/random/boot_id", wa->boot, sizeof(wa->boot));
        r = write_lease(wa, wa->work_fd, (int)getpid());
        if (r < 0) {
                snprintf(wa->trust.why, sizeof(wa->trust.why), "cannot write %s/%s: %s", path, LEASE_FILE,
                         strerror(-r));
                goto fail;
        }
        free(path);
        return 0;
fail:
        free(path);
        close_fd(&wa->work_fd);
        close_fd(&wa->base_fd);
        return r;
}

int ferry__workarea_keep_folders(struct ferry__workarea *wa, size_t max)
{
        uint64_t *bigger;

        if (max > CLAIM_FOLDERS_KEPT_MAX)
                max = CLAIM_FOLDERS_KEPT_MAX;
        if (max > wa->pool_max) {
                bigger = realloc(wa->pool, max * sizeof(*bigger));
                if (!bigger)
                        return -ENOMEM;
                wa->pool = bigger;
        }
        wa->pool_max = max;
        while (wa->pool_count > max) {
                char seq[32];

                snprintf(seq, sizeof(seq), "%llu", (unsigned long long)wa->pool[--wa->pool_count]);
                (void)unlinkat(wa->work_fd, seq, AT_REMOVEDIR);
        }
        return 0;
}

/* Our work folder was removed: another worker judged us dead (our heartbeat
 * came later than our lease) and took what we held. Make it again, so that
 * claiming goes on; what we held is the others' now. */
static int workarea_restore(struct ferry__workarea *wa)
{
        int fd, r;

        if (mkdirat(wa->base_fd, wa->worker, FOLDER_MODE) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(wa->base_fd, wa->worker, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = write_lease(wa, fd, (int)getpid());
        if (r < 0) {
                close(fd);
                return r;
        }
        (void)dup3(fd, wa->work_fd, O_CLOEXEC);
        close(fd);
        wa->restored++;
        wa->pool_count = 0; /* they went with the folder */
        return 0;
}

void ferry__workarea_close(struct ferry__workarea *wa)
{
        if (wa->work_fd >= 0) {
                /* Leave nothing behind when no claim is left. */
                for (size_t i = 0; i < wa->pool_count; i++) {
                        char seq[32];

                        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)wa->pool[i]);
                        (void)unlinkat(wa->work_fd, seq, AT_REMOVEDIR);
                }
                (void)unlinkat(wa->work_fd, LEASE_FILE, 0);
                if (wa->base_fd >= 0 && unlinkat(wa->base_fd, wa->worker, AT_REMOVEDIR) < 0 && errno == ENOTEMPTY)
                        /* Claims remain (could not be returned): keep the lease so
                         * that they are found as a dead worker's. */
                        (void)write_lease(wa, wa->work_fd, 0); /* pid 0: dead at once */
        }
        close_fd(&wa->work_fd);
        close_fd(&wa->base_fd);
        close_fd(&wa->ferry_fd);
        close_fd(&wa->root_fd);
        close_fd(&wa->output_fd);
        for (size_t i = 0; i < wa->refused_count; i++)
                free(wa->refused[i]);
        free(wa->refused);
        free(wa->pool);
        free(wa->dir);
        free(wa->worker);
        free(wa->rule_prefix);
        *wa = (struct ferry__workarea){.root_fd = -1, .ferry_fd = -1, .base_fd = -1, .work_fd = -1, .output_fd = -1};
}

void ferry__workarea_heartbeat(struct ferry__workarea *wa)
{
        (void)utimensat(wa->work_fd, LEASE_FILE, NULL, AT_SYMLINK_NOFOLLOW);
}

/* A claim's file relative to the work folder: "N/NAME". */
static void claim_file(const struct ferry__claim *c, char *buffer, size_t size)
{
        snprintf(buffer, size, "%llu/%s", (unsigned long long)c->seq, c->name);
}

/* Fills the claim's paths from its sequence number, name and origin. */
static int claim_paths(struct ferry__workarea *wa, struct ferry__claim *c)
{
        free(c->claimed_path);
        free(c->original_path);
        c->claimed_path = c->original_path = NULL;
        if (asprintf(&c->claimed_path, "%s/" WORK_DIR "/%s/%llu/%s", wa->dir, wa->worker, (unsigned long long)c->seq,
                     c->name) < 0)
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
        free(c->outcome);
        free(c);
}

/* NAME + suffix cut so that the whole fits NAME_MAX. */
static void suffixed(char *buffer, size_t size, const char *name, const char *suffix)
{
        int keep = (int)strlen(name);

        if (keep + (int)strlen(suffix) > NAME_MAX)
                keep = NAME_MAX - (int)strlen(suffix);
        snprintf(buffer, size, "%.*s%s", keep, name, suffix);
}

/* Moves from_fd/name into to_fd without replacing anything: a name already
 * there gets ".1", ".2", ... (cut to fit NAME_MAX); the name used in target. */
static int rename_numbered(int from_fd, const char *name, int to_fd, const char *base, char target[NAME_MAX + 1])
{
        int r = -EEXIST;

        for (unsigned n = 0; n < 1000 && r == -EEXIST; n++) {
                char suffix[16] = "";

                if (n)
                        snprintf(suffix, sizeof(suffix), ".%u", n);
                suffixed(target, NAME_MAX + 1, base, suffix);
                r = ferry__rename_noreplace(from_fd, name, to_fd, target);
        }
        return r;
}

/* Removes the notes of a claim folder (fd, ours) and the temporary files of
 * notes that a worker killed while writing them left there, so that the
 * folder can go: a worker killed between writing .origin and the claim's
 * rename left a folder holding only that. What a handler left there beside
 * its file (its output, written next to its input; the input itself,
 * renamed) goes to leftovers_fd (-1: it stays), counted in c->leftovers:
 * left, it would be taken for a claimed file by the next recovery. */
static void remove_temporaries(int fd, int leftovers_fd, struct ferry__claim *c)
{
        int list_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *listing = list_fd < 0 ? NULL : fdopendir(list_fd);
        struct dirent *de;

        if (!listing) {
                if (list_fd >= 0)
                        close(list_fd);
                return;
        }
        while ((de = readdir(listing))) {
                char target[NAME_MAX + 1];

                if (strncmp(de->d_name, ".ferry-tmp.", 11) == 0 || strcmp(de->d_name, ORIGIN_FILE) == 0 ||
                    strcmp(de->d_name, HANDLER_FILE) == 0 || strcmp(de->d_name, OUTPUT_FILE) == 0 ||
                    strcmp(de->d_name, OUTCOME_FILE) == 0)
                        (void)unlinkat(fd, de->d_name, 0);
                else if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 && leftovers_fd >= 0 &&
                         rename_numbered(fd, de->d_name, leftovers_fd, de->d_name, target) == 0)
                        c->leftovers++;
        }
        closedir(listing);
}

/* Whether the claim folder name holds nothing: what a handler left beside
 * its file would otherwise meet the next claim (and its recovery). */
static bool folder_is_empty(int parent_fd, const char *name)
{
        char buffer[512] __attribute__((aligned(8)));
        int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        bool empty = fd >= 0;
        ssize_t n = 0;

        while (empty && (n = getdents64(fd, buffer, sizeof(buffer))) > 0)
                for (ssize_t at = 0; at < n && empty;) {
                        const struct dirent64 *de = (const struct dirent64 *)(buffer + at);

                        empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
                        at += de->d_reclen;
                }
        if (fd >= 0)
                close(fd);
        return empty && n == 0;
}

/* A claim folder for a new claim: an emptied one kept (*ret_kept: not
 * looked at; the claim looks when something fails in it, see folder_gone),
 * or a new one. */
static int claim_folder_make(struct ferry__workarea *wa, uint64_t *ret_seq, bool *ret_kept)
{
        char seq[32];
        int r;

        *ret_kept = wa->pool_count > 0;
        if (*ret_kept) {
                *ret_seq = wa->pool[--wa->pool_count];
                return 0;
        }
        *ret_seq = ++wa->seq;
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)*ret_seq);
        r = mkdirat(wa->work_fd, seq, FOLDER_MODE) < 0 ? -errno : 0;
        if (r == -ENOENT && (r = workarea_restore(wa)) == 0)
                r = mkdirat(wa->work_fd, seq, FOLDER_MODE) < 0 ? -errno : 0;
        return r == -ENOENT ? -ESTALE : r; /* not a lost race: our folder is gone */
}

/* Whether a kept claim folder is gone: taken with our work folder by a
 * worker that judged us dead, which a claim into it tells as ENOENT, as it
 * tells a file gone. */
static bool folder_gone(struct ferry__workarea *wa, uint64_t seq)
{
        char name[32];
        struct stat st;

        snprintf(name, sizeof(name), "%llu", (unsigned long long)seq);
        return fstatat(wa->work_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode);
}

/* Removes the claim's own folder once its file has left it: the notes it
 * holds, then the folder, or keeps it empty for the next claim; anything
 * else in it (a worker killed while writing a note, what the handler left,
 * which goes to leftovers_fd) is looked for only when that fails. */
static void claim_folder_remove_to(struct ferry__workarea *wa, struct ferry__claim *c, int leftovers_fd)
{
        static const struct {
                unsigned bit;
                const char *file;
        } notes[] = {{FERRY__NOTE_ORIGIN, ORIGIN_FILE},
                     {FERRY__NOTE_HANDLER, HANDLER_FILE},
                     {FERRY__NOTE_OUTCOME, OUTCOME_FILE},
                     {FERRY__NOTE_OUTPUT, OUTPUT_FILE}};
        char seq[32], name[64];
        int fd;

        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)c->seq);
        for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++)
                if (c->notes & notes[i].bit) {
                        snprintf(name, sizeof(name), "%s/%s", seq, notes[i].file);
                        (void)unlinkat(wa->work_fd, name, 0);
                }
        c->notes = 0;
        if (wa->pool_count < wa->pool_max && folder_is_empty(wa->work_fd, seq)) {
                wa->pool[wa->pool_count++] = c->seq;
                return;
        }
        if (unlinkat(wa->work_fd, seq, AT_REMOVEDIR) == 0 || errno != ENOTEMPTY)
                return;
        fd = openat(wa->work_fd, seq, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return;
        remove_temporaries(fd, leftovers_fd, c);
        (void)unlinkat(wa->work_fd, seq, AT_REMOVEDIR);
        close(fd);
}

/* claim_folder_remove_to, what a handler left going to the failed folder. */
static void claim_folder_remove(struct ferry__workarea *wa, struct ferry__claim *c)
{
        claim_folder_remove_to(wa, c, wa->leftovers ? wa->leftovers->fd : -1);
}

/* Notes origin in our claim folder seq before a file is renamed into it, so
 * that a crash in between never leaves a claimed file whose home is unknown. */
static int note_origin(struct ferry__workarea *wa, const char *seq, const char *origin)
{
        int fd = openat(wa->work_fd, seq, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int r = fd < 0 ? -errno : ferry__write_note(fd, ORIGIN_FILE, origin, strlen(origin));

        if (fd >= 0)
                close(fd);
        return r;
}

/* Splits path (DIR/[ORIGIN/]NAME, as the watcher reported it) into the
 * claim's name and origin: -EINVAL for a path not beneath DIR, or with "..",
 * "." or empty parts, which no watcher reports and nobody may make us use. */
static int split_path(const char *dir, const char *path, struct ferry__claim *c)
{
        size_t dir_len = strlen(dir);
        const char *relative, *slash;

        if (strncmp(path, dir, dir_len) != 0 || path[dir_len] != '/' || !ferry__relative_is_clean(path + dir_len + 1))
                return -EINVAL;
        relative = path + dir_len + 1;
        slash = strrchr(relative, '/');
        c->name = strdup(slash ? slash + 1 : relative);
        c->origin = slash ? strndup(relative, (size_t)(slash - relative)) : NULL;
        return !c->name || (slash && !c->origin) ? -ENOMEM : 0;
}

/* Whether the claim's folder lies inside ferry's own .ferry under another
 * name: someone who may rename in DIR renamed it, and with a recursive rule
 * its done files would come back as new work, again and again. .ferry is
 * always DIR's child, so the first part of the origin tells. */
static bool inside_own_state(struct ferry__workarea *wa, const char *origin)
{
        char first[NAME_MAX + 1];
        size_t n = origin ? strcspn(origin, "/") : 0;
        struct stat st;

        if (!origin || n > NAME_MAX)
                return false;
        memcpy(first, origin, n);
        first[n] = '\0';
        return fstatat(wa->root_fd, first, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == wa->ferry_ino &&
               st.st_dev == wa->ferry_dev;
}

/* The folder a claim's file lives in, inside DIR, walked without following
 * a link: -ELOOP when a link stands on the way (a subfolder swapped for a
 * link since the file was seen). *ret_fd is root_fd itself for DIR. */
static int origin_open(struct ferry__workarea *wa, const char *origin, int *ret_fd)
{
        if (!origin) {
                *ret_fd = wa->root_fd;
                return 0;
        }
        if (inside_own_state(wa, origin))
                return -EPERM;
        int r = ferry__open_beneath(wa->root_fd, origin, O_RDONLY | O_DIRECTORY, ret_fd);

        return r == -ENOTDIR || r == -EXDEV ? -ELOOP : r;
}

static void origin_close(struct ferry__workarea *wa, int fd)
{
        if (fd >= 0 && fd != wa->root_fd)
                close(fd);
}

int ferry__lstat_beneath(struct ferry__workarea *wa, const char *path, struct stat *ret_st)
{
        struct ferry__claim c = {0};
        int fd, r = split_path(wa->dir, path, &c);

        if (r == 0)
                r = origin_open(wa, c.origin, &fd);
        if (r == 0) {
                r = fstatat(fd, c.name, ret_st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
                origin_close(wa, fd);
        }
        free(c.name);
        free(c.origin);
        return r;
}

int ferry__claim(struct ferry__workarea *wa, const char *path, struct ferry__claim **ret_claim)
{
        struct ferry__claim *c = calloc(1, sizeof(*c));
        char seq[32], file[NAME_MAX + 32];
        struct stat st;
        int parent_fd = -1, r;
        bool kept;

        if (!c)
                return -ENOMEM;
        r = split_path(wa->dir, path, c);
        if (r < 0)
                goto fail;
        r = origin_open(wa, c->origin, &parent_fd);
        if (r < 0)
                goto fail; /* ENOENT: gone with its folder; ELOOP: a link on the way */
again:
        r = claim_folder_make(wa, &c->seq, &kept);
        if (r < 0)
                goto fail;
        r = claim_paths(wa, c);
        if (r < 0)
                goto fail_folder;
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)c->seq);
        claim_file(c, file, sizeof(file));
        if (c->origin && (r = note_origin(wa, seq, c->origin)) == 0)
                c->notes |= FERRY__NOTE_ORIGIN;
        /* Into the folder just made, ours alone: by its name. */
        if (r == 0 && renameat(parent_fd, c->name, wa->work_fd, file) < 0)
                r = -errno; /* ENOENT: another worker was faster, or it went away */
        if (r == -ENOENT && kept && folder_gone(wa, c->seq)) {
                c->notes = 0;
                goto again; /* the next kept one, or a new one (and our work folder made again) */
        }
        if (r < 0)
                goto fail_folder;
        /* What was renamed is what the handler gets: judge it, not what a
         * look before the rename saw (it may have been swapped since). */
        c->type = fstatat(wa->work_fd, file, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st.st_mode & S_IFMT : 0;
        if (c->type)
                ferry__version_from_stat(&st, &c->version);
        origin_close(wa, parent_fd);
        *ret_claim = c;
        return 0;
fail_folder:
        claim_folder_remove(wa, c);
fail:
        origin_close(wa, parent_fd);
        ferry__claim_free(c);
        return r;
}

int ferry__claim_in_place(struct ferry__workarea *wa, const char *path, struct ferry__claim **ret_claim)
{
        struct ferry__claim *c = calloc(1, sizeof(*c));
        struct stat st;
        int fd = -1, r;

        if (!c)
                return -ENOMEM;
        c->in_place = true;
        r = split_path(wa->dir, path, c);
        if (r == 0) {
                c->claimed_path = strdup(path);
                c->original_path = strdup(path);
                r = c->claimed_path && c->original_path ? 0 : -ENOMEM;
        }
        if (r == 0)
                r = origin_open(wa, c->origin, &fd);
        if (r == 0 && fstatat(fd, c->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                r = -errno;
        origin_close(wa, fd);
        if (r < 0) {
                ferry__claim_free(c);
                return r;
        }
        ferry__version_from_stat(&st, &c->version);
        c->type = st.st_mode & S_IFMT;
        *ret_claim = c;
        return 0;
}

int ferry__claim_marker(struct ferry__workarea *wa, const struct ferry__claim *c, struct ferry__marker_claim *ret_claim,
                        struct stat *ret_st)
{
        char marker[NAME_MAX + 1];
        int fd, r;

        if (!wa->marker_suffix || c->in_place ||
            (size_t)snprintf(marker, sizeof(marker), "%s%s", c->name, wa->marker_suffix) >= sizeof(marker))
                return -ENOENT;
        r = origin_open(wa, c->origin, &fd);
        if (r < 0)
                return r;
        r = ferry__marker_read_at(fd, marker, ret_claim, ret_st);
        origin_close(wa, fd);
        return r;
}

int ferry__claim_open(struct ferry__workarea *wa, const struct ferry__claim *c, bool follow, int *ret_fd)
{
        int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
        char file[NAME_MAX + 32];
        struct stat st;
        int fd, dir_fd = -1, r = 0;

        if (c->in_place) {
                r = origin_open(wa, c->origin, &dir_fd);
                if (r < 0)
                        return r;
                fd = openat(dir_fd, c->name, flags);
                origin_close(wa, dir_fd);
        } else {
                claim_file(c, file, sizeof(file));
                fd = openat(wa->work_fd, file, flags);
        }
        if (fd < 0)
                return -errno;
        /* O_NONBLOCK until it is known to be a regular file: a fifo would
         * block the loop, a device worse. */
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, O_RDONLY) < 0) {
                r = S_ISREG(st.st_mode) ? -errno : -EINVAL;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

char *ferry__claim_relative(const struct ferry__claim *c)
{
        char *s;

        if (asprintf(&s, "%s%s%s", c->origin ? c->origin : "", c->origin ? "/" : "", c->name) < 0)
                return NULL;
        return s;
}

/* ---- done and failed folders ---------------------------------------------- */

int ferry__folder_open(struct ferry__workarea *wa, struct ferry__folder *f, const char *path, const char *name)
{
        struct stat st;
        int r;

        *f = (struct ferry__folder){.fd = -1};
        if (!path) {
                /* DIR/.ferry/NAME: ours, private. */
                if (asprintf(&f->path, "%s/.ferry/%s", wa->dir, name) < 0) {
                        f->path = NULL;
                        return -ENOMEM;
                }
                f->mode = 0700;
                return ferry__trusted_dir(&wa->trust, wa->ferry_fd, name, f->mode, true, f->path, &f->fd);
        }
        f->path = strdup(path);
        if (!f->path)
                return -ENOMEM;
        /* Named by the administrator: reached only through links root or we
         * made, made privately when missing, and ours alone to write. */
        r = ferry__open_admin_dir(&wa->trust, path, 0700, &f->fd);
        if (r == 0)
                r = ferry__trust_check(&wa->trust, f->fd, f->fd, path);
        if (r == 0 && fstat(f->fd, &st) < 0)
                r = -errno;
        if (r < 0) {
                ferry__folder_close(f);
                return r;
        }
        f->mode = (st.st_mode & 0755) | 0700; /* its subfolders are as open as it is */
        return 0;
}

void ferry__folder_close(struct ferry__folder *f)
{
        if (!f)
                return;
        close_fd(&f->fd);
        free(f->path);
        f->path = NULL;
}

int ferry__folder_note(const struct ferry__folder *f, const char *relative, const char *suffix, const char *text,
                       size_t len)
{
        const char *slash = strrchr(relative, '/');
        char *origin = slash ? strndup(relative, (size_t)(slash - relative)) : NULL, note[NAME_MAX + 1];
        int fd, r;

        if (slash && !origin)
                return -ENOMEM;
        r = ferry__mkdirs_beneath(f->fd, origin, f->mode, &fd);
        free(origin);
        if (r < 0)
                return r;
        suffixed(note, sizeof(note), slash ? slash + 1 : relative, suffix);
        r = ferry__write_note(fd, note, text, len);
        close(fd);
        return r;
}

/* The folder, relative to an outcome folder, that a claim's file goes to at
 * time when: [LAYOUT/]ORIGIN ("" for the outcome folder itself). */
static int outcome_folder(const struct ferry__folder *folder, const struct ferry__claim *c, time_t when, char *buf,
                          size_t size)
{
        char dated[PATH_MAX] = "";
        int r = folder->layout ? ferry__layout_format(folder->layout, when, dated, sizeof(dated)) : 0;

        if (r < 0)
                return r;
        if ((size_t)snprintf(buf, size, "%s%s%s", dated, *dated && c->origin ? "/" : "", c->origin ? c->origin : "") >=
            size)
                return -ENAMETOOLONG;
        return 0;
}

/* Moves the claimed file to folder/ORIGIN/NAME without replacing anything: a
 * name already there gets ".1", ".2", ... Returns ORIGIN/NAME[.N] in
 * *ret_relative. */
static int move_out(struct ferry__workarea *wa, struct ferry__claim *c, const struct ferry__folder *folder,
                    char **ret_relative)
{
        char file[NAME_MAX + 32], target[NAME_MAX + 1], sub[PATH_MAX];
        int dir_fd, r;

        claim_file(c, file, sizeof(file));
        r = outcome_folder(folder, c, time(NULL), sub, sizeof(sub));
        if (r < 0)
                return r;
        /* The folders are made inside the outcome folder, which is ours
         * alone: nothing can have been planted there. */
        if (!*sub)
                dir_fd = folder->fd;
        else if ((r = ferry__mkdirs_beneath(folder->fd, sub, folder->mode, &dir_fd)) < 0)
                return r;
        r = rename_numbered(wa->work_fd, file, dir_fd, c->name, target);
        if (r == 0)
                claim_folder_remove_to(wa, c, dir_fd); /* what the handler left there goes beside it */
        else if (r == -ENOENT && faccessat(wa->work_fd, file, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                claim_folder_remove_to(wa, c, dir_fd); /* the handler removed or moved the file itself */
        if (dir_fd != folder->fd)
                close(dir_fd);
        if (r == 0 && ret_relative && asprintf(ret_relative, "%s%s%s", sub, *sub ? "/" : "", target) < 0)
                *ret_relative = NULL;
        return r;
}

/* A file's NAME.SUFFIX marker leaves the folder with it: into folder beside
 * it, at RELATIVE.SUFFIX (RELATIVE: where the file went in it), or removed
 * with it (folder NULL). Left behind, it would vouch for a later file of
 * that name. Only a regular file is moved: whatever else stands there is not
 * ours. */
static void marker_follow(struct ferry__workarea *wa, const struct ferry__claim *c, const struct ferry__folder *folder,
                          const char *relative)
{
        char marker[NAME_MAX + 1], moved[NAME_MAX + 1];
        int parent_fd, dir_fd;
        struct stat st;

        if (!wa->marker_suffix || c->in_place ||
            (size_t)snprintf(marker, sizeof(marker), "%s%s", c->name, wa->marker_suffix) >= sizeof(marker) ||
            origin_open(wa, c->origin, &parent_fd) < 0)
                return;
        if (fstatat(parent_fd, marker, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
                if (!folder) {
                        (void)unlinkat(parent_fd, marker, 0);
                } else {
                        const char *slash = strrchr(relative, '/');
                        char *sub = slash ? strndup(relative, (size_t)(slash - relative)) : NULL;

                        dir_fd = folder->fd;
                        if (slash && (!sub || ferry__mkdirs_beneath(folder->fd, sub, folder->mode, &dir_fd) < 0))
                                dir_fd = -1;
                        free(sub);
                        suffixed(moved, sizeof(moved), slash ? slash + 1 : relative, wa->marker_suffix);
                        /* A marker already there belongs to an earlier file: this one goes. */
                        if (dir_fd >= 0 && ferry__rename_noreplace(parent_fd, marker, dir_fd, moved) == -EEXIST)
                                (void)unlinkat(parent_fd, marker, 0);
                        if (dir_fd >= 0 && dir_fd != folder->fd)
                                close(dir_fd);
                }
        }
        origin_close(wa, parent_fd);
}

int ferry__claim_finish(struct ferry__workarea *wa, struct ferry__claim *c, const struct ferry__folder *folder,
                        char **ret_relative)
{
        char *relative = NULL;
        int r;

        if (!folder) {
                char file[NAME_MAX + 32];

                claim_file(c, file, sizeof(file));
                r = unlinkat(wa->work_fd, file, 0) < 0 ? -errno : 0;
                if (r == 0 || r == -ENOENT) {
                        claim_folder_remove(wa, c);
                        marker_follow(wa, c, NULL, NULL);
                }
                return r;
        }
        r = move_out(wa, c, folder, &relative);
        if (r == 0 && relative)
                marker_follow(wa, c, folder, relative);
        else if (r == -ENOENT)
                marker_follow(wa, c, NULL, NULL); /* the handler removed or moved the file itself */
        if (ret_relative)
                *ret_relative = relative;
        else
                free(relative);
        return r;
}

/* ---- a move cut in half ---------------------------------------------------- */

/* Whether dir_fd/name is the file st describes. */
static bool same_file(int dir_fd, const char *name, const struct stat *st)
{
        struct stat other;

        return fstatat(dir_fd, name, &other, AT_SYMLINK_NOFOLLOW) == 0 && other.st_dev == st->st_dev &&
               other.st_ino == st->st_ino;
}

/* Where in folder a move of c put the file st, if one did, into relative:
 * [LAYOUT/]ORIGIN/NAME, NAME.1, ... up to the first free name (a move takes
 * the first free one). A dated folder is the one of the link's time (the
 * file's change time), or of now. */
static bool moved_into(const struct ferry__folder *folder, const struct ferry__claim *c, const struct stat *st,
                       char *relative, size_t size)
{
        time_t times[] = {st->st_ctime, time(NULL)};
        bool found = false;

        if (folder->fd < 0)
                return false;
        for (size_t t = 0; t < (folder->layout ? 2 : 1) && !found; t++) {
                char sub[PATH_MAX], target[NAME_MAX + 1];
                int dir_fd = folder->fd;

                if (outcome_folder(folder, c, times[t], sub, sizeof(sub)) < 0 ||
                    (*sub && ferry__open_beneath(folder->fd, sub, O_RDONLY | O_DIRECTORY, &dir_fd) < 0))
                        continue;
                for (unsigned n = 0; n < 1000 && !found; n++) {
                        char suffix[16] = "";
                        struct stat other;

                        if (n)
                                snprintf(suffix, sizeof(suffix), ".%u", n);
                        suffixed(target, sizeof(target), c->name, suffix);
                        if (fstatat(dir_fd, target, &other, AT_SYMLINK_NOFOLLOW) < 0)
                                break;
                        found = other.st_dev == st->st_dev && other.st_ino == st->st_ino;
                }
                if (dir_fd != folder->fd)
                        close(dir_fd);
                if (found && (size_t)snprintf(relative, size, "%s%s%s", sub, *sub ? "/" : "", target) >= size)
                        found = false;
        }
        return found;
}

/* Whether a claim folder of another worker (fd) holds the file st under the
 * claim's name and origin. */
static bool claimed_in(int fd, const struct ferry__claim *c, const struct stat *st)
{
        char origin[PATH_MAX];
        ssize_t n;

        if (!same_file(fd, c->name, st))
                return false;
        n = ferry__read_note(fd, ORIGIN_FILE, origin, sizeof(origin));
        return c->origin ? n > 0 && strcmp(origin, c->origin) == 0 : n <= 0;
}

/* Whether another claim, of a worker alive or dead, holds the file st. */
static bool claimed_elsewhere(struct ferry__workarea *wa, const struct ferry__claim *c, const struct stat *st)
{
        int list_fd = openat(wa->base_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *workers = list_fd < 0 ? NULL : fdopendir(list_fd);
        struct dirent *de, *ce;
        bool found = false;

        if (!workers) {
                if (list_fd >= 0)
                        close(list_fd);
                return false;
        }
        while (!found && (de = readdir(workers))) {
                int fd;
                DIR *claims;

                if (strncmp(de->d_name, wa->rule_prefix, strlen(wa->rule_prefix)) != 0)
                        continue;
                fd = openat(wa->base_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                claims = fd < 0 ? NULL : fdopendir(fd);
                if (!claims) {
                        if (fd >= 0)
                                close(fd);
                        continue;
                }
                while (!found && (ce = readdir(claims))) {
                        int claim_fd;

                        if (ce->d_name[0] < '0' || ce->d_name[0] > '9' ||
                            (strcmp(de->d_name, wa->worker) == 0 && strtoull(ce->d_name, NULL, 10) == c->seq))
                                continue;
                        claim_fd = openat(dirfd(claims), ce->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (claim_fd < 0)
                                continue;
                        found = claimed_in(claim_fd, c, st);
                        close(claim_fd);
                }
                closedir(claims);
        }
        closedir(workers);
        return found;
}

int ferry__claim_moved_already(struct ferry__workarea *wa, struct ferry__claim *c, const struct ferry__folder *done,
                               const struct ferry__folder *failed, char **ret_where)
{
        const struct ferry__folder *folders[] = {done, failed};
        char file[NAME_MAX + 32], relative[PATH_MAX];
        struct stat st;
        int parent_fd;
        char *where = NULL;

        claim_file(c, file, sizeof(file));
        /* A file with one name has no other place to be. */
        if (c->in_place || fstatat(wa->work_fd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_nlink < 2)
                return 0;
        for (size_t i = 0; i < sizeof(folders) / sizeof(folders[0]) && !where; i++) {
                if (!folders[i] || !moved_into(folders[i], c, &st, relative, sizeof(relative)))
                        continue;
                if (asprintf(&where, "%s/%s", folders[i]->path, relative) < 0)
                        return -ENOMEM;
                marker_follow(wa, c, folders[i], relative); /* the dead worker may not have moved it yet */
        }
        if (!where && origin_open(wa, c->origin, &parent_fd) == 0) {
                bool back = same_file(parent_fd, c->name, &st);

                origin_close(wa, parent_fd);
                if (back && !(where = strdup(c->original_path)))
                        return -ENOMEM;
        }
        if (!where && claimed_elsewhere(wa, c, &st) && !(where = strdup("another worker's claim")))
                return -ENOMEM;
        if (!where)
                return 0;
        if (unlinkat(wa->work_fd, file, 0) < 0 && errno != ENOENT) {
                free(where);
                return -errno;
        }
        claim_folder_remove(wa, c);
        *ret_where = where;
        return 1;
}

int ferry__claim_return(struct ferry__workarea *wa, struct ferry__claim *c)
{
        char file[NAME_MAX + 32];
        int parent_fd, r;

        r = origin_open(wa, c->origin, &parent_fd);
        if (r < 0)
                return r; /* its folder is gone, or is a link now: the claim stays for recovery */
        claim_file(c, file, sizeof(file));
        r = ferry__rename_noreplace(wa->work_fd, file, parent_fd, c->name);
        origin_close(wa, parent_fd);
        if (r < 0)
                return r; /* EEXIST: a new file took the name; the claim stays for recovery */
        claim_folder_remove(wa, c);
        return 0;
}

/* Writes the note FILE of the claim's folder with text; NULL removes it.
 * Notes help (ferry status, recovery); a claim stands without them. The
 * claim's folder is ours alone, so the note is written in place. */
static int claim_note(struct ferry__workarea *wa, struct ferry__claim *c, unsigned bit, const char *file,
                      const char *text)
{
        char name[64];
        size_t n = text ? strlen(text) : 0;
        int fd, e = 0;

        if (c->in_place)
                return 0;
        snprintf(name, sizeof(name), "%llu/%s", (unsigned long long)c->seq, file);
        if (!text) {
                if (!(c->notes & bit))
                        return 0;
                c->notes &= ~bit;
                return unlinkat(wa->work_fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        }
        fd = openat(wa->work_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        c->notes |= bit;
        if (write(fd, text, n) != (ssize_t)n) {
                e = errno ? -errno : -ENOSPC;
                (void)unlinkat(wa->work_fd, name, 0);
                c->notes &= ~bit;
        }
        close(fd);
        return e;
}

void ferry__claim_note_handler(struct ferry__workarea *wa, struct ferry__claim **claims, size_t count, pid_t pid)
{
        char text[32], first[64], name[64];
        size_t i = 0;

        snprintf(text, sizeof(text), "%d\n", (int)pid);
        if (pid > 0 && count > 1 && !claims[0]->in_place &&
            claim_note(wa, claims[0], FERRY__NOTE_HANDLER, HANDLER_FILE, text) == 0) {
                /* One handler for a batch: its note once, linked into every
                 * claim's folder (the same text and time); written where the
                 * file system has no hard links. */
                snprintf(first, sizeof(first), "%llu/%s", (unsigned long long)claims[0]->seq, HANDLER_FILE);
                for (i = 1; i < count; i++) {
                        snprintf(name, sizeof(name), "%llu/%s", (unsigned long long)claims[i]->seq, HANDLER_FILE);
                        if (linkat(wa->work_fd, first, wa->work_fd, name, 0) < 0)
                                break;
                        claims[i]->notes |= FERRY__NOTE_HANDLER;
                }
        }
        for (; i < count; i++)
                (void)claim_note(wa, claims[i], FERRY__NOTE_HANDLER, HANDLER_FILE, pid > 0 ? text : NULL);
}

int ferry__claim_note_outcome(struct ferry__workarea *wa, struct ferry__claim *c, const char *text)
{
        return claim_note(wa, c, FERRY__NOTE_OUTCOME, OUTCOME_FILE, text);
}

void ferry__claim_note_output(struct ferry__workarea *wa, struct ferry__claim *c, const char *name)
{
        (void)claim_note(wa, c, FERRY__NOTE_OUTPUT, OUTPUT_FILE, name);
}

/* A dead worker's partial output: the note names it, in our output folder.
 * Only a temporary output's name is taken from it (an earlier version wrote
 * the whole path): a note that names anything else is not obeyed. */
static void remove_noted_output(struct ferry__workarea *wa, int claim_fd)
{
        char text[PATH_MAX];
        ssize_t n = ferry__read_note(claim_fd, OUTPUT_FILE, text, sizeof(text));
        const char *name = n > 0 && strrchr(text, '/') ? strrchr(text, '/') + 1 : text;

        if (n > 0 && wa->output_fd >= 0 && strncmp(name, OUTPUT_PREFIX, strlen(OUTPUT_PREFIX)) == 0 &&
            ferry__relative_is_clean(name) && !strchr(name, '/'))
                (void)unlinkat(wa->output_fd, name, 0);
        (void)unlinkat(claim_fd, OUTPUT_FILE, 0);
}

int ferry__output_create(int dir_fd, char *ret_name, size_t size)
{
        static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        uint64_t seed = (uint64_t)ferry__now() ^ ((uint64_t)getpid() << 32);

        for (unsigned attempt = 0; attempt < 100; attempt++) {
                char name[32];
                int fd;

                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                snprintf(name, sizeof(name), OUTPUT_PREFIX "%c%c%c%c%c%c", letters[(seed >> 10) % 62],
                         letters[(seed >> 16) % 62], letters[(seed >> 22) % 62], letters[(seed >> 28) % 62],
                         letters[(seed >> 34) % 62], letters[(seed >> 40) % 62]);
                fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        snprintf(ret_name, size, "%s", name);
                        return fd;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
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
        lease_fd = openat(fd, LEASE_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (lease_fd < 0)
                return WORKER_NO_LEASE;
        n = fstat(lease_fd, &lease) < 0 || !S_ISREG(lease.st_mode) ? -1 : read(lease_fd, text, sizeof(text) - 1);
        close(lease_fd);
        if (n <= 0)
                return WORKER_NO_LEASE;
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
        fd = openat(base_fd, ".clock", O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (fd < 0)
                return WORKER_ALIVE;
        if (fstat(fd, &now) < 0 || !S_ISREG(now.st_mode) || futimens(fd, NULL) < 0 || fstat(fd, &now) < 0) {
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

/* Whether what another worker left may be taken as a claim folder: a real
 * folder of ours (not a link to /root), whose origin note names a folder
 * inside DIR, holding at most one file. NULL when it may; else why not. */
static const char *claim_folder_refusal(struct ferry__workarea *wa, int parent_fd, const char *name)
{
        char origin[PATH_MAX];
        const char *why = NULL;
        ssize_t n;
        int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return errno == ELOOP || errno == ENOTDIR ? "it is not a folder (a symbolic link, or a file)" : NULL;
        if (ferry__trust_check(&wa->trust, fd, wa->base_fd, name) < 0) {
                close(fd);
                return "it is not ferry's: another user made it, or can write into it";
        }
        n = ferry__read_note(fd, ORIGIN_FILE, origin, sizeof(origin));
        if (n == -EINVAL || (n >= 0 && !ferry__relative_is_clean(origin)))
                why = "its origin note does not name a folder inside the watched folder";
        close(fd);
        return why;
}

/* Says once per claim folder that it is left alone, and why. */
static void refuse(struct ferry__workarea *wa, const char *worker, const char *claim, const char *why,
                   ferry__refuse_cb refused, void *userdata)
{
        char *path, **bigger;

        if (asprintf(&path, "%s/" WORK_DIR "/%s%s%s", wa->dir, worker, claim ? "/" : "", claim ? claim : "") < 0)
                return;
        for (size_t i = 0; i < wa->refused_count; i++)
                if (strcmp(wa->refused[i], path) == 0) {
                        free(path);
                        return;
                }
        bigger = realloc(wa->refused, (wa->refused_count + 1) * sizeof(*bigger));
        if (bigger) {
                wa->refused = bigger;
                wa->refused[wa->refused_count++] = path;
        }
        if (refused)
                refused(userdata, path, why);
        if (!bigger)
                free(path);
}

/* Moves name from the claim folder fd into a claim folder of ours (with
 * origin noted first, as a claim does); its number in *ret_seq. */
static int claim_split(struct ferry__workarea *wa, int fd, const char *name, const char *origin, uint64_t *ret_seq)
{
        char seq[32], file[NAME_MAX + 32];
        bool kept;
        int r = claim_folder_make(wa, ret_seq, &kept);

        if (r < 0)
                return r;
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)*ret_seq);
        if (origin)
                r = note_origin(wa, seq, origin);
        snprintf(file, sizeof(file), "%s/%s", seq, name);
        if (r == 0 && renameat(fd, name, wa->work_fd, file) < 0)
                r = -errno;
        if (r < 0) {
                struct ferry__claim empty = {.seq = *ret_seq, .notes = FERRY__NOTE_ORIGIN};

                claim_folder_remove_to(wa, &empty, -1);
        }
        return r;
}

/* Reads a claim folder N of another worker, now renamed into ours as seq,
 * and hands its claim to adopt (returns 1), or 0 when it holds none. A
 * folder that holds several names and no outcome holds the claimed file and
 * what its handler left beside it before its worker died, which cannot be
 * told apart: each name but one is moved into a claim folder of its own and
 * adopted too, so that the claimed file is handled for sure (and each
 * leftover once), rather than going to done as a leftover beside a name
 * taken for it. */
static int adopt_folder(struct ferry__workarea *wa, uint64_t seq, ferry__adopt_cb adopt, void *userdata)
{
        struct ferry__claim *c = calloc(1, sizeof(*c));
        char name[32], origin[PATH_MAX], file[NAME_MAX + 32];
        char **names = NULL;
        size_t count = 0;
        struct dirent *de;
        struct stat st;
        DIR *listing;
        int fd, adopted = 0;

        if (!c)
                return 0;
        c->seq = seq;
        c->notes = FERRY__NOTE_ALL; /* whatever the dead worker left */
        snprintf(name, sizeof(name), "%llu", (unsigned long long)seq);
        fd = openat(wa->work_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                goto fail;
        if (ferry__read_note(fd, ORIGIN_FILE, origin, sizeof(origin)) > 0) {
                if (!ferry__relative_is_clean(origin)) {
                        close(fd);
                        goto fail;
                }
                c->origin = strdup(origin);
        }
        remove_noted_output(wa, fd);
        /* Most claims have no outcome noted: no buffer for them. */
        if (faccessat(fd, OUTCOME_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0 && (c->outcome = malloc(OUTCOME_MAX + 1)) &&
            (ferry__read_note(fd, OUTCOME_FILE, c->outcome, OUTCOME_MAX + 1) <= 0 ||
             (strncmp(c->outcome, "done\n", 5) != 0 && strncmp(c->outcome, "failed\n", 7) != 0))) {
                free(c->outcome);
                c->outcome = NULL;
        }
        listing = fdopendir(fd);
        if (!listing) {
                close(fd);
                goto fail;
        }
        while ((de = readdir(listing))) {
                char **bigger;

                if (de->d_name[0] == '.')
                        continue; /* ours (.origin, .handler, temporary files); claimed names are never hidden */
                bigger = realloc(names, (count + 1) * sizeof(*names));
                if (!bigger || !(bigger[count] = strdup(de->d_name))) {
                        names = bigger ? bigger : names;
                        break;
                }
                names = bigger;
                count++;
        }
        /* Handled already (an outcome noted): the leftovers go beside it, as
         * at any claim's end. Else each but the last is a claim of its own. */
        for (size_t i = 0; !c->outcome && count > 1 && i + 1 < count; i++) {
                uint64_t other;

                if (claim_split(wa, dirfd(listing), names[i], c->origin, &other) == 0)
                        adopted += adopt_folder(wa, other, adopt, userdata);
        }
        closedir(listing);
        if (count)
                c->name = strdup(names[count - 1]);
        for (size_t i = 0; i < count; i++)
                free(names[i]);
        free(names);
        if (!c->name || claim_paths(wa, c) < 0)
                goto fail;
        claim_file(c, file, sizeof(file));
        c->type = fstatat(wa->work_fd, file, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st.st_mode & S_IFMT : 0;
        adopt(userdata, c);
        return adopted + 1;
fail:
        ferry__claim_free(c);
        if (!adopted) {
                /* Its file already left (the worker died after moving it to
                 * done): only the folder is left to remove. */
                struct ferry__claim empty = {.seq = seq};

                claim_folder_remove(wa, &empty);
        }
        return adopted;
}

int ferry__recover_own(struct ferry__workarea *wa, ferry__adopt_cb adopt, void *userdata)
{
        uint64_t *found = NULL;
        size_t count = 0, capacity = 0;
        struct dirent *de;
        /* A listing of its own: a dup would share the offset, left at the end by the last one. */
        int fd = openat(wa->work_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *listing = fd < 0 ? NULL : fdopendir(fd);
        int adopted = 0;

        if (!listing) {
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
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
                        wa->seq = seq; /* new folders never reuse a number (emptied ones are kept as they are) */
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
        for (size_t i = 0; i < count; i++)
                adopted += adopt_folder(wa, found[i], adopt, userdata);
        free(found);
        return adopted;
}

int ferry__recover(struct ferry__workarea *wa, ferry__adopt_cb adopt, ferry__refuse_cb refused, void *userdata)
{
        /* A listing of its own: a dup would share the offset, left at the end by the last one. */
        int adopted = 0, dup_fd = openat(wa->base_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct dirent *de;
        DIR *workers = dup_fd < 0 ? NULL : fdopendir(dup_fd);

        if (!workers) {
                if (dup_fd >= 0)
                        close(dup_fd);
                return -errno;
        }
        while ((de = readdir(workers))) {
                enum worker_state state;
                struct dirent *ce;
                DIR *claims;
                const char *why;
                int fd;

                if (strncmp(de->d_name, wa->rule_prefix, strlen(wa->rule_prefix)) != 0 ||
                    strcmp(de->d_name, wa->worker) == 0)
                        continue;
                fd = openat(wa->base_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        if (errno == ELOOP || errno == ENOTDIR)
                                refuse(wa, de->d_name, NULL, "it is not a folder (a symbolic link, or a file)", refused,
                                       userdata);
                        continue;
                }
                if (ferry__trust_check(&wa->trust, fd, wa->base_fd, de->d_name) < 0) {
                        refuse(wa, de->d_name, NULL, "it is not ferry's: another user made it, or can write into it",
                               refused, userdata);
                        close(fd);
                        continue;
                }
                state = worker_state(wa, wa->base_fd, fd);
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
                        char seq[32];
                        uint64_t mine;

                        if (ce->d_name[0] < '0' || ce->d_name[0] > '9')
                                continue;
                        why = claim_folder_refusal(wa, dirfd(claims), ce->d_name);
                        if (why) {
                                refuse(wa, de->d_name, ce->d_name, why, refused, userdata);
                                continue;
                        }
                        mine = ++wa->seq;
                        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)mine);
                        if (renameat(dirfd(claims), ce->d_name, wa->work_fd, seq) < 0)
                                continue; /* another worker adopted it first */
                        adopted += adopt_folder(wa, mine, adopt, userdata);
                }
                /* Empty now, unless a claim could not be moved: then it stays
                 * dead and visible. A folder without a lease may be a worker
                 * that is starting: leave it. */
                if (state == WORKER_DEAD) {
                        (void)unlinkat(dirfd(claims), LEASE_FILE, 0);
                        remove_temporaries(dirfd(claims), -1, NULL);
                        (void)unlinkat(wa->base_fd, de->d_name, AT_REMOVEDIR);
                }
                closedir(claims);
        }
        closedir(workers);
        return adopted;
}

/* ---- listing claims, for ferry status and ferry explain ------------------- */

/* The pid in a claim's .handler note when that process still runs, else 0. */
static int running_handler(int claim_fd, int64_t *ret_since)
{
        char text[32];
        struct stat st;
        ssize_t n;
        int pid = 0, fd = openat(claim_fd, HANDLER_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

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
        base_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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
                fd = openat(base_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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
                        claim_fd = openat(dirfd(claims), ce->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (claim_fd < 0)
                                continue;
                        if (fstat(claim_fd, &st) == 0)
                                info.since = (int64_t)st.st_mtim.tv_sec * FERRY__NSEC_PER_SEC + st.st_mtim.tv_nsec;
                        info.pid = alive ? running_handler(claim_fd, &info.since) : 0;
                        info.handled = faccessat(claim_fd, OUTCOME_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
                        files = fdopendir(claim_fd);
                        if (!files) {
                                close(claim_fd);
                                continue;
                        }
                        while ((fe = readdir(files))) {
                                if (strcmp(fe->d_name, ORIGIN_FILE) == 0) {
                                        if (ferry__read_note(dirfd(files), ORIGIN_FILE, origin, sizeof(origin)) < 0 ||
                                            !ferry__relative_is_clean(origin))
                                                origin[0] = '\0';
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
