/* inspect.c: a rule's folder as it is, for ferry status and ferry explain.
 *
 * Everything here is read from the folders and the record, not asked of a
 * running ferry: it works the same whether workers run, died or never ran,
 * and on any machine that shares the folder.
 */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *join(const char *a, const char *b)
{
        char *s;

        return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

static char *outcome_folder(const struct ferry_rule *rule, bool failed)
{
        if (failed)
                return rule->failed_dir ? strdup(rule->failed_dir) : join(rule->dir, ".ferry/failed");
        return rule->done_dir ? strdup(rule->done_dir) : join(rule->dir, ".ferry/done");
}

/* Whether the rule takes a file (relative: its path below the rule's folder),
 * judged by a watcher set up as ferry run sets up its own: they cannot differ. */
static bool rule_wants(struct ferry_watch *w, const char *relative, const char **ret_why)
{
        switch (ferry__name_verdict(w, relative)) {
        case FERRY__VERDICT_TEMP:
                *ret_why = "a temporary or hidden name (.*, *.tmp, *.part, *.swp, *.crdownload, *~): never taken; "
                           "the writer renames it to its final name when done";
                return false;
        case FERRY__VERDICT_MARKER:
                *ret_why = "a done-marker: it says its file is complete, and is never handed out itself";
                return false;
        case FERRY__VERDICT_NO_MATCH: *ret_why = "its name matches none of the rule's match globs"; return false;
        case FERRY__VERDICT_EXCLUDED:
                *ret_why = "an exclude glob of the rule matches it (or it is the rule's require-file)";
                return false;
        case FERRY__VERDICT_WANTED: break;
        }
        return true;
}

/* Counts the files the rule would take in folder (and below it when recursive). */
static uint64_t count_queued(const struct ferry_rule *rule, struct ferry_watch *w, const char *folder,
                             const char *relative_dir)
{
        DIR *listing = opendir(folder);
        struct dirent *de;
        uint64_t count = 0;

        if (!listing)
                return 0;
        while ((de = readdir(listing))) {
                char *path, *relative;
                const char *why;
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                path = join(folder, de->d_name);
                relative = *relative_dir ? join(relative_dir, de->d_name) : strdup(de->d_name);
                if (path && relative && lstat(path, &st) == 0) {
                        if (S_ISDIR(st.st_mode)) {
                                if (rule->recursive && !ferry__is_temp_name(de->d_name, strlen(de->d_name)))
                                        count += count_queued(rule, w, path, relative);
                        } else if ((S_ISREG(st.st_mode) || (S_ISLNK(st.st_mode) && rule->follow_symlinks)) &&
                                   rule_wants(w, relative, &why)) {
                                count++;
                        }
                }
                free(path);
                free(relative);
        }
        closedir(listing);
        return count;
}

void ferry__note_field(const char *text, const char *key, char *value, size_t size)
{
        size_t len = strlen(key);

        value[0] = '\0';
        for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (strncmp(line, key, len) == 0 && line[len] == ':' && line[len + 1] == ' ') {
                        snprintf(value, size, "%.*s", (int)strcspn(line + len + 2, "\n"), line + len + 2);
                        return;
                }
}

static bool read_note(const char *path, char *text, size_t size)
{
        /* Only a regular file, never through a link: a note is read as root too. */
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        ssize_t n;

        if (fd < 0)
                return false;
        n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, text, size - 1) : -1;
        close(fd);
        text[n > 0 ? n : 0] = '\0';
        return n > 0;
}

/* Counts the files of an outcome folder; reports each failure. */
static uint64_t count_outcomes(const char *folder, bool failed, ferry_failure_cb on_failure, void *userdata)
{
        DIR *listing = opendir(folder);
        struct dirent *de;
        uint64_t count = 0;
        size_t suffix = strlen(".ferry-error");

        if (!listing)
                return 0;
        while ((de = readdir(listing))) {
                size_t len = strlen(de->d_name);
                char *path;
                struct stat st;

                /* Hidden names are ferry's own (notes of requeued files, temporary files). */
                if (de->d_name[0] == '.')
                        continue;
                if (len > suffix && strcmp(de->d_name + len - suffix, ".ferry-error") == 0)
                        continue;
                path = join(folder, de->d_name);
                if (!path || lstat(path, &st) < 0) {
                        free(path);
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        count += count_outcomes(path, failed, on_failure, userdata);
                } else {
                        count++;
                        if (failed && on_failure) {
                                char note_path[PATH_MAX * 2], text[8192], reason[512], at[32];
                                struct ferry_failure_info info = {.path = path, .reason = "no note"};

                                snprintf(note_path, sizeof(note_path), "%s.ferry-error", path);
                                if (read_note(note_path, text, sizeof(text))) {
                                        ferry__note_field(text, "reason", reason, sizeof(reason));
                                        ferry__note_field(text, "failed-at", at, sizeof(at));
                                        info.reason = reason;
                                        info.when = atoll(at);
                                }
                                on_failure(userdata, &info);
                        }
                }
                free(path);
        }
        closedir(listing);
        return count;
}

