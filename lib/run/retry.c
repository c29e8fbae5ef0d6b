/* retry.c: failed files put back into their folder, to be handled again.
 *
 * A failed file goes back to where it was found (DIR/ORIGIN/NAME) by rename,
 * never replacing a file there: when the name is taken it comes back as
 * STEM.1.EXT, STEM.2.EXT, ... so that the rule's globs still match it. Its
 * note moves to FAILED/.requeued/ORIGIN/NAME.ferry-error.TIME, kept for the
 * record. The workers of the rule see it arrive as any file renamed into the
 * folder; this works whether they run or not, on any host that shares it.
 *
 * Everything is reached through directory descriptors: DIR and its .ferry as
 * a worker checks them, the failed folder as a worker opens it, subfolders
 * beneath them without following a link, and the note's text is never taken
 * for a path.
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

#define NOTE_SUFFIX ".ferry-error"
#define ARCHIVE ".requeued"

struct retrying {
        struct ferry__workarea *wa;
        struct ferry__folder *failed;
        struct ferry_rule *rule;
        ferry_retry_select_cb select;
        ferry_retry_done_cb done;
        void *userdata;
        bool dry_run;
        int count;
        struct ferry__audit audit; /* the folder's trail, opened once for the whole run (dir_fd -1: none) */
};

/* NAME with ".N" before its extension: "a.csv" 2 -> "a.2.csv"; "a" -> "a.2". */
static void numbered(const char *name, unsigned n, char *buf, size_t size)
{
        const char *dot = strrchr(name, '.');

        if (!dot || dot == name)
                dot = name + strlen(name);
        snprintf(buf, size, "%.*s.%u%s", (int)(dot - name), name, n, dot);
}

/* Moves fd/name's note into the archive, under origin. */
static void archive_note(struct retrying *r, int fd, const char *origin, const char *name)
{
        char note[NAME_MAX + 32], kept[NAME_MAX + 64], sub[PATH_MAX];
        int archive_fd;

        snprintf(note, sizeof(note), "%s%s", name, NOTE_SUFFIX);
        snprintf(sub, sizeof(sub), "%s%s%s", ARCHIVE, *origin ? "/" : "", origin);
        if (ferry__mkdirs_beneath(r->failed->fd, sub, r->failed->mode, &archive_fd) < 0)
                return; /* the note stays beside where the file was: harmless */
        for (unsigned n = 0; n < 1000; n++) {
                snprintf(kept, sizeof(kept), "%s.%lld%s%.0u", note, (long long)time(NULL), n ? "." : "", n);
                if (ferry__rename_noreplace(fd, note, archive_fd, kept) != -EEXIST)
                        break;
        }
        close(archive_fd);
}

/* Puts fd/name (in the failed folder, under origin) back, or says it would. */
static void put_back(struct retrying *r, int fd, const char *origin, const char *name,
                     const struct ferry_failure_info *info)
{
        char target[NAME_MAX + 1], *back = NULL;
        struct timespec at;
        int dest_fd, e = 0;

        snprintf(target, sizeof(target), "%s", name);
        if (!r->dry_run) {
                /* The folder it came from, made again if it went (beneath DIR, through no link). */
                if (!*origin)
                        dest_fd = r->wa->root_fd;
                else if ((e = ferry__mkdirs_beneath(r->wa->root_fd, origin, 0777, &dest_fd)) < 0)
                        dest_fd = -1;
                for (unsigned n = 1; dest_fd >= 0 && n < 1000; n++) {
                        /* when it went back: before a worker can claim it */
                        clock_gettime(CLOCK_REALTIME, &at);
                        e = ferry__rename_noreplace(fd, name, dest_fd, target);
                        if (e != -EEXIST)
                                break;
                        numbered(name, n, target, sizeof(target));
                }
                if (dest_fd >= 0 && dest_fd != r->wa->root_fd)
                        close(dest_fd);
                if (e == 0) {
                        char relative[PATH_MAX];

                        archive_note(r, fd, origin, name);
                        snprintf(relative, sizeof(relative), "%s%s%s", origin, *origin ? "/" : "", target);
                        ferry__audit_add(&r->audit, "requeued", r->rule->name, relative, strlen(relative), NULL,
                                         info->reason, &at);
                }
        }
        if (asprintf(&back, "%s/%s%s%s", r->rule->dir, origin, *origin ? "/" : "", target) < 0)
                back = NULL;
        r->count += e == 0;
        if (r->done)
                r->done(r->userdata, info, back ? back : "?", e);
        free(back);
}

