/* policy.c: what each ready policy is, in one table.
 *
 * A policy has a name, an argument (none, optional or required) with its
 * default, the kernel events it needs reported, a one-line description (the
 * log's "watching ... with ..."), an explanation of one file as it is now
 * (ferry explain), and a change function (ready.c) that runs its state
 * machine. ready.c's functions decide for a running watcher; the
 * explanations here use the same probes (writers, markers, stat) so that
 * explain and run judge a file alike.
 */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_GUARD_NS (100 * FERRY__NSEC_PER_MSEC)
/* auto: how long a file written and never closed must stay unchanged before
 * a server's fd cache is taken to hold it (nfs-ganesha NFSv3 never closes). */
#define DEFAULT_QUIET_NS (10 * FERRY__NSEC_PER_SEC)
/* rename: a renamed file that only a file server still holds open
 * (nfs-ganesha keeps its descriptor) is ready once unchanged this long:
 * never a busy wait on one still being written. */
#define RENAME_QUIET_NS (1 * FERRY__NSEC_PER_SEC)

enum argument { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED };

/* What explain is told about the file: its path, stat, and the root's poll interval (0: not polled). */
struct look {
        const struct ferry__policy *p;
        const char *path;
        const struct stat *st;
        int64_t age_ns; /* since its last change */
        int64_t poll_interval_ns;
};

struct policy_def {
        const char *name;
        enum ferry__policy_kind kind;
        enum argument argument;
        /* Sets the defaults, then reads the argument (NULL when none). */
        int (*parse)(const char *value, struct ferry__policy *p);
        unsigned needs; /* FERRY__NEED_*: what the kernel must report */
        int (*describe)(const struct ferry__policy *p, char *buf, size_t size);
        int (*explain)(const struct look *look, char *buf, size_t size);
        void (*change)(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change);
};

static double seconds(int64_t ns)
{
        return (double)ns / FERRY__NSEC_PER_SEC;
}

/* ---- auto ------------------------------------------------------------------ */

static int parse_auto(const char *value, struct ferry__policy *p)
{
        p->settle_ns = DEFAULT_QUIET_NS;
        return value ? ferry_duration_parse(value, &p->settle_ns) : 0;
}

static int describe_auto(const struct ferry__policy *p, char *buf, size_t size)
{
        return snprintf(buf, size,
                        "auto: renamed into place: ready at once; closed after writing: ready when the last "
                        "writer closed and it stayed quiet for %.3gs; written and never closed: ready after "
                        "%.3gs unchanged when only file servers hold it open; on polled folders: ready "
                        "when size and mtime stayed unchanged for two poll intervals",
                        seconds(p->guard_ns), seconds(p->settle_ns));
}

/* Written to, or being written: what auto and close say alike. */
static int explain_writer(const struct look *l, const char *policy, char *buf, size_t size)
{
        if (l->p->kind == FERRY__POLICY_AUTO && ferry__writers_are_servers(l->path) == 1)
                return snprintf(buf, size,
                                "not ready yet: only file servers hold it open for writing (their fd caches); "
                                "under auto it is ready after %.3gs unchanged (it has been unchanged for %.3gs)",
                                seconds(l->p->settle_ns), seconds(l->age_ns));
        return snprintf(buf, size,
                        "not ready: a process still has it open for writing (policy %s waits for the "
                        "last close)",
                        policy);
}

static int explain_settling(const struct look *l, int64_t needed_ns, const char *policy, char *buf, size_t size)
{
        char age[32], needed[32];

        (void)ferry__format_duration(l->age_ns > 0 ? l->age_ns : 0, age, sizeof(age));
        (void)ferry__format_duration(needed_ns, needed, sizeof(needed));
        return snprintf(buf, size, "settling: unchanged for %s of the %s it needs (policy %s)", age, needed, policy);
}

static int explain_complete(char *buf, size_t size)
{
        return snprintf(buf, size,
                        "complete (no writer holds it open): a running ferry takes it as soon as a "
                        "handler slot is free");
}