struct claim_count {
        struct ferry_rule_status *status;
        ferry_claim_cb on_claim;
        void *userdata;
};

static void count_claim(void *userdata, const struct ferry__claim_info *claim)
{
        struct claim_count *cc = userdata;
        struct ferry_claim_info info = {claim->path,  claim->worker,       claim->pid,
                                        claim->since, claim->worker_alive, claim->handled};

        if (!claim->worker_alive)
                cc->status->orphaned++;
        else if (claim->pid)
                cc->status->in_flight++;
        else
                cc->status->waiting++;
        if (cc->on_claim)
                cc->on_claim(cc->userdata, &info);
}

static void describe_backend(const struct ferry_rule *rule, char *buf, size_t size)
{
        char fs[64];
        bool remote = ferry__fs_is_remote(rule->dir, fs, sizeof(fs));

        (void)ferry__describe_watching(rule->backend ? rule->backend : "auto", remote, fs, rule->poll_interval_ns, buf,
                                       size);
}

int ferry_rule_status(struct ferry_rule *rule, struct ferry_rule_status *ret_status, ferry_claim_cb on_claim,
                      ferry_failure_cb on_failure, void *userdata)
{
        struct ferry_rule_status st = {0};
        struct claim_count cc = {&st, on_claim, userdata};
        struct stat dir_st;

        if (!rule || !ret_status)
                return -EINVAL;
        if (stat(rule->dir, &dir_st) < 0)
                return -errno;
        describe_backend(rule, st.backend, sizeof(st.backend));
        {
                struct ferry_watch *w;
                int e = ferry__rule_watch_new(rule, 0, &w);

                if (e < 0)
                        return e;
                st.queued = count_queued(rule, w, rule->dir, "");
                ferry_watch_free(w);
        }
        if (rule->on_success == FERRY__ON_SUCCESS_KEEP) {
                struct ferry__store *store;
                uint64_t done = 0;

                /* Kept files stay in the folder: those handled in their current version are not queued. */
                if (ferry__store_open_readonly(rule->dir, &store) == 0) {
                        (void)ferry__store_count(store, "done", &done);
                        (void)ferry__store_count(store, "failed", &st.failed);
                        ferry__store_close(store);
                }
                st.done = done;
                st.queued = st.queued > st.done + st.failed ? st.queued - st.done - st.failed : 0;
        } else {
                char *done = outcome_folder(rule, false);

                if (done && rule->on_success == FERRY__ON_SUCCESS_DONE)
                        st.done = count_outcomes(done, false, NULL, NULL);
                free(done);
                (void)ferry__claims_list(rule->dir, rule->name, count_claim, &cc);
        }
        char *failed = outcome_folder(rule, true);

        if (failed)
                st.failed += count_outcomes(failed, true, on_failure, userdata);
        free(failed);
        *ret_status = st;
        return 0;
}

/* ---- explain --------------------------------------------------------------- */

struct out {
        char *buf;
        size_t size, len;
};

static void say(struct out *o, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void say(struct out *o, const char *format, ...)
{
        va_list ap;
        int n;

        if (o->len >= o->size)
                return;
        va_start(ap, format);
        n = vsnprintf(o->buf + o->len, o->size - o->len, format, ap);
        va_end(ap);
        if (n > 0)
                o->len = o->len + (size_t)n < o->size ? o->len + (size_t)n : o->size - 1;
}

static void say_time(struct out *o, const char *what, int64_t unix_seconds)
{
        char text[64];
        time_t t = (time_t)unix_seconds;
        struct tm tm;

        if (localtime_r(&t, &tm) && strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &tm))
                say(o, "%s %s", what, text);
}

struct find_claim {
        const char *path;
        struct out *out;
        bool found;
};

static void find_claim(void *userdata, const struct ferry__claim_info *claim)
{
        struct find_claim *fc = userdata;

        if (strcmp(claim->path, fc->path) != 0)
                return;
        fc->found = true;
        say_time(fc->out, "claimed by worker", claim->since / FERRY__NSEC_PER_SEC);
        say(fc->out, " (%s): ", claim->worker);
        if (claim->handled)
                say(fc->out,
                    "handled already; its outcome folder refused it so far, and it is moved there once "
                    "it takes it (by %s)\n",
                    claim->worker_alive ? "that worker"
                                        : "the worker that takes the claim over, without running "
                                          "the handler again");
        else if (!claim->worker_alive)
                say(fc->out, "that worker died; the next worker takes the claim over and runs it again\n");
        else if (claim->pid)
                say(fc->out, "its handler runs, pid %d\n", claim->pid);
        else
                say(fc->out, "no handler runs now: it waits for a retry\n");
}

