/* audit.c: a rule folder's audit trail: one JSON line for each thing that
 * became of a file (claimed, started, done, retried, failed, returned,
 * requeued, purged), appended to DIR/.ferry/audit/YYYY-MM-DD.HOST.jsonl
 * (the day in UTC). One file a host and a day: appends of several hosts to
 * one file on a network file system could cut into each other's lines, and
 * whole days are what an administrator keeps or removes. ferry history reads
 * them back. Lines are gathered and written out together (ferry__audit_flush),
 * each write whole lines. */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_DIR "audit"

int ferry__audit_open(struct ferry__audit *a, struct ferry__workarea *wa)
{
        char *path = NULL;
        int r;

        a->fd = a->dir_fd = -1;
        a->day[0] = '\0';
        a->lines = NULL;
        a->buffer = NULL;
        a->used = 0;
        a->second = -1;
        a->pid = getpid();
        snprintf(a->host, sizeof(a->host), "%s", wa->host);
        if (!a->host[0] && gethostname(a->host, sizeof(a->host) - 1) < 0)
                snprintf(a->host, sizeof(a->host), "localhost");
        a->host[sizeof(a->host) - 1] = '\0';
        if (asprintf(&path, "%s/.ferry/" AUDIT_DIR, wa->dir) < 0)
                return -ENOMEM;
        r = ferry__trusted_dir(&wa->trust, wa->ferry_fd, AUDIT_DIR, 0700, true, path, &a->dir_fd);
        free(path);
        return r;
}

void ferry__audit_host_name(const char *host, char *buf, size_t size)
{
        snprintf(buf, size, "%.200s", host);
        for (char *p = buf; *p; p++)
                if (*p == '/' || *p == '.')
                        *p = '_';
}

