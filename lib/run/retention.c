/* retention.c: the dated layout of the done folder (done-layout) and the
 * sweep that removes from the done and failed folders what has been there
 * longer than done-retention or failed-retention.
 *
 * A layout is a path of strftime-like parts: %Y, %m, %d, %H, %M and %%,
 * in local time. The sweep reads a dated folder's period back from its name
 * and removes it whole once the period ended longer ago than the retention,
 * without listing it; an unexpired one at the layout's full depth is not
 * listed either. Everything else (no layout, names that do not fit it,
 * entries from before the layout was set) ages by its change time, which a
 * move into the folder sets: the time it arrived. Links are never followed
 * and other file systems mounted inside are left alone. */
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

#define LAYOUT_DEPTH_MAX 8

/* ---- the layout --------------------------------------------------------------- */

/* The units a layout names, coarse to fine. */
enum { UNIT_NONE, UNIT_YEAR, UNIT_MONTH, UNIT_DAY, UNIT_HOUR, UNIT_MINUTE };

static int unit_of(char conversion)
{
        switch (conversion) {
        case 'Y': return UNIT_YEAR;
        case 'm': return UNIT_MONTH;
        case 'd': return UNIT_DAY;
        case 'H': return UNIT_HOUR;
        case 'M': return UNIT_MINUTE;
        default: return -1;
        }
}

int ferry__layout_check(const char *layout, char *why, size_t size)
{
        int depth = 1, part_len = 0;

        if (!*layout || *layout == '/') {
                snprintf(why, size, "'%s' is not a relative path of folders, e.g. %%Y/%%m/%%d", layout);
                return -EINVAL;
        }
        for (const char *p = layout;; p++) {
                if (*p == '/' || !*p) {
                        const char *part = p - part_len;

                        if (!part_len || (part_len == 1 && part[0] == '.') ||
                            (part_len == 2 && part[0] == '.' && part[1] == '.')) {
                                snprintf(why, size, "'%s' has an empty, '.' or '..' folder", layout);
                                return -EINVAL;
                        }
                        if (!*p)
                                break;
                        if (++depth > LAYOUT_DEPTH_MAX) {
                                snprintf(why, size, "'%s' is deeper than %d folders", layout, LAYOUT_DEPTH_MAX);
                                return -EINVAL;
                        }
                        part_len = 0;
                        continue;
                }
                part_len++;
                if (*p != '%')
                        continue;
                p++;
                part_len++;
                if (*p != '%' && unit_of(*p) < 0) {
                        snprintf(why, size, "'%s': %%%c is not one of %%Y %%m %%d %%H %%M %%%%", layout, *p ? *p : ' ');
                        return -EINVAL;
                }
        }
        return 0;
}

int ferry__layout_format(const char *layout, time_t when, char *buf, size_t size)
{
        struct tm tm;
        size_t n = 0;

        if (!localtime_r(&when, &tm))
                return -EINVAL;
        for (const char *p = layout; *p && n + 8 < size; p++) {
                int value;

                if (*p != '%') {
                        buf[n++] = *p;
                        continue;
                }
                switch (*++p) {
                case 'Y': value = tm.tm_year + 1900; break;
                case 'm': value = tm.tm_mon + 1; break;
                case 'd': value = tm.tm_mday; break;
                case 'H': value = tm.tm_hour; break;
                case 'M': value = tm.tm_min; break;
                default: buf[n++] = '%'; continue;
                }
                n += (size_t)snprintf(buf + n, size - n, *p == 'Y' ? "%04d" : "%02d", value);
        }
        if (n + 8 >= size)
                return -ENAMETOOLONG;
        buf[n] = '\0';
        return 0;
}

/* The layout's folder number depth (0-based), as a pointer into it and its length. */
static const char *layout_part(const char *layout, int depth, size_t *ret_len)
{
        for (; depth > 0 && layout; depth--) {
                layout = strchr(layout, '/');
                if (layout)
                        layout++;
        }
        if (!layout)
                return NULL;
        *ret_len = strcspn(layout, "/");
        return layout;
}