/* Its place in an outcome folder, when it has one there. */
/* With a done-layout: the latest arrival of relative in the dated folders
 * depth levels beneath base, into *path (replaced) and *st. */
static void find_dated(const char *base, int depth, const char *relative, char **path, struct stat *st)
{
        DIR *listing = opendir(base);
        struct dirent *de;

        if (!listing)
                return;
        while ((de = readdir(listing))) {
                char *sub, *candidate;
                struct stat cst;

                if (de->d_name[0] == '.' || !(sub = join(base, de->d_name)))
                        continue;
                if (depth > 1) {
                        find_dated(sub, depth - 1, relative, path, st);
                } else if ((candidate = join(sub, relative))) {
                        if (lstat(candidate, &cst) == 0 && (!*path || cst.st_ctim.tv_sec > st->st_ctim.tv_sec)) {
                                free(*path);
                                *path = candidate;
                                *st = cst;
                                candidate = NULL;
                        }
                        free(candidate);
                }
                free(sub);
        }
        closedir(listing);
}

static bool explain_outcome(const struct ferry_rule *rule, const char *relative, struct out *o)
{
        for (int failed = 0; failed <= 1; failed++) {
                char *folder = outcome_folder(rule, failed), *path = folder ? join(folder, relative) : NULL;
                struct stat st;

                if (path && !failed && rule->done_layout && lstat(path, &st) < 0) {
                        int depth = 1;

                        for (const char *c = rule->done_layout; *c; c++)
                                depth += *c == '/';
                        free(path);
                        path = NULL;
                        find_dated(folder, depth, relative, &path, &st);
                }
                if (path && lstat(path, &st) == 0) {
                        char note_path[PATH_MAX * 2], text[8192], value[512];

                        if (!failed) {
                                say_time(o, "handled:", st.st_ctim.tv_sec); /* when it arrived there */
                                say(o,
                                    "; it is in the done folder as %s (a later file of the same name gets .1, "
                                    ".2, ...)\n",
                                    path);
                        } else {
                                say(o, "failed for good: it is in the failed folder as %s\n", path);
                                snprintf(note_path, sizeof(note_path), "%s.ferry-error", path);
                                if (read_note(note_path, text, sizeof(text))) {
                                        ferry__note_field(text, "reason", value, sizeof(value));
                                        say(o, "  reason: %s\n", value);
                                        ferry__note_field(text, "attempts", value, sizeof(value));
                                        say(o, "  attempts: %s\n", value);
                                        say(o, "  the whole note, with the last lines of stderr: %s\n", note_path);
                                }
                        }
                        free(path);
                        free(folder);
                        return true;
                }
                free(path);
                free(folder);
        }
        return false;
}

/* The ready policy's view of a file that is in the folder: the watch
 * engine's own judgement (ferry__policy_explain), on the folder as the rule
 * would watch it (polled or not). */
static void explain_ready(const struct ferry_rule *rule, const char *path, const struct stat *st, struct out *o)
{
        char text[PATH_MAX * 3], fs[64];
        const char *backend = rule->backend ? rule->backend : "auto";
        bool polled = ferry__backend_polls(backend, ferry__fs_is_remote(rule->dir, fs, sizeof(fs)));

        if (ferry__policy_explain(&rule->policy, path, st, polled ? rule->poll_interval_ns : 0, text, sizeof(text)) ==
            0)
                say(o, "%s\n", text);
}

/* dedup = sha256: whether the file's content, as it is now, was handled
 * within the window, in any host's record (dedup.c): then run sends it to
 * done as a duplicate without its handler. */
static void explain_duplicate(const struct ferry_rule *rule, const char *path, struct out *o)
{
        uint8_t digest[FERRY__SHA256_SIZE];
        struct ferry__dedup_hit hit;
        struct ferry__dedup *d = NULL;
        uint64_t size;
        int r = ferry__sha256_file(path, digest, &size);

        if (r < 0) {
                say(o, "dedup: cannot read its content to compare it: %s\n", strerror(-r));
                return;
        }
        r = ferry__dedup_open_readonly(rule->dir, &d);
        if (r == 0)
                r = ferry__dedup_find(d, rule->name, digest, ferry__realtime() - rule->dedup_window_ns, &hit, NULL, 0);
        ferry__dedup_close(d);
        if (r > 0) {
                say(o, "dedup: its content as it is now was handled as %s, ", hit.name);
                say_time(o, "at", hit.at / FERRY__NSEC_PER_SEC);
                say(o, ": it goes to done as a duplicate of that file, its handler not run\n");
        } else {
                say(o, "dedup: its content as it is now was not handled within the dedup window: its handler runs\n");
        }
}