/* Today's file (UTC), opened again when the day changed. */
static int day_file(struct ferry__audit *a, time_t now)
{
        char day[16], name[NAME_MAX + 1], safe[201];
        struct tm tm;

        if (!gmtime_r(&now, &tm))
                return -EINVAL;
        strftime(day, sizeof(day), "%Y-%m-%d", &tm);
        if (a->fd >= 0 && strcmp(day, a->day) == 0)
                return a->fd;
        if (a->fd >= 0)
                close(a->fd);
        /* The host's name, its dots and slashes made '_': one name in the folder. */
        ferry__audit_host_name(a->host, safe, sizeof(safe));
        snprintf(name, sizeof(name), "%s.%s.jsonl", day, safe);
        a->fd = openat(a->dir_fd, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (a->fd >= 0)
                snprintf(a->day, sizeof(a->day), "%s", day);
        return a->fd;
}

void ferry__audit_add(struct ferry__audit *a, const char *event, const char *rule, const char *relative, size_t len,
                      const struct ferry_log_record *rec, const char *message, const struct timespec *at)
{
        struct timespec ts;
        FILE *line;

        if (a->dir_fd < 0)
                return;
        if (at)
                ts = *at;
        else
                clock_gettime(CLOCK_REALTIME, &ts);
        if (ts.tv_sec != a->second || !a->when[0]) {
                struct tm tm;

                gmtime_r(&ts.tv_sec, &tm);
                strftime(a->when, sizeof(a->when), "%Y-%m-%dT%H:%M:%S", &tm);
                a->second = ts.tv_sec;
        }
        if (!a->lines && !(a->lines = open_memstream(&a->buffer, &a->used)))
                return;
        line = a->lines;
        fprintf(line, "{\"time\":\"%s.%06ldZ\",\"event\":\"%s\"", a->when, ts.tv_nsec / 1000, event);
        ferry_json_field(line, "rule", rule, strlen(rule));
        ferry_json_field(line, "path", relative, len);
        ferry_json_field(line, "host", a->host, strlen(a->host));
        fprintf(line, ",\"ferry_pid\":%d", (int)a->pid);
        if (rec && rec->pid)
                fprintf(line, ",\"pid\":%d", rec->pid);
        if (rec && rec->attempt)
                fprintf(line, ",\"attempt\":%d", rec->attempt);
        if (rec && rec->duration_ns >= 0)
                fprintf(line, ",\"duration\":%.6f", (double)rec->duration_ns / 1e9);
        if (rec && !rec->duplicate_of &&
            (rec->kind == FERRY_LOG_DONE || rec->kind == FERRY_LOG_RETRY || rec->kind == FERRY_LOG_FAILED))
                fprintf(line, ",\"exit_code\":%d,\"signal\":%d", rec->exit_code, rec->signal);
        if (rec && rec->size >= 0)
                fprintf(line, ",\"size\":%lld", (long long)rec->size);
        if (rec && rec->sha256)
                ferry_json_field(line, "sha256", rec->sha256, strlen(rec->sha256));
        if (rec && rec->duplicate_of)
                ferry_json_field(line, "duplicate_of", rec->duplicate_of, strlen(rec->duplicate_of));
        if (message)
                ferry_json_field(line, "message", message, strlen(message));
        fputs("}\n", line);
        if (ftell(line) >= 65536)
                ferry__audit_flush(a);
}

/* Drops the lines gathered and their stream. */
static void drop_lines(struct ferry__audit *a)
{
        if (a->lines)
                fclose(a->lines);
        free(a->buffer);
        a->lines = NULL;
        a->buffer = NULL;
        a->used = 0;
}

void ferry__audit_flush(struct ferry__audit *a)
{
        size_t done = 0;
        int fd;

        /* Out of memory while a line was gathered: what is there may end
         * within a line, and the trail takes whole lines only. */
        if (!a->lines || fflush(a->lines) != 0 || ferror(a->lines)) {
                drop_lines(a);
                return;
        }
        if (!a->used)
                return;
        fd = day_file(a, time(NULL));
        while (fd >= 0 && done < a->used) {
                ssize_t n = write(fd, a->buffer + done, a->used - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break; /* a full disk: the trail misses these lines, nothing else does */
                done += (size_t)n;
        }
        rewind(a->lines);
        fflush(a->lines);
}

void ferry__audit_close(struct ferry__audit *a)
{
        ferry__audit_flush(a);
        drop_lines(a);
        if (a->fd >= 0)
                close(a->fd);
        if (a->dir_fd >= 0)
                close(a->dir_fd);
        a->fd = a->dir_fd = -1;
}

/* ---- reading it back: ferry history ------------------------------------------- */

/* The raw (still escaped) text of the JSON string field key in line, or NULL. */
static const char *field(const char *line, size_t len, const char *key, size_t *ret_len)
{
        char pattern[32];
        const char *p, *end = line + len;
        size_t n = (size_t)snprintf(pattern, sizeof(pattern), "\"%s\":\"", key);

        p = memmem(line, len, pattern, n);
        if (!p)
                return NULL;
        p += n;
        for (const char *q = p; q < end; q++) {
                if (*q == '\\') {
                        q++;
                        continue;
                }
                if (*q == '"') {
                        *ret_len = (size_t)(q - p);
                        return p;
                }
        }
        return NULL;
}

/* Whether the line's path is the one asked for: the same relative path, or
 * (by_name) a path whose last part is it. Both sides JSON-escaped alike. */
static bool path_matches(const char *line, size_t len, const char *want, size_t want_len, bool by_name)
{
        size_t n;
        const char *path = field(line, len, "path", &n);

        if (!path || n < want_len || memcmp(path + n - want_len, want, want_len) != 0)
                return false;
        return n == want_len || (by_name && path[n - want_len - 1] == '/');
}

int ferry_rule_history(struct ferry_rule *rule, const char *path, int by_name, ferry_history_cb callback,
                       void *userdata)
{
        struct ferry__workarea wa = {.root_fd = -1, .ferry_fd = -1, .base_fd = -1, .work_fd = -1, .output_fd = -1};
        char *want = NULL;
        size_t want_len = 0;
        FILE *escaped;
        DIR *listing = NULL;
        struct dirent *de;
        int fd = -1, e, count = 0;

        if (!rule || !path || !callback)
                return -EINVAL;
        rule->explanation[0] = '\0';
        escaped = open_memstream(&want, &want_len);
        if (!escaped)
                return -ENOMEM;
        ferry_json_string(escaped, path, strlen(path));
        if (fclose(escaped) != 0 || want_len < 2) {
                free(want);
                return -ENOMEM;
        }
        e = ferry__workarea_home(&wa, rule->dir);
        if (e == 0) {
                fd = openat(wa.ferry_fd, AUDIT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                listing = fd < 0 ? NULL : fdopendir(fd);
                if (!listing) {
                        e = errno == ENOENT ? 0 : -errno;
                        if (fd >= 0)
                                close(fd);
                }
        }
        while (listing && (de = readdir(listing))) {
                size_t name_len = strlen(de->d_name);
                struct stat st;
                char *text, *p, *end;
                int file_fd;

                if (de->d_name[0] == '.' || name_len < 7 || strcmp(de->d_name + name_len - 6, ".jsonl") != 0)
                        continue;
                file_fd = openat(dirfd(listing), de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (file_fd < 0)
                        continue;
                /* Only a regular file: anything else planted there is not read. */
                if (fstat(file_fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
                    (text = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, file_fd, 0)) == MAP_FAILED) {
                        close(file_fd);
                        continue;
                }
                end = text + st.st_size;
                /* The name's bytes first (fast over a year of lines), then its field. */
                for (p = text; p < end && (p = memmem(p, (size_t)(end - p), want + 1, want_len - 2));) {
                        char *start = p, *stop = memchr(p, '\n', (size_t)(end - p));

                        while (start > text && start[-1] != '\n')
                                start--;
                        if (!stop)
                                stop = end;
                        if (path_matches(start, (size_t)(stop - start), want + 1, want_len - 2, by_name)) {
                                callback(userdata, start, (size_t)(stop - start));
                                count++;
                        }
                        p = stop;
                }
                munmap(text, (size_t)st.st_size);
                close(file_fd);
        }
        if (listing)
                closedir(listing);
        if (e < 0)
                snprintf(rule->explanation, sizeof(rule->explanation), "rule %s: %.400s", rule->name,
                         wa.trust.why[0] ? wa.trust.why : strerror(-e));
        ferry__workarea_close(&wa);
        free(want);
        return e < 0 ? e : count;
}

/* The day a trail file is about, from its name (YYYY-MM-DD.HOST.jsonl): the
 * moment it ended, or -1 for a name that is not a day's file. */
static time_t day_end(const char *name)
{
        size_t len = strlen(name);
        struct tm tm = {0};

        if (len < 17 || strcmp(name + len - 6, ".jsonl") != 0 || name[4] != '-' || name[7] != '-' || name[10] != '.')
                return -1;
        for (int i = 0; i < 10; i++)
                if (i != 4 && i != 7 && (name[i] < '0' || name[i] > '9'))
                        return -1;
        tm.tm_year = atoi(name) - 1900;
        tm.tm_mon = atoi(name + 5) - 1;
        tm.tm_mday = atoi(name + 8);
        if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31)
                return -1;
        return timegm(&tm) + 24 * 3600;
}

int ferry__audit_sweep(const struct ferry__workarea *wa, const struct ferry__audit *trail, int64_t retention_ns,
                       bool dry_run, ferry_purge_cb callback, void *userdata, unsigned long long *ret_removed)
{
        time_t cutoff = time(NULL) - (time_t)(retention_ns / FERRY__NSEC_PER_SEC);
        struct dirent *de;
        DIR *listing;
        int fd, r = 0;

        if (retention_ns <= 0 || ((!trail || trail->dir_fd < 0) && wa->ferry_fd < 0))
                return 0;
        /* A listing of its own (the trail's descriptor stays where it is for
         * the trail), or, without one, the folder as history reads it. */
        fd = trail && trail->dir_fd >= 0
                     ? openat(trail->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                     : openat(wa->ferry_fd, AUDIT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        listing = fd < 0 ? NULL : fdopendir(fd);
        if (!listing) {
                r = errno == ENOENT ? 0 : -errno; /* no trail yet: nothing to remove */
                if (fd >= 0)
                        close(fd);
                return r;
        }
        while ((de = readdir(listing))) {
                time_t end = de->d_name[0] == '.' ? -1 : day_end(de->d_name);
                struct stat st;

                /* Only a day's file that ended long enough ago; links and
                 * anything else planted there are left alone. */
                if (end < 0 || end > cutoff || fstatat(dirfd(listing), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;
                if (!dry_run && unlinkat(dirfd(listing), de->d_name, 0) < 0) {
                        if (errno != ENOENT && r == 0)
                                r = -errno;
                        continue;
                }
                (*ret_removed)++;
                if (callback) {
                        char *full = NULL;

                        if (asprintf(&full, "%s/.ferry/" AUDIT_DIR "/%s", wa->dir, de->d_name) >= 0)
                                callback(userdata, full, 2, (int64_t)end);
                        free(full);
                }
        }
        closedir(listing);
        return r;
}