/* Reads name as the layout's part into tm; the finest unit it named to
 * *finest. false: the name does not fit the part. */
static bool part_match(const char *part, size_t len, const char *name, struct tm *tm, int *finest)
{
        const char *n = name;

        for (size_t i = 0; i < len; i++) {
                int digits, value = 0, unit;

                if (part[i] != '%' || part[i + 1] == '%') {
                        if (*n++ != part[i])
                                return false;
                        i += part[i] == '%';
                        continue;
                }
                unit = unit_of(part[++i]);
                digits = unit == UNIT_YEAR ? 4 : 2;
                for (int d = 0; d < digits; d++, n++) {
                        if (*n < '0' || *n > '9')
                                return false;
                        value = value * 10 + (*n - '0');
                }
                switch (unit) {
                case UNIT_YEAR: tm->tm_year = value - 1900; break;
                case UNIT_MONTH:
                        if (value < 1 || value > 12)
                                return false;
                        tm->tm_mon = value - 1;
                        break;
                case UNIT_DAY:
                        if (value < 1 || value > 31)
                                return false;
                        tm->tm_mday = value;
                        break;
                case UNIT_HOUR:
                        if (value > 23)
                                return false;
                        tm->tm_hour = value;
                        break;
                default:
                        if (value > 59)
                                return false;
                        tm->tm_min = value;
                }
                if (unit > *finest)
                        *finest = unit;
        }
        return *n == '\0';
}

/* When the period a dated folder stands for ended (unix seconds). */
static time_t period_end(const struct tm *start, int finest)
{
        struct tm end = *start;

        switch (finest) {
        case UNIT_YEAR: end.tm_year++; break;
        case UNIT_MONTH: end.tm_mon++; break;
        case UNIT_DAY: end.tm_mday++; break;
        case UNIT_HOUR: end.tm_hour++; break;
        default: end.tm_min++;
        }
        end.tm_isdst = -1;
        return mktime(&end);
}

/* ---- the sweep ------------------------------------------------------------------ */

struct sweep {
        const char *top;    /* the folder's path, for the callback */
        const char *layout; /* or NULL */
        time_t cutoff;      /* what arrived before this goes (unix seconds) */
        int64_t cutoff_ns;  /* the same in ns, for change times */
        dev_t dev;
        bool dry_run;
        ferry_purge_cb callback;
        void *userdata;
        struct ferry__purge_counts *counts;
        struct ferry__audit *audit; /* a "purged" line for each removal; or NULL */
        const struct ferry_rule *rule;
        char path[PATH_MAX];
};

static void said(struct sweep *s, size_t len, const char *name, bool folder, time_t when)
{
        size_t dir_len = strlen(s->rule->dir);
        char *full;

        if (!s->callback && !s->audit)
                return;
        if (asprintf(&full, "%s/%.*s%s", s->top, (int)len, s->path, name) < 0)
                return;
        /* In the trail: relative to DIR when it is in DIR (.ferry/done/...). */
        if (s->audit && !s->dry_run) {
                bool inside = strncmp(full, s->rule->dir, dir_len) == 0 && full[dir_len] == '/';
                const char *shown = inside ? full + dir_len + 1 : full;

                ferry__audit_add(s->audit, "purged", s->rule->name, shown, strlen(shown), NULL,
                                 folder ? "a dated folder whose period ended longer ago than the retention, whole"
                                        : "there longer than the retention",
                                 NULL);
        }
        if (s->callback)
                s->callback(s->userdata, full, folder, (int64_t)when);
        free(full);
}

/* When an entry arrived: its change time, which a move into the folder sets (ns). */
static int64_t arrived(const struct stat *st)
{
        return (int64_t)st->st_ctim.tv_sec * FERRY__NSEC_PER_SEC + st->st_ctim.tv_nsec;
}

/* Removes the folder name in fd and all it holds; how many files it held
 * into *files. Only this file system; a link is removed, never followed. */