static int walk(struct retrying *r, int fd, const char *origin)
{
        int list_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *listing = list_fd < 0 ? NULL : fdopendir(list_fd);
        size_t suffix = strlen(NOTE_SUFFIX);
        struct dirent *de;

        if (!listing) {
                if (list_fd >= 0)
                        close(list_fd);
                return -errno;
        }
        while ((de = readdir(listing))) {
                size_t len = strlen(de->d_name);
                char rel[PATH_MAX], path[PATH_MAX * 2], back[PATH_MAX * 2], text[8192], reason[512], at[32],
                        note[NAME_MAX + 32];
                struct ferry_failure_info info = {.path = path, .reason = "no note"};
                struct stat st;
                int sub_fd;
                ssize_t n;

                /* Hidden names are ferry's own (the archive, temporary notes): a handled file never has one. */
                if (de->d_name[0] == '.' || (len > suffix && strcmp(de->d_name + len - suffix, NOTE_SUFFIX) == 0))
                        continue;
                if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                snprintf(rel, sizeof(rel), "%s%s%s", origin, *origin ? "/" : "", de->d_name);
                if (S_ISDIR(st.st_mode)) {
                        sub_fd = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub_fd >= 0) {
                                (void)walk(r, sub_fd, rel);
                                close(sub_fd);
                        }
                        continue;
                }
                if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", r->failed->path, rel);
                snprintf(back, sizeof(back), "%s/%s", r->rule->dir, rel);
                snprintf(note, sizeof(note), "%s%s", de->d_name, NOTE_SUFFIX);
                n = ferry__read_note(fd, note, text, sizeof(text));
                if (n > 0) {
                        ferry__note_field(text, "reason", reason, sizeof(reason));
                        ferry__note_field(text, "failed-at", at, sizeof(at));
                        info.reason = reason;
                        info.when = atoll(at);
                }
                if (r->select(r->userdata, &info, back))
                        put_back(r, fd, origin, de->d_name, &info);
        }
        closedir(listing);
        return 0;
}

int ferry_rule_retry(struct ferry_rule *rule, ferry_retry_select_cb select, ferry_retry_done_cb done, int dry_run,
                     void *userdata)
{
        struct ferry__workarea wa = {.root_fd = -1, .ferry_fd = -1, .base_fd = -1, .work_fd = -1, .output_fd = -1};
        struct ferry__folder failed = {.fd = -1};
        struct retrying r = {.wa = &wa,
                             .failed = &failed,
                             .rule = rule,
                             .select = select,
                             .done = done,
                             .userdata = userdata,
                             .dry_run = dry_run,
                             .audit = {.dir_fd = -1, .fd = -1}};
        int e;

        if (!rule || !select)
                return -EINVAL;
        rule->explanation[0] = '\0';
        if (rule->on_success == FERRY__ON_SUCCESS_KEEP) {
                snprintf(rule->explanation, sizeof(rule->explanation),
                         "rule %s keeps files in place: a failed one is still in %s, handled again when it changes",
                         rule->name, rule->dir);
                return -EINVAL;
        }
        e = ferry__workarea_home(&wa, rule->dir);
        if (e == 0)
                e = ferry__folder_open(&wa, &failed, rule->failed_dir, "failed");
        if (e == 0 && !dry_run && !rule->audit_off)
                (void)ferry__audit_open(&r.audit, &wa); /* without it, files still go back */
        if (e == 0)
                e = walk(&r, failed.fd, "");
        if (e < 0)
                snprintf(rule->explanation, sizeof(rule->explanation), "rule %s: %.400s", rule->name,
                         wa.trust.why[0] ? wa.trust.why : strerror(-e));
        ferry__audit_close(&r.audit);
        ferry__folder_close(&failed);
        ferry__workarea_close(&wa);
        return e < 0 ? e : r.count;
}