int ferry_rule_explain_path(struct ferry_rule *rule, const char *path, char *buf, size_t size)
{
        char real_dir[PATH_MAX], real_parent[PATH_MAX * 2], *copy, *slash, *relative;
        struct out o = {buf, size, 0};
        const char *name, *why;
        struct stat st;
        size_t dir_len;

        if (!rule || !path || !buf || size == 0)
                return -EINVAL;
        buf[0] = '\0';
        if (!realpath(rule->dir, real_dir))
                return -errno;
        /* The file itself may be gone (claimed, done): resolve its folder. */
        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        slash = strrchr(copy, '/');
        name = slash ? slash + 1 : copy;
        if (slash)
                *slash = '\0';
        if (!realpath(slash ? (*copy ? copy : "/") : ".", real_parent)) {
                say(&o, "%s: its folder does not exist\n", path);
                free(copy);
                return 0;
        }
        dir_len = strlen(real_dir);
        if (strncmp(real_parent, real_dir, dir_len) != 0 || (real_parent[dir_len] && real_parent[dir_len] != '/')) {
                say(&o, "not handled by rule %s: it is not in %s\n", rule->name, rule->dir);
                free(copy);
                return 0;
        }
        relative = real_parent[dir_len] ? join(real_parent + dir_len + 1, name) : strdup(name);
        if (!relative) {
                free(copy);
                return -ENOMEM;
        }
        if (real_parent[dir_len] && !rule->recursive) {
                say(&o, "not handled by rule %s: it is in a subfolder, and the rule is not recursive\n", rule->name);
                goto out;
        }
        for (char *part = relative; strchr(part, '/'); part = strchr(part, '/') + 1)
                if (ferry__is_temp_name(part, strcspn(part, "/"))) {
                        say(&o, "not handled by rule %s: it is in a hidden or temporary folder, never watched\n",
                            rule->name);
                        goto out;
                }
        {
                struct ferry_watch *w;
                bool wanted;

                int e = ferry__rule_watch_new(rule, 0, &w);

                if (e < 0) {
                        free(relative);
                        free(copy);
                        return e;
                }
                wanted = rule_wants(w, relative, &why);
                ferry_watch_free(w);
                if (!wanted) {
                        say(&o, "not handled by rule %s: %s\n", rule->name, why);
                        goto out;
                }
        }
        say(&o, "rule %s (%s) takes this name\n", rule->name, rule->dir);
        /* Claimed, done or failed: it left the folder. */
        {
                char *full = join(rule->dir, relative);
                struct find_claim fc = {full, &o, false};

                if (full)
                        (void)ferry__claims_list(rule->dir, rule->name, find_claim, &fc);
                free(full);
                if (fc.found)
                        goto out;
        }
        if (lstat(path, &st) < 0) {
                if (!explain_outcome(rule, relative, &o))
                        say(&o, "it is not in the folder, not claimed, not in the done or failed folder\n");
                goto out;
        }
        if (S_ISLNK(st.st_mode) && !rule->follow_symlinks) {
                say(&o, "skipped: a symlink (a rule that takes symlinks hands them to the handler)\n");
                goto out;
        }
        if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
                say(&o, "skipped: not a regular file\n");
                goto out;
        }
        if (rule->on_success == FERRY__ON_SUCCESS_KEEP) {
                struct ferry__store *store;
                struct ferry__record rec;

                if (ferry__store_open_readonly(rule->dir, &store) == 0) {
                        struct ferry__version v;

                        if (ferry__store_get(store, relative, &rec) == 1 && ferry__stat_version(path, &v, NULL) == 0) {
                                bool same = v.ino == rec.version.ino && v.size == rec.version.size &&
                                            v.mtime_ns == rec.version.mtime_ns;

                                say_time(&o,
                                         same ? "handled in this version:" : "handled in an earlier version:", rec.at);
                                say(&o, " (%s%s%s)%s\n", rec.outcome, rec.reason[0] ? ": " : "", rec.reason,
                                    same ? "" : "; it changed since, and is handled again");
                                ferry__store_close(store);
                                if (same)
                                        goto out;
                        } else {
                                ferry__store_close(store);
                        }
                }
        }
        explain_ready(rule, path, &st, &o);
        if (rule->dedup && S_ISREG(st.st_mode))
                explain_duplicate(rule, path, &o);
out:
        free(relative);
        free(copy);
        return 0;
}