static int explain_auto(const struct look *l, char *buf, size_t size)
{
        struct ferry__version v;

        /* On a polled folder no close from other machines is ever seen. */
        if (l->poll_interval_ns > 0) {
                if (l->age_ns < 2 * l->poll_interval_ns)
                        return explain_settling(l, 2 * l->poll_interval_ns, "auto, on a polled folder", buf, size);
                return explain_complete(buf, size);
        }
        if (ferry__writers_check(l->path, &v) == FERRY__WRITER_OPEN)
                return explain_writer(l, "auto", buf, size);
        return explain_complete(buf, size);
}

/* ---- close ----------------------------------------------------------------- */

static int parse_close(const char *value, struct ferry__policy *p)
{
        return value ? ferry_duration_parse(value, &p->guard_ns) : 0;
}

static int describe_close(const struct ferry__policy *p, char *buf, size_t size)
{
        return snprintf(buf, size,
                        "close: ready when the last writer closed (read-lease check) and it stayed quiet for %.3gs",
                        seconds(p->guard_ns));
}

static int explain_close(const struct look *l, char *buf, size_t size)
{
        struct ferry__version v;

        if (ferry__writers_check(l->path, &v) == FERRY__WRITER_OPEN)
                return explain_writer(l, "close", buf, size);
        return explain_complete(buf, size);
}

/* ---- rename ---------------------------------------------------------------- */

static int parse_rename(const char *value, struct ferry__policy *p)
{
        (void)value;
        p->settle_ns = RENAME_QUIET_NS;
        return 0;
}

static int describe_rename(const struct ferry__policy *p, char *buf, size_t size)
{
        (void)p;
        return snprintf(buf, size, "rename: ready when renamed into place under a final name");
}

static int explain_rename(const struct look *l, char *buf, size_t size)
{
        (void)l;
        return snprintf(buf, size,
                        "ready if it arrived by rename (policy rename); a file written in place under "
                        "its final name is never taken");
}

/* ---- settle ---------------------------------------------------------------- */

static int parse_settle(const char *value, struct ferry__policy *p)
{
        return ferry_duration_parse(value, &p->settle_ns);
}

static int describe_settle(const struct ferry__policy *p, char *buf, size_t size)
{
        return snprintf(buf, size, "settle: ready when size and mtime stayed unchanged for %.3gs",
                        seconds(p->settle_ns));
}

static int explain_settle(const struct look *l, char *buf, size_t size)
{
        if (l->age_ns < l->p->settle_ns)
                return explain_settling(l, l->p->settle_ns, "settle", buf, size);
        return explain_complete(buf, size);
}

/* ---- done-file ------------------------------------------------------------- */

static int parse_done_file(const char *value, struct ferry__policy *p)
{
        const char *marker = value ? value : ".done";
        size_t len = strlen(marker);

        if (len == 0 || len > NAME_MAX || strchr(marker, '/') || strcmp(marker, ".") == 0)
                return -EINVAL;
        p->marker_is_suffix = marker[0] == '.';
        memcpy(p->marker, marker, len + 1);
        return 0;
}

static int describe_done_file(const struct ferry__policy *p, char *buf, size_t size)
{
        if (p->marker_is_suffix)
                return snprintf(buf, size, "done-file: X is ready when X%s exists", p->marker);
        return snprintf(buf, size, "done-file: a folder's files are ready when %s appears in it", p->marker);
}

static int explain_done_file(const struct look *l, char *buf, size_t size)
{
        const struct ferry__policy *p = l->p;
        const char *slash = strrchr(l->path, '/');
        char marker[PATH_MAX * 2];
        struct stat mst;
        int r;

        if (p->marker_is_suffix)
                snprintf(marker, sizeof(marker), "%s%s", l->path, p->marker);
        else if (slash)
                snprintf(marker, sizeof(marker), "%.*s/%s", (int)(slash - l->path), l->path, p->marker);
        else
                snprintf(marker, sizeof(marker), "%s", p->marker);
        if (access(marker, F_OK) < 0)
                return snprintf(buf, size, "not ready: waiting for its marker %s (policy done-file)", marker);
        r = ferry__marker_check(marker, l->path);
        if (r == -EBADMSG)
                return snprintf(buf, size,
                                "not handed out: it does not match its marker %s (size or SHA-256): its writer "
                                "did not finish, or it changed after the marker was written",
                                marker);
        if (p->marker_is_suffix && lstat(marker, &mst) == 0 && mst.st_size == 0)
                return snprintf(buf, size,
                                "ready once its marker %s, which is empty and so checks nothing, has stayed "
                                "empty for %.3gs with nobody writing it",
                                marker, seconds(FERRY__EMPTY_MARKER_NS));
        return snprintf(buf, size, "ready: its marker %s is there%s", marker, r == 0 ? " and matches it" : "");
}