static int remove_tree(struct sweep *s, int fd, const char *name, unsigned long long *files)
{
        int dir_fd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r = 0;
        DIR *listing = dir_fd < 0 ? NULL : fdopendir(dir_fd);
        struct dirent *de;

        if (!listing) {
                if (dir_fd >= 0)
                        close(dir_fd);
                return -errno;
        }
        while ((de = readdir(listing))) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    fstatat(dirfd(listing), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (st.st_dev != s->dev) {
                        r = -EXDEV; /* a mount inside: left, and so is the folder */
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        int e = remove_tree(s, dirfd(listing), de->d_name, files);

                        if (e < 0)
                                r = e;
                } else if (s->dry_run || unlinkat(dirfd(listing), de->d_name, 0) == 0) {
                        (*files)++;
                } else if (errno != ENOENT) {
                        r = -errno;
                }
        }
        closedir(listing);
        if (!s->dry_run && unlinkat(fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r;
}

/* Sweeps folder fd, at path s->path[0..len) below the top; depth: its
 * depth in the layout, -1 when it is not a dated folder. */
static int sweep_folder(struct sweep *s, int fd, size_t len, int depth, const struct tm *dated, int finest)
{
        int list_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;
        DIR *listing = list_fd < 0 ? NULL : fdopendir(list_fd);
        struct dirent *de;

        if (!listing) {
                if (list_fd >= 0)
                        close(list_fd);
                return -errno;
        }
        while ((de = readdir(listing))) {
                struct stat st;
                size_t part_len, name_len = strlen(de->d_name);
                const char *part;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    fstatat(dirfd(listing), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != s->dev)
                        continue;
                if (!S_ISDIR(st.st_mode)) {
                        if (arrived(&st) >= s->cutoff_ns)
                                continue;
                        if (!s->dry_run && unlinkat(dirfd(listing), de->d_name, 0) < 0) {
                                if (errno != ENOENT)
                                        r = -errno;
                                continue;
                        }
                        s->counts->files++;
                        said(s, len, de->d_name, false, st.st_ctime);
                        continue;
                }
                if (len + name_len + 2 > sizeof(s->path))
                        continue;
                part = s->layout && depth >= 0 ? layout_part(s->layout, depth, &part_len) : NULL;
                struct tm tm = *dated;
                int unit = finest, next_depth = -1, e;
                bool fits = part && part_match(part, part_len, de->d_name, &tm, &unit);

                if (fits && unit == UNIT_NONE) {
                        /* A part of the layout without a date (archive/%Y): its folders go on. */
                        if (layout_part(s->layout, depth + 1, &part_len))
                                next_depth = depth + 1;
                } else if (fits) {
                        struct tm begin = tm;
                        time_t end = period_end(&tm, unit);
                        unsigned long long files = 0;

                        if (end != (time_t)-1 && end <= s->cutoff) {
                                /* A period over: the folder goes whole, unlisted. */
                                e = remove_tree(s, dirfd(listing), de->d_name, &files);
                                s->counts->files += files;
                                if (e == 0) {
                                        s->counts->folders++;
                                        said(s, len, de->d_name, true, end);
                                } else if (e != -ENOENT) {
                                        r = e;
                                }
                                continue;
                        }
                        begin.tm_isdst = -1;
                        if (mktime(&begin) >= s->cutoff)
                                continue; /* begun since the cutoff: all in it is younger */
                        if (layout_part(s->layout, depth + 1, &part_len))
                                next_depth = depth + 1;
                } else {
                        /* A folder of another kind (a subfolder of DIR, notes of
                         * requeued files): swept inside, removed once empty and old. */
                        tm = *dated;
                        unit = finest;
                }
                memcpy(s->path + len, de->d_name, name_len);
                s->path[len + name_len] = '/';
                int sub_fd = openat(dirfd(listing), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                if (sub_fd < 0)
                        continue;
                e = sweep_folder(s, sub_fd, len + name_len + 1, next_depth, &tm, unit);
                close(sub_fd);
                if (e < 0)
                        r = e;
                /* Nothing arrived in it since the cutoff (an arrival changes
                 * it): empty now, it goes. */
                if (!s->dry_run && arrived(&st) < s->cutoff_ns &&
                    unlinkat(dirfd(listing), de->d_name, AT_REMOVEDIR) == 0)
                        s->counts->folders++;
        }
        closedir(listing);
        return r;
}

int ferry__sweep(const struct ferry_rule *rule, const struct ferry__folder *folder, const char *layout,
                 int64_t retention_ns, bool dry_run, ferry_purge_cb callback, void *userdata,
                 struct ferry__audit *audit, struct ferry__purge_counts *counts)
{
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        struct sweep s = {.top = folder->path,
                          .layout = layout,
                          .cutoff = now.tv_sec - (time_t)(retention_ns / FERRY__NSEC_PER_SEC),
                          .cutoff_ns = (int64_t)now.tv_sec * FERRY__NSEC_PER_SEC + now.tv_nsec - retention_ns,
                          .dry_run = dry_run,
                          .callback = callback,
                          .userdata = userdata,
                          .counts = counts,
                          .audit = audit,
                          .rule = rule};
        struct tm none = {.tm_mday = 1, .tm_isdst = -1};
        struct stat st;

        if (folder->fd < 0 || retention_ns <= 0)
                return 0;
        if (fstat(folder->fd, &st) < 0)
                return -errno;
        s.dev = st.st_dev;
        return sweep_folder(&s, folder->fd, 0, layout ? 0 : -1, &none, UNIT_NONE);
}

int ferry_rule_purge(struct ferry_rule *rule, int dry_run, ferry_purge_cb callback, void *userdata)
{
        struct ferry__workarea wa = {.root_fd = -1, .ferry_fd = -1, .base_fd = -1, .work_fd = -1, .output_fd = -1};
        struct ferry__folder done = {.fd = -1}, failed = {.fd = -1};
        struct ferry__purge_counts counts = {0};
        struct ferry__audit audit = {.dir_fd = -1, .fd = -1}, *trail = NULL;
        int e;

        if (!rule)
                return -EINVAL;
        rule->explanation[0] = '\0';
        if (rule->on_success != FERRY__ON_SUCCESS_DONE && (rule->done_retention_ns || rule->done_layout)) {
                snprintf(rule->explanation, sizeof(rule->explanation),
                         "rule %s: done-layout and done-retention need a done folder (not %s)", rule->name,
                         rule->on_success == FERRY__ON_SUCCESS_KEEP ? "keep" : "delete");
                return -EINVAL;
        }
        e = ferry__workarea_home(&wa, rule->dir);
        if (e == 0 && !dry_run && !rule->audit_off && ferry__audit_open(&audit, &wa) == 0)
                trail = &audit;
        if (e == 0 && rule->done_retention_ns && rule->on_success == FERRY__ON_SUCCESS_DONE &&
            (e = ferry__folder_open(&wa, &done, rule->done_dir, "done")) == 0)
                e = ferry__sweep(rule, &done, rule->done_layout, rule->done_retention_ns, dry_run, callback, userdata,
                                 trail, &counts);
        if (e == 0 && rule->failed_retention_ns &&
            (e = ferry__folder_open(&wa, &failed, rule->failed_dir, "failed")) == 0)
                e = ferry__sweep(rule, &failed, NULL, rule->failed_retention_ns, dry_run, callback, userdata, trail,
                                 &counts);
        if (e == 0 && rule->audit_retention_ns)
                e = ferry__audit_sweep(&wa, trail, rule->audit_retention_ns, dry_run, callback, userdata,
                                       &counts.files);
        if (e < 0)
                snprintf(rule->explanation, sizeof(rule->explanation), "rule %s: %.400s", rule->name,
                         wa.trust.why[0] ? wa.trust.why : strerror(-e));
        ferry__audit_close(&audit);
        ferry__folder_close(&done);
        ferry__folder_close(&failed);
        ferry__workarea_close(&wa);
        return e < 0 ? e : (int)(counts.files > INT32_MAX ? INT32_MAX : counts.files);
}