/* ---- the table ------------------------------------------------------------- */

static const struct policy_def policies[] = {
        {"auto", FERRY__POLICY_AUTO, ARG_OPTIONAL, parse_auto,
         FERRY__NEED_CREATE | FERRY__NEED_MODIFY | FERRY__NEED_CLOSE_WRITE, describe_auto, explain_auto,
         ferry__ready_change_auto},
        {"close", FERRY__POLICY_CLOSE, ARG_OPTIONAL, parse_close, FERRY__NEED_CREATE | FERRY__NEED_CLOSE_WRITE,
         describe_close, explain_close, ferry__ready_change_close},
        {"rename", FERRY__POLICY_RENAME, ARG_NONE, parse_rename, FERRY__NEED_CREATE | FERRY__NEED_CLOSE_WRITE,
         describe_rename, explain_rename, ferry__ready_change_rename},
        {"settle", FERRY__POLICY_SETTLE, ARG_REQUIRED, parse_settle,
         FERRY__NEED_CREATE | FERRY__NEED_MODIFY | FERRY__NEED_ATTRIB | FERRY__NEED_CLOSE_WRITE, describe_settle,
         explain_settle, ferry__ready_change_settle},
        {"done-file", FERRY__POLICY_DONE_FILE, ARG_OPTIONAL, parse_done_file,
         FERRY__NEED_CREATE | FERRY__NEED_CLOSE_WRITE, describe_done_file, explain_done_file,
         ferry__ready_change_done_file},
};

static const struct policy_def *def_of(enum ferry__policy_kind kind)
{
        for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
                if (policies[i].kind == kind)
                        return &policies[i];
        return NULL;
}

int ferry__policy_parse(const char *text, struct ferry__policy *ret_policy)
{
        const char *eq = strchr(text, '=');
        size_t name_len = eq ? (size_t)(eq - text) : strlen(text);
        const char *value = eq ? eq + 1 : NULL;

        for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
                const struct policy_def *d = &policies[i];
                struct ferry__policy p = {.kind = d->kind, .guard_ns = DEFAULT_GUARD_NS};
                int r;

                if (strlen(d->name) != name_len || strncmp(text, d->name, name_len) != 0)
                        continue;
                if ((value && d->argument == ARG_NONE) || (!value && d->argument == ARG_REQUIRED))
                        return -EINVAL;
                r = d->parse(value, &p);
                if (r < 0)
                        return r;
                *ret_policy = p;
                return 0;
        }
        return -EINVAL;
}

unsigned ferry__policy_needs(const struct ferry__policy *p)
{
        const struct policy_def *d = def_of(p->kind);

        return d ? d->needs | FERRY__NEED_CLOSE_AHEAD : 0;
}

void ferry__ready_change(struct ferry_watch *w, struct ferry__file *f, enum ferry__change change)
{
        const struct policy_def *d = def_of(w->policy.kind);

        if (d)
                d->change(w, f, change);
}

int ferry_watch_describe_ready(struct ferry_watch *w, char *buf, size_t size)
{
        const struct policy_def *d;
        int n;

        if (!w || !buf || size == 0)
                return -EINVAL;
        d = def_of(w->policy.kind);
        n = d ? d->describe(&w->policy, buf, size) : snprintf(buf, size, "none: raw events only");
        return n < 0 ? -EIO : 0;
}

int ferry__policy_explain(const struct ferry__policy *p, const char *path, const struct stat *st,
                          int64_t poll_interval_ns, char *buf, size_t size)
{
        const struct policy_def *d = def_of(p->kind);
        struct timespec now;
        struct look l = {p, path, st, 0, poll_interval_ns};
        int n;

        if (!d || size == 0)
                return -EINVAL;
        clock_gettime(CLOCK_REALTIME, &now);
        l.age_ns = ((int64_t)now.tv_sec - st->st_mtim.tv_sec) * FERRY__NSEC_PER_SEC +
                   (now.tv_nsec - st->st_mtim.tv_nsec);
        n = d->explain(&l, buf, size);
        return n < 0 ? -EIO : 0;
}
