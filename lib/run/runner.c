/* runner.c: the daemon behind `ferry run`: ready files become claims, claims
 * become handler runs, runs end in the done or failed folder.
 *
 * One loop, one wait point: an epoll set holds each rule's watcher fd, each
 * running handler's pidfd and stderr pipe, and a timerfd armed for the next
 * deadline (timeouts, kill-after, retries, heartbeats, recovery).
 *
 * A ready file is claimed only when a handler slot is free, so that workers
 * sharing a folder share its files instead of one hoarding a burst. A job
 * (one handler run and its outcome) is job.c's.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

const double FERRY_DURATION_BOUNDS[FERRY_DURATION_BUCKETS] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1e300};

/* ---- logging ----------------------------------------------------------------- */

/* Warnings, and the watcher's errors, are what anyone who can write into a
 * folder can make ferry say (a link, a fifo, a name swapped in a loop, a
 * hundred thousand folders): at most WARNINGS_PER_SECOND are logged in a
 * second; the rest are counted, and said in one line when that second ends.
 * Outcomes (claimed, done, failed) and the runner's errors are always
 * logged: each says what became of one file. */
#define WARNINGS_PER_SECOND 20
/* How often each rule's folder is checked (there, the same one); a lost one
 * is looked for after a second, then after twice as long each time, up to: */
#define FOLDER_CHECK_NS FERRY__NSEC_PER_SEC
#define FOLDER_RETRY_MAX_NS (30 * FERRY__NSEC_PER_SEC)

static bool rate_allows(struct ferry_runner *r, bool limited)
{
        int64_t now = ferry__now();

        if (now - r->warnings_since >= FERRY__NSEC_PER_SEC) {
                if (r->warnings_suppressed) {
                        char text[96];

                        snprintf(text, sizeof(text),
                                 "suppressed %llu similar message%s (more than %d warnings a second)",
                                 r->warnings_suppressed, r->warnings_suppressed == 1 ? "" : "s", WARNINGS_PER_SECOND);
                        r->warnings_suppressed = 0;
                        r->log(r->log_data, &(struct ferry_log_record){.kind = FERRY_LOG_WARNING,
                                                                       .duration_ns = -1,
                                                                       .size = -1,
                                                                       .message = text});
                }
                r->warnings_since = now;
                r->warnings_logged = 0;
        }
        if (!limited)
                return true;
        if (r->warnings_logged < WARNINGS_PER_SECOND) {
                r->warnings_logged++;
                return true;
        }
        r->warnings_suppressed++;
        return false;
}

static void vlog(struct ferry_runner *r, struct ferry_log_record *rec, const char *format, va_list ap)
{
        char message[1024];
        bool limited;

        if (!r->log)
                return;
        limited = rec->kind == FERRY_LOG_WARNING || r->limit_next;
        r->limit_next = false;
        if (!rate_allows(r, limited))
                return;
        vsnprintf(message, sizeof(message), format, ap);
        rec->message = message;
        if (rec->path && !rec->path_len)
                rec->path_len = strlen(rec->path);
        r->log(r->log_data, rec);
}

void ferry__runner_log(struct ferry_runner *r, struct ferry_log_record *rec, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        vlog(r, rec, format, ap);
        va_end(ap);
}

void ferry__runner_count(struct ferry_runner *r, enum ferry_log_kind outcome)
{
        switch (outcome) {
        case FERRY_LOG_CLAIMED: r->stats.claimed++; break;
        case FERRY_LOG_DONE: r->stats.done++; break;
        case FERRY_LOG_FAILED: r->stats.failed++; break;
        case FERRY_LOG_RETRY: r->stats.retried++; break;
        case FERRY_LOG_RETURNED: r->stats.returned++; break;
        case FERRY_LOG_ERROR: r->stats.errors++; break;
        default: break;
        }
}

struct ferry_log_record ferry__claim_record(enum ferry_log_kind kind, const char *rule, const struct ferry__claim *c)
{
        return (struct ferry_log_record){.kind = kind,
                                         .rule = rule,
                                         .path = c->original_path,
                                         .duration_ns = -1,
                                         .size = c->type ? c->version.size : -1,
                                         .sha256 = c->hashed ? c->sha256_hex : NULL};
}

/* The record's line in its rule's audit trail, for what became of a file. */
static void audit(struct ferry_runner *r, const struct ferry_log_record *rec, const char *message)
{
        static const char *const events[] = {
                [FERRY_LOG_CLAIMED] = "claimed", [FERRY_LOG_STARTED] = "started", [FERRY_LOG_DONE] = "done",
                [FERRY_LOG_RETRY] = "retried",   [FERRY_LOG_FAILED] = "failed",   [FERRY_LOG_RETURNED] = "returned",
        };
        struct rule_state *rs = r->states;
        size_t dir_len, len;

        if (!rec->rule || !rec->path || (size_t)rec->kind >= sizeof(events) / sizeof(events[0]) || !events[rec->kind])
                return;
        while (rs && rs->rule->name != rec->rule && strcmp(rs->rule->name, rec->rule) != 0)
                rs = rs->next;
        if (!rs || rs->audit.dir_fd < 0)
                return;
        dir_len = strlen(rs->rule->dir);
        len = rec->path_len ? rec->path_len : strlen(rec->path);
        if (len <= dir_len + 1 || strncmp(rec->path, rs->rule->dir, dir_len) != 0 || rec->path[dir_len] != '/')
                return;
        ferry__audit_add(&rs->audit, rec->duplicate_of ? "duplicate" : events[rec->kind], rs->rule->name,
                         rec->path + dir_len + 1, len - dir_len - 1, rec, message, NULL);
}

void ferry__runner_record(struct ferry_runner *r, struct ferry_log_record *rec, const char *format, ...)
{
        char message[1024];
        va_list ap;

        ferry__runner_count(r, rec->kind);
        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);
        ferry__runner_log(r, rec, "%s", message);
        audit(r, rec, message);
}

/* ---- set-up ------------------------------------------------------------------ */

int ferry_runner_new(struct ferry_runner **ret_runner)
{
        struct ferry_runner *r;
        struct epoll_event ev = {.events = EPOLLIN};

        if (!ret_runner)
                return -EINVAL;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->keeper.fd = -1;
        r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        r->timer_source = (struct source){SOURCE_TIMER, r};
        ev.data.ptr = &r->timer_source;
        if (r->epoll_fd < 0 || r->timer_fd < 0 || epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, r->timer_fd, &ev) < 0) {
                int e = -errno;

                ferry_runner_free(r);
                return e;
        }
        *ret_runner = r;
        return 0;
}

int ferry_runner_add_rule(struct ferry_runner *r, struct ferry_rule *rule)
{
        struct ferry_rule **tail;

        if (!r || !rule || r->started) {
                ferry_rule_free(rule);
                return -EINVAL;
        }
        for (tail = &r->rules; *tail; tail = &(*tail)->next)
                if (strcmp((*tail)->name, rule->name) == 0) {
                        ferry_rule_free(rule);
                        return -EEXIST;
                }
        rule->next = NULL;
        *tail = rule;
        return 0;
}

void ferry_runner_set_log(struct ferry_runner *r, ferry_log_cb callback, void *userdata)
{
        if (!r)
                return;
        r->log = callback;
        r->log_data = userdata;
}

/* The process's umask, read without changing it (umask(2) would, for a moment). */
static mode_t read_umask(void)
{
        char line[128];
        unsigned mask = 022;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return 022;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Umask: %o", &mask) == 1)
                        break;
        fclose(f);
        return (mode_t)mask;
}

int ferry__runner_epoll_add(struct ferry_runner *r, int fd, struct source *source)
{
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = source};

        return epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void ferry__runner_epoll_del(struct ferry_runner *r, int fd)
{
        if (fd >= 0)
                (void)epoll_ctl(r->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

/* What was claimed is not what may be handed out (a folder, a fifo, a link
 * swapped in after the file was seen): never to the handler; to the failed
 * folder, where it is visible and no longer in the way. Returns true when
 * the claim was taken care of so. */
static bool claimed_irregular(struct rule_state *rs, struct ferry__claim *c)
{
        char *relative = NULL, *dest = NULL, why[96];
        int e;

        if (c->type == S_IFREG || (c->type == S_IFLNK && rs->rule->follow_symlinks) || c->in_place)
                return false;
        e = ferry__job_claim_finish(rs, c, &rs->failed, &relative);
        snprintf(why, sizeof(why), "not a regular file (%s, put there after the file was seen)",
                 c->type == S_IFLNK   ? "a symbolic link"
                 : c->type == S_IFDIR ? "a folder"
                                      : "a special file");
        if (e < 0) {
                RECORD_CLAIM(rs->runner, FERRY_LOG_ERROR, rs->rule->name, c,
                             "not a regular file (it was replaced after it was seen); cannot move it to %s: %s; it "
                             "stays in %s",
                             rs->failed.path, strerror(-e), c->claimed_path);
        } else {
                RECORD_CLAIM(rs->runner, FERRY_LOG_FAILED, rs->rule->name, c, "%s: not handled, moved to %s/%s", why,
                             rs->failed.path, relative ? relative : "?");
                if (relative && asprintf(&dest, "%s/%s", rs->failed.path, relative) < 0)
                        dest = NULL;
                ferry__hook_queue(rs, true, c->original_path, dest, why);
        }
        free(dest);
        free(relative);
        ferry__claim_free(c);
        return true;
}

static void adopt(void *userdata, struct ferry__claim *claim)
{
        struct rule_state *rs = userdata;
        struct ferry__claim **claims;
        struct job *job;
        char *where = NULL;

        /* Its worker died half-way through a move: the file is handled (or
         * queued) under its other name already, and is not handled again. */
        if (ferry__claim_moved_already(&rs->wa, claim, &rs->done, &rs->failed, &where) > 0) {
                LOG(rs->runner, FERRY_LOG_INFO, rs->rule->name, claim->original_path,
                    "recovered from a worker that died half-way through moving it: it is in %s already, "
                    "not handled again",
                    where);
                free(where);
                ferry__claim_free(claim);
                return;
        }
        if (claimed_irregular(rs, claim))
                return;
        if (claim->outcome) {
                ferry__job_adopt_handled(rs, claim);
                return;
        }
        claims = malloc(sizeof(*claims));
        if (!claims || !(job = ferry__job_new(rs, claims, 1))) {
                free(claims);
                RECORD(rs->runner, FERRY_LOG_ERROR, rs->rule->name, claim->claimed_path,
                       "out of memory: the recovered claim stays in the work area");
                ferry__claim_free(claim);
                return;
        }
        claims[0] = claim;
        RECORD_CLAIM(rs->runner, FERRY_LOG_CLAIMED, rs->rule->name, claim, "recovered from a worker that died");
}

/* A dead worker's claim folder that is not taken: said once. */
static void refused(void *userdata, const char *path, const char *why)
{
        struct rule_state *rs = userdata;

        LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, path, "left alone: %s is no claim to adopt (%s)", path, why);
}

/* Says, once at start, what in the system makes a folder others can write
 * less safe than it could be. */
static void warn_if_open(struct rule_state *rs)
{
        static const char *const sysctls[] = {"fs/protected_symlinks", "fs/protected_hardlinks"};
        struct stat st;

        if (fstat(rs->wa.root_fd, &st) == 0 && (st.st_mode & 022) && !(st.st_mode & S_ISVTX))
                LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, rs->rule->dir,
                    "%s is writable by %s without the sticky bit: they may rename %s/.ferry away while ferry is "
                    "stopped, and ferry then refuses to start; chmod +t %s",
                    rs->rule->dir, (st.st_mode & 002) ? "everyone" : "its group", rs->rule->dir, rs->rule->dir);
        if (!(st.st_mode & 022))
                return;
        for (size_t i = 0; i < sizeof(sysctls) / sizeof(*sysctls); i++) {
                char path[64], value = '1';
                int fd;

                snprintf(path, sizeof(path), "/proc/sys/%s", sysctls[i]);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd >= 0 && read(fd, &value, 1) == 1 && value == '0')
                        LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, rs->rule->dir,
                            "%s is 0: users who can write into %s can link files of others there; sysctl %s=1",
                            path + 10, rs->rule->dir, path + 10);
                if (fd >= 0)
                        close(fd);
        }
}

static void heartbeat(struct ferry_runner *r, int64_t now);
static void drain_watch(struct rule_state *rs);

/* A watcher's long scan of a folder behind a slow mount: renew the leases. */
static void watch_busy(void *data)
{
        heartbeat(data, ferry__now());
}

/* Says why the rule's folder cannot be taken up, in rs->why; returns e. */
static int attach_error(struct rule_state *rs, int e, const char *format, ...) __attribute__((format(printf, 3, 4)));
static int attach_error(struct rule_state *rs, int e, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        vsnprintf(rs->why, sizeof(rs->why), format, ap);
        va_end(ap);
        return e;
}

/* Lets go of what rule_attach() took: the watch, the work area, the outcome
 * folders, the locks. The rule itself stays. */
/* Stops watching the rule's folder; files found and not claimed yet need
 * nothing: they stay where they are. */
static void rule_unwatch(struct rule_state *rs)
{
        struct pending *p;

        ferry__pending_clear(&rs->pending);
        while ((p = rs->blocked)) {
                rs->blocked = p->next;
                free(p);
        }
        if (rs->watch) {
                if (rs->watch_source.owner)
                        ferry__runner_epoll_del(rs->runner, ferry_watch_fd(rs->watch));
                ferry_watch_free(rs->watch);
                rs->watch = NULL;
        }
        rs->watch_source.owner = NULL;
}

static void rule_release(struct rule_state *rs)
{
        ferry__unfinished_move(rs, true);
        ferry__late_notes_write(rs, true);
        rule_unwatch(rs);
        ferry__audit_close(&rs->audit);
        ferry__workarea_close(&rs->wa);
        ferry__store_close(rs->store);
        rs->store = NULL;
        ferry__dedup_close(rs->dedup);
        rs->dedup = NULL;
        if (rs->share_fd >= 0)
                close(rs->share_fd);
        rs->share_fd = -1;
        ferry__folder_close(&rs->done);
        ferry__folder_close(&rs->failed);
        rs->restored_seen = 0;
}

/* Is DIR there, as the folder it was? NULL, or why not (in buf). */
static const char *folder_gone(struct rule_state *rs, char *buf, size_t size)
{
        struct stat held, now;

        if (fstat(rs->wa.root_fd, &held) < 0)
                snprintf(buf, size, "cannot be read any more (%s)", strerror(errno));
        else if (held.st_nlink == 0)
                snprintf(buf, size, "was deleted");
        else if (stat(rs->rule->dir, &now) < 0)
                snprintf(buf, size, errno == ENOENT ? "was moved away or deleted" : "cannot be reached (%s)",
                         strerror(errno));
        else if (now.st_dev != held.st_dev || now.st_ino != held.st_ino)
                snprintf(buf, size,
                         "is another folder now (made again, moved, or a file system mounted or "
                         "unmounted there)");
        else if (rs->rule->require_file &&
                 faccessat(rs->wa.root_fd, rs->rule->require_file, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                snprintf(buf, size, "has no %s any more (require-file): not the folder meant, a share not mounted?",
                         rs->rule->require_file);
        else
                return NULL;
        return buf;
}

/* Takes up the rule's folder: its .ferry, outcome folders and locks, the
 * watch (files there now are ready candidates), the claims left from before.
 * On failure, rs->why says why; the caller releases what was taken. */
/* Looks for the rule's pause flag; says when it came or went. */
static void check_space(struct rule_state *rs);

static void check_paused(struct rule_state *rs)
{
        bool paused = ferry__paused(&rs->wa, rs->rule->name);

        rs->paused = paused || rs->space_low;
        if (paused == rs->flag_paused)
                return;
        rs->flag_paused = paused;
        if (paused)
                LOG(rs->runner, FERRY_LOG_INFO, rs->rule->name, rs->rule->dir,
                    "paused (%s/.ferry/%s.paused is there): no handler starts until the rule is resumed; the %u "
                    "running finish",
                    rs->rule->dir, rs->rule->name, rs->running);
        else
                LOG(rs->runner, FERRY_LOG_INFO, rs->rule->name, rs->rule->dir, "resumed");
}

static int rule_attach(struct rule_state *rs)
{
        struct ferry_runner *r = rs->runner;
        struct ferry_rule *rule = rs->rule;
        /* A folder that goes away (unmounted, moved) is taken up again by the runner. */
        unsigned flags = FERRY_WATCH_EXISTING | (rule->recursive ? FERRY_WATCH_RECURSIVE : 0);
        char description[512], backend[256];
        int e;

        rs->why[0] = '\0';
        if (rule->require_file) {
                /* Before .ferry is made: an empty mount point is not the folder meant. */
                int fd = open(rule->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                e = fd < 0 ? -errno : 0;
                if (fd >= 0 && faccessat(fd, rule->require_file, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                        e = -errno;
                if (fd >= 0)
                        close(fd);
                if (e == -ENOENT && fd >= 0)
                        return attach_error(rs, e,
                                            "%s has no %s (require-file): it is not the folder meant, e.g. a share "
                                            "not mounted; create %s/%s once the folder is the right one",
                                            rule->dir, rule->require_file, rule->dir, rule->require_file);
                if (e < 0)
                        return attach_error(rs, e, "cannot open %s: %s", rule->dir, strerror(-e));
        }
        /* ferry's own state first: DIR's .ferry and the outcome folders are
         * made or checked, and held open from now on. */
        e = ferry__workarea_home(&rs->wa, rule->dir);
        if (rule->policy.kind == FERRY__POLICY_DONE_FILE && rule->policy.marker_is_suffix)
                rs->wa.marker_suffix = rule->policy.marker;
        if (e == 0 && rule->on_success == FERRY__ON_SUCCESS_DONE)
                e = ferry__folder_open(&rs->wa, &rs->done, rule->done_dir, "done");
        rs->done.layout = rule->done_layout;
        if (e == 0)
                e = ferry__folder_open(&rs->wa, &rs->failed, rule->failed_dir, "failed");
        if (e == 0)
                rs->wa.leftovers = &rs->failed;
        if (e == 0 && rs->output_dir)
                e = ferry__open_admin_dir(&rs->wa.trust, rs->output_dir, 0, &rs->wa.output_fd);
        if (e < 0)
                return attach_error(rs, e, "%s", rs->wa.trust.why[0] ? rs->wa.trust.why : strerror(-e));
        warn_if_open(rs);
        if (rule->on_success == FERRY__ON_SUCCESS_KEEP) {
                e = ferry__store_open(rs->wa.ferry_fd, &rs->store);
                if (e < 0)
                        return attach_error(rs, e,
                                            e == -EBUSY ? "another ferry run works on %s: one that keeps files in "
                                                          "place must be alone there (%s/.ferry/keep.lock)"
                                                        : "cannot open the record of handled files in "
                                                          "%s/.ferry/state.db: %s",
                                            rule->dir, e == -EBUSY ? rule->dir : strerror(-e));
        } else {
                e = ferry__store_share(rs->wa.ferry_fd, &rs->share_fd);
                if (e < 0)
                        return attach_error(rs, e,
                                            e == -EBUSY ? "a ferry run keeps files in place in %s: a worker that "
                                                          "moves files cannot share the folder with it, each would "
                                                          "handle every file (%s/.ferry/keep.lock)"
                                                        : "cannot lock %s/.ferry/keep.lock: %s",
                                            rule->dir, e == -EBUSY ? rule->dir : strerror(-e));
        }
        if (!rule->audit_off && rs->audit.dir_fd < 0 && (e = ferry__audit_open(&rs->audit, &rs->wa)) < 0)
                LOG(r, FERRY_LOG_WARNING, rule->name, rule->dir, "no audit trail in %s/.ferry/audit: %s", rule->dir,
                    rs->wa.trust.why[0] ? rs->wa.trust.why : strerror(-e));
        if (rule->dedup && !rs->dedup) {
                char fs[64];

                e = ferry__dedup_open(&rs->wa, ferry__fs_is_remote(rule->dir, fs, sizeof(fs)), &rs->dedup);
                if (e < 0)
                        return attach_error(rs, e, "cannot open the record of contents handled in %s/.ferry/dedup: %s",
                                            rule->dir, rs->wa.trust.why[0] ? rs->wa.trust.why : strerror(-e));
        }
        e = ferry__rule_watch_new(rule, flags, &rs->watch);
        if (e < 0)
                return attach_error(rs, e, "%s", strerror(-e));
        ferry__watch_set_busy(rs->watch, watch_busy, r);
        ferry__watch_hold_roots(rs->watch);
        e = ferry_watch_add(rs->watch, rule->dir);
        if (e < 0) {
                (void)ferry_watch_explain(rs->watch, e, rule->dir, rs->why, sizeof(rs->why));
                return e;
        }
        if (!rs->down) /* at start; not when the folder is taken up again */
                r->stats.found_at_start += ferry__watch_found_at_start(rs->watch);
        if (rule->on_success != FERRY__ON_SUCCESS_KEEP) {
                /* After the start scan, which on a slow mount of a large
                 * folder can outlast the lease: the lease starts fresh. */
                e = ferry__workarea_open(&rs->wa, rule->name, rule->lease_ns);
                if (e < 0)
                        return attach_error(rs, e, "cannot create the work area in %s/.ferry: %s", rule->dir,
                                            rs->wa.trust.why[0] ? rs->wa.trust.why : strerror(-e));
                /* As many as are claimed at once: each claim then finds one. */
                (void)ferry__workarea_keep_folders(&rs->wa, (size_t)rule->jobs * (rule->batch + 1));
                e = ferry__recover_own(&rs->wa, adopt, rs);
                if (e > 0)
                        LOG(r, FERRY_LOG_INFO, rule->name, NULL, "took up %d claim%s left from before", e,
                            e == 1 ? "" : "s");
                e = ferry__recover(&rs->wa, adopt, refused, rs);
                if (e > 0)
                        LOG(r, FERRY_LOG_INFO, rule->name, NULL, "recovered %d claim%s of workers that died", e,
                            e == 1 ? "" : "s");
        }
        rs->watch_source = (struct source){SOURCE_WATCH, rs};
        e = ferry__runner_epoll_add(r, ferry_watch_fd(rs->watch), &rs->watch_source);
        if (e < 0) {
                rs->watch_source.owner = NULL;
                return attach_error(rs, e, "%s", strerror(-e));
        }
        (void)ferry_watch_describe_ready(rs->watch, description, sizeof(description));
        (void)ferry_watch_describe_root(rs->watch, rule->dir, backend, sizeof(backend));
        LOG(r, FERRY_LOG_INFO, rule->name, rule->dir, "watching %s%s with %s; %s; %u job%s at once", rule->dir,
            rule->recursive ? " and its subfolders" : "", backend, description, rule->jobs, rule->jobs == 1 ? "" : "s");
        check_space(rs);
        check_paused(rs);
        return 0;
}

static int rule_start(struct ferry_runner *r, struct ferry_rule *rule)
{
        struct rule_state *rs = calloc(1, sizeof(*rs));
        int e;

        if (!rs)
                return -ENOMEM;
        rs->runner = r;
        rs->rule = rule;
        ferry__pending_init(&rs->pending, rule);
        rs->wa = (struct ferry__workarea){.root_fd = -1, .ferry_fd = -1, .base_fd = -1, .work_fd = -1, .output_fd = -1};
        rs->audit = (struct ferry__audit){.dir_fd = -1, .fd = -1};
        rs->done.fd = rs->failed.fd = rs->share_fd = -1;
        rs->next = r->states;
        r->states = rs;
        e = ferry__rule_check(rule, !r->external);
        if (e < 0) {
                RECORD(r, FERRY_LOG_ERROR, rule->name, NULL, "%s", ferry_rule_explain(rule));
                return e;
        }
        if (!r->external) {
                e = ferry__env_build(rule, &rs->env, &rs->env_count, rs->why, sizeof(rs->why));
                if (e < 0) {
                        RECORD(r, FERRY_LOG_ERROR, rule->name, NULL, "%s", rs->why);
                        rs->why[0] = '\0';
                        return e;
                }
        }
        if (rule->output_dir && !(rs->output_dir = realpath(rule->output_dir, NULL)))
                rs->output_dir = strdup(rule->output_dir);
        if (rule->output_dir && !rs->output_dir)
                return -ENOMEM;
        e = rule_attach(rs);
        if (e < 0 && rs->why[0])
                RECORD(r, FERRY_LOG_ERROR, rule->name, rule->dir, "%s", rs->why);
        return e;
}

/* The rule's folder went away: said once; its watch is dropped and the
 * runner looks for the folder again (rule_retry), or stops when the rule
 * says so. Handlers running go on with the folder they have. */
static void rule_down(struct rule_state *rs, const char *why)
{
        struct ferry_runner *r = rs->runner;

        if (rs->down || r->stopping || r->folder_lost)
                return; /* said already, or stopping anyway */
        if (rs->rule->exit_when_lost) {
                RECORD(r, FERRY_LOG_ERROR, rs->rule->name, rs->rule->dir, "%s %s: stopping (on-folder-lost = exit)",
                       rs->rule->dir, why);
                r->folder_lost = true;
                return;
        }
        RECORD(r, FERRY_LOG_ERROR, rs->rule->name, rs->rule->dir,
               "%s %s: its files wait; it is looked for again, every second at first, and taken up when it is back",
               rs->rule->dir, why);
        snprintf(rs->why, sizeof(rs->why), "%s", why);
        rs->down = true;
        rule_unwatch(rs);
        rs->retry_ns = FERRY__NSEC_PER_SEC;
        rs->retry_at = ferry__now() + rs->retry_ns;
}

/* Tries to take a lost folder up again, once the handlers the rule ran with
 * the old one have ended; a new reason it cannot is said once. */
static void rule_retry(struct rule_state *rs, int64_t now)
{
        struct ferry_runner *r = rs->runner;
        char before[sizeof(rs->why)];

        for (struct job *job = r->jobs; job; job = job->next)
                if (job->rs == rs) {
                        rs->retry_at = now + FERRY__NSEC_PER_SEC;
                        return;
                }
        snprintf(before, sizeof(before), "%s", rs->why);
        rule_release(rs);
        if (rule_attach(rs) == 0) {
                rs->down = false;
                LOG(r, FERRY_LOG_INFO, rs->rule->name, rs->rule->dir, "%s is back: taken up again", rs->rule->dir);
                drain_watch(rs); /* what it found, and its timers armed: the loop waits on its fd */
                return;
        }
        rule_release(rs);
        if (rs->why[0] && strcmp(rs->why, before) != 0)
                RECORD(r, FERRY_LOG_ERROR, rs->rule->name, rs->rule->dir, "%s", rs->why);
        else
                snprintf(rs->why, sizeof(rs->why), "%s", before);
        rs->retry_ns = rs->retry_ns * 2 > FOLDER_RETRY_MAX_NS ? FOLDER_RETRY_MAX_NS : rs->retry_ns * 2;
        rs->retry_at = now + rs->retry_ns;
}

/* The free space of the file system of fd, below the rule's
 * pause-when-free-below (above it by a twentieth more when resuming, so that
 * it does not go back and forth): true, with what is free in free_text. */
static bool space_short(const struct ferry_rule *rule, int fd, bool resuming, char *free_text, size_t size)
{
        struct statvfs sv;
        double free_bytes, total, limit;

        if (fd < 0 || fstatvfs(fd, &sv) < 0 || !sv.f_blocks)
                return false;
        free_bytes = (double)sv.f_bavail * (double)sv.f_frsize;
        total = (double)sv.f_blocks * (double)sv.f_frsize;
        limit = rule->free_below_percent ? total * rule->free_below_percent / 100 : (double)rule->free_below_bytes;
        if (resuming)
                limit *= 1.05;
        snprintf(free_text, size, "%.0f MiB (%.1f%%)", free_bytes / 1048576, free_bytes * 100 / total);
        return free_bytes < limit;
}

/* pause-when-free-below: no handler starts while the done, failed or
 * output folder's file system is short of space (handlers write there, and
 * a file that cannot be moved out stays claimed); said once each way. */
static void check_space(struct rule_state *rs)
{
        const struct ferry_rule *rule = rs->rule;
        const struct {
                int fd;
                const char *path;
        } folders[] = {{rs->done.fd, rs->done.path},
                       {rs->failed.fd, rs->failed.path},
                       {rs->wa.output_fd, rs->output_dir}};
        const char *short_of = NULL;
        char free_text[64] = "";

        if (!rule->free_below_percent && !rule->free_below_bytes)
                return;
        for (size_t i = 0; i < sizeof(folders) / sizeof(folders[0]) && !short_of; i++)
                if (space_short(rule, folders[i].fd, rs->space_low, free_text, sizeof(free_text)))
                        short_of = folders[i].path;
        if (!short_of == !rs->space_low)
                return;
        rs->space_low = short_of != NULL;
        rs->paused = rs->flag_paused || rs->space_low;
        if (short_of)
                LOG(rs->runner, FERRY_LOG_WARNING, rule->name, short_of,
                    "paused: the file system of %s has %s free, below pause-when-free-below: no handler starts until "
                    "there is more; the %u running finish",
                    short_of, free_text, rs->running);
        else
                LOG(rs->runner, FERRY_LOG_INFO, rule->name, rule->dir,
                    "resumed: the file systems of its done, failed and output folders have room again");
}

/* Retention: what has been in the done and failed folders longer than the
 * rule keeps it goes, and the audit trail's old days, in a sweep at start
 * and then every tenth of the shortest retention (at most an hour apart),
 * said in one line. */
static void sweep(struct rule_state *rs, int64_t now)
{
        const struct ferry_rule *rule = rs->rule;
        struct ferry__purge_counts counts = {0};
        unsigned long long days = 0;
        int64_t shortest = INT64_MAX;
        int e = 0, f;

        if (now < rs->next_sweep ||
            (!rule->done_retention_ns && !rule->failed_retention_ns && !rule->audit_retention_ns))
                return;
        if (rule->audit_retention_ns) {
                e = ferry__audit_sweep(&rs->wa, &rs->audit, rule->audit_retention_ns, false, NULL, NULL, &days);
                shortest = rule->audit_retention_ns;
                if (days)
                        LOG(rs->runner, FERRY_LOG_INFO, rule->name, rule->dir,
                            "removed %llu day%s of the audit trail older than its retention", days,
                            days == 1 ? "" : "s");
        }
        if (rule->done_retention_ns && rs->done.fd >= 0) {
                f = ferry__sweep(rule, &rs->done, rule->done_layout, rule->done_retention_ns, false, NULL, NULL,
                                 &rs->audit, &counts);
                if (f < 0 && e == 0)
                        e = f;
                if (rule->done_retention_ns < shortest)
                        shortest = rule->done_retention_ns;
        }
        if (rule->failed_retention_ns) {
                f = ferry__sweep(rule, &rs->failed, NULL, rule->failed_retention_ns, false, NULL, NULL, &rs->audit,
                                 &counts);
                if (f < 0 && e == 0)
                        e = f;
                if (rule->failed_retention_ns < shortest)
                        shortest = rule->failed_retention_ns;
        }
        shortest /= 10;
        rs->next_sweep = now + (shortest < FERRY__NSEC_PER_SEC          ? FERRY__NSEC_PER_SEC
                                : shortest > 3600 * FERRY__NSEC_PER_SEC ? 3600 * FERRY__NSEC_PER_SEC
                                                                        : shortest);
        rs->runner->stats.purged += counts.files;
        if (counts.files || counts.folders)
                LOG(rs->runner, FERRY_LOG_INFO, rule->name, rule->dir,
                    "purged %llu file%s and %llu folder%s older than their retention from the done and failed folders",
                    counts.files, counts.files == 1 ? "" : "s", counts.folders, counts.folders == 1 ? "" : "s");
        if (e < 0)
                LOG(rs->runner, FERRY_LOG_WARNING, rule->name, rule->dir,
                    "the retention sweep could not remove everything that is due: %s; tried again at the next sweep",
                    strerror(-e));
}

/* Every rule's folder still there? Lost ones are looked for again. */
static void check_folders(struct ferry_runner *r, int64_t now)
{
        char why[256];

        if (r->stopping || now < r->next_folder_check)
                return;
        r->next_folder_check = now + FOLDER_CHECK_NS;
        for (struct rule_state *rs = r->states; rs; rs = rs->next) {
                const char *lost;

                if (rs->unfinished && !rs->down)
                        ferry__unfinished_move(rs, false);
                while (rs->blocked && !rs->down) {
                        struct pending *p = rs->blocked;

                        rs->blocked = p->next;
                        if (!ferry__pending_append(&rs->pending, p))
                                free(p); /* out of memory: found again by the next scan */
                }
                if (rs->late_notes && !rs->down)
                        ferry__late_notes_write(rs, false);
                if (!rs->down) {
                        sweep(rs, now);
                        ferry__judge_prune(rs, now);
                        check_space(rs);
                        check_paused(rs);
                }
                if (rs->down && now >= rs->retry_at)
                        rule_retry(rs, now);
                else if (!rs->down && rs->wa.root_fd >= 0 && (lost = folder_gone(rs, why, sizeof(why))))
                        rule_down(rs, lost);
                if (rs->down && rs->retry_at < r->next_folder_check)
                        r->next_folder_check = rs->retry_at;
        }
}

int ferry_runner_start(struct ferry_runner *r)
{
        int e;

        if (!r || r->started || !r->rules)
                return -EINVAL;
        r->started = true;
        if (!r->external) {
                /* Orphans of handlers (daemons they forked) come back to us to be reaped. */
                (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
                snprintf(r->children_path, sizeof(r->children_path), "/proc/self/task/%d/children", (int)getpid());
                e = ferry__keeper_start(&r->keeper);
                if (e < 0)
                        LOG(r, FERRY_LOG_WARNING, NULL, NULL,
                            "cannot start the keeper (%s): if ferry is killed, what handlers started may outlive "
                            "it",
                            strerror(-e));
        }
        r->umask = read_umask();
        r->random = (uint64_t)ferry__now() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15u;
        while (r->rules) {
                struct ferry_rule *rule = r->rules;

                r->rules = rule->next;
                e = rule_start(r, rule);
                if (e < 0)
                        return e;
        }
        r->next_heartbeat = r->next_recover = r->next_folder_check = ferry__now();
        return 0;
}

/* ---- the loop ---------------------------------------------------------------- */

/* Touches each work area's lease, every lease/3: other hosts' workers take
 * a work area whose lease is older than the lease for a dead worker's. */
static void heartbeat(struct ferry_runner *r, int64_t now)
{
        int64_t period = INT64_MAX;

        if (now < r->next_heartbeat)
                return;
        for (struct rule_state *rs = r->states; rs; rs = rs->next) {
                if (rs->wa.work_fd >= 0)
                        ferry__workarea_heartbeat(&rs->wa);
                if (rs->rule->lease_ns / 3 < period)
                        period = rs->rule->lease_ns / 3;
        }
        r->next_heartbeat = now + period;
}

static bool push_pending(struct rule_state *rs, const char *path, size_t len, int64_t size)
{
        struct pending *p = ferry__pending_new(&rs->pending, path, len, size);

        if (p && ferry__pending_append(&rs->pending, p))
                return true;
        free(p);
        return false;
}

/* Another worker won the race for the head of the queue (pending.c). */
static void skip_ahead(struct rule_state *rs)
{
        struct ferry_runner *r = rs->runner;

        /* xorshift64: spreading, not secrecy */
        r->random ^= r->random << 13;
        r->random ^= r->random >> 7;
        r->random ^= r->random << 17;
        ferry__pending_skip(&rs->pending, r->random);
}

static void drain_watch(struct rule_state *rs)
{
        struct ferry_runner *r = rs->runner;
        const struct ferry_event *ev;
        int e;

        while (rs->watch && (e = ferry_watch_next(rs->watch, &ev, 0)) == 1) {
                char message[1024];

                /* Listing a large polled folder on a slow mount takes a while,
                 * and a burst of events too: the lease must not age meanwhile. */
                heartbeat(r, ferry__now());

                switch (ev->type) {
                case FERRY_EVENT_READY:
                        r->stats.ready++;
                        if (!push_pending(rs, ev->path, ev->path_len, ev->size))
                                RECORD(r, FERRY_LOG_ERROR, rs->rule->name, ev->path,
                                       "out of memory: file left in place, handled after a restart");
                        break;
                case FERRY_EVENT_ERROR:
                        /* A folder not watched, a file refused by its marker: as many as
                         * anyone who can write in the folder likes, so rate-limited. */
                        (void)ferry_watch_explain(rs->watch, ev->error, ev->path, message, sizeof(message));
                        r->limit_next = true;
                        RECORD(r, FERRY_LOG_ERROR, rs->rule->name, ev->path, "%s", message);
                        break;
                case FERRY_EVENT_RESCAN:
                        r->stats.rescans++;
                        LOG(r, FERRY_LOG_WARNING, rs->rule->name, NULL,
                            "the kernel event queue overflowed; rescanned (raise fs.inotify.max_queued_events)");
                        break;
                case FERRY_EVENT_ROOT_GONE:
                        /* Drops the watch, and with it ev: the loop ends here. */
                        rule_down(rs, "went away (deleted, moved or unmounted)");
                        break;
                default: break;
                }
        }
        if (e < 0)
                RECORD(r, FERRY_LOG_ERROR, rs->rule->name, NULL, "cannot read events: %s", strerror(-e));
}

/* Only regular files are handed out; symlinks when the rule says so, and
 * then the handler gets the link (its target stays where it is). */
static bool claimable(struct rule_state *rs, const char *path)
{
        struct stat st;
        int e = ferry__lstat_beneath(&rs->wa, path, &st);

        if (e == -ELOOP) {
                LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, path,
                    "skipped: a folder on the way to it is a symbolic link now (never followed)");
                return false;
        }
        if (e == -EPERM) {
                LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, path,
                    "skipped: it is inside %s/.ferry, which someone who can write into %s renamed; ferry goes on "
                    "with it under that name: rename it back, and chmod +t %s",
                    rs->rule->dir, rs->rule->dir, rs->rule->dir);
                return false;
        }
        if (e < 0) {
                skip_ahead(rs); /* gone: another worker took it */
                return false;
        }
        if (S_ISREG(st.st_mode))
                return true;
        if (S_ISLNK(st.st_mode) && rs->rule->follow_symlinks)
                return true;
        LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, path, "skipped: %s",
            S_ISLNK(st.st_mode) ? "a symlink (a rule that takes symlinks hands them to the handler)"
                                : "not a regular file");
        return false;
}

/* on-success = keep: the file stays where it is; the record says whether this
 * version was handled, and a file being handled is not started twice. */
static int claim_in_place(struct rule_state *rs, const char *path, struct ferry__claim **ret_claim)
{
        struct ferry__claim *c;
        char *relative;
        int e = ferry__claim_in_place(&rs->wa, path, &c);

        if (e < 0)
                return e;
        for (struct job *job = rs->runner->jobs; job; job = job->next)
                for (size_t i = 0; job->rs == rs && i < job->count; i++)
                        if (strcmp(job->claims[i]->original_path, path) == 0) {
                                /* Busy: its new version comes back as a ready event later. */
                                ferry__claim_free(c);
                                return -EALREADY;
                        }
        relative = ferry__claim_relative(c);
        e = relative ? ferry__store_handled(rs->store, relative, &c->version) : -ENOMEM;
        free(relative);
        if (e != 0) {
                ferry__claim_free(c);
                return e > 0 ? -EALREADY : e;
        }
        *ret_claim = c;
        return 0;
}

/* size in words: "512 B", "3.2 MiB". */
static void size_text(uint64_t size, char *buf, size_t len)
{
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = (double)size;
        int u = 0;

        while (v >= 1024 && u < 4) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, len, "%llu B", (unsigned long long)size);
        else
                snprintf(buf, len, "%.1f %s", v, units[u]);
}

/* The limits a freshly claimed file breaks (min-size, max-size, max-age):
 * it goes to the failed folder with a note saying which, its handler never
 * run. True when it did (the claim is done with). */
static bool refused_by_limits(struct rule_state *rs, struct ferry__claim *c, const struct pending *p)
{
        const struct ferry_rule *rule = rs->rule;
        char why[256], have[32], limit[32];
        struct ferry__claim **one;
        struct job *job;

        if (c->in_place || !c->type)
                return false;
        if (rule->min_size && c->version.size < (int64_t)rule->min_size) {
                size_text((uint64_t)c->version.size, have, sizeof(have));
                size_text(rule->min_size, limit, sizeof(limit));
                snprintf(why, sizeof(why), "refused: %s is below min-size (%s)", have, limit);
        } else if (rule->max_size && c->version.size > (int64_t)rule->max_size) {
                size_text((uint64_t)c->version.size, have, sizeof(have));
                size_text(rule->max_size, limit, sizeof(limit));
                snprintf(why, sizeof(why), "refused: %s is above max-size (%s)", have, limit);
        } else if (rule->max_age_ns && p->found_at - c->version.mtime_ns > rule->max_age_ns) {
                (void)ferry__format_duration(p->found_at - c->version.mtime_ns, have, sizeof(have));
                (void)ferry__format_duration(rule->max_age_ns, limit, sizeof(limit));
                snprintf(why, sizeof(why), "refused: last written %s before it was found, more than max-age (%s)", have,
                         limit);
        } else {
                return false;
        }
        one = calloc(1, sizeof(*one));
        job = one ? ferry__job_new(rs, one, 1) : NULL;
        if (!job) {
                free(one);
                /* Out of memory: handled as any file instead of lost. */
                return false;
        }
        one[0] = c;
        ferry__job_refuse(job, why);
        return true;
}

/* Claims up to batch pending files and starts a handler for them. */
static void claim_and_start(struct rule_state *rs)
{
        struct ferry_runner *r = rs->runner;
        unsigned batch = rs->rule->batch;
        struct ferry__claim **claims = NULL;
        size_t count = 0;

        while (rs->pending.count && count < batch) {
                struct pending *p = ferry__pending_pop(&rs->pending);
                struct ferry__claim *c;
                int e;

                /* Files other workers took first cost a round trip each on a
                 * mount: a long run of them must not let the lease age. */
                heartbeat(r, ferry__now());

                if (!claims && !(claims = calloc(batch, sizeof(*claims)))) {
                        free(p);
                        return;
                }
                if (!claimable(rs, p->path)) {
                        free(p);
                        continue;
                }
                if (rs->store) {
                        e = claim_in_place(rs, p->path, &c);
                        if (e == -EALREADY) {
                                free(p);
                                continue;
                        }
                } else {
                        e = ferry__claim(&rs->wa, p->path, &c);
                }
                if (rs->wa.restored != rs->restored_seen) {
                        rs->restored_seen = rs->wa.restored;
                        LOG(r, FERRY_LOG_WARNING, rs->rule->name, rs->rule->dir,
                            "another worker took this worker for dead (its lease, %s/.ferry/work/%s/.lease, was "
                            "not touched within the rule's lease) and took over its claims; the work area is made "
                            "again. A longer lease avoids this on slow mounts",
                            rs->rule->dir, rs->wa.worker);
                }
                if (e == 0 && (claimed_irregular(rs, c) || refused_by_limits(rs, c, p))) {
                        ;
                } else if (e == 0) {
                        claims[count++] = c;
                        c->ready_at = p->found_at;
                        RECORD_CLAIM(r, FERRY_LOG_CLAIMED, rs->rule->name, c, "claimed");
                } else if (e == -ENOENT) {
                        skip_ahead(rs);
                } else if (e == -ELOOP) {
                        LOG(r, FERRY_LOG_WARNING, rs->rule->name, p->path,
                            "not claimed: a folder on the way to it became a symbolic link (never followed)");
                } else {
                        /* A full file system, a folder not writable for now, a
                         * work area that cannot be made again: the file stays
                         * where it is, and is tried again every second. */
                        if (!p->said && e == -ESTALE)
                                RECORD(r, FERRY_LOG_ERROR, rs->rule->name, p->path,
                                       "cannot claim %s: the work area %s/.ferry/work/%s is gone and cannot be made "
                                       "again; tried again every second",
                                       p->path, rs->rule->dir, rs->wa.worker);
                        else if (!p->said)
                                RECORD(r, FERRY_LOG_ERROR, rs->rule->name, p->path,
                                       "cannot claim %s: %s; it stays there, tried again every second", p->path,
                                       strerror(-e));
                        p->said = true;
                        p->next = rs->blocked;
                        rs->blocked = p;
                        continue;
                }
                free(p);
        }
        if (count == 0) {
                free(claims);
                return;
        }
        struct job *job = ferry__job_new(rs, claims, count);

        if (!job) {
                for (size_t i = 0; i < count; i++) {
                        (void)ferry__job_claim_return(rs, claims[i]);
                        ferry__claim_free(claims[i]);
                }
                free(claims);
                return;
        }
        ferry__job_start(job);
}

/* rate: takes a token for one handler start, or says when the next comes
 * (rs->rate_wait). The bucket holds a second's worth (at least one start),
 * full at first: a burst after a quiet second starts at once. */
static bool rate_take(struct rule_state *rs, int64_t now)
{
        double rate = rs->rule->rate, burst = rate > 1 ? rate : 1;

        if (rate <= 0)
                return true;
        if (!rs->tokens_at)
                rs->tokens = burst;
        else
                rs->tokens += (double)(now - rs->tokens_at) / FERRY__NSEC_PER_SEC * rate;
        if (rs->tokens > burst)
                rs->tokens = burst;
        rs->tokens_at = now;
        if (rs->tokens >= 1) {
                rs->tokens -= 1;
                rs->rate_wait = 0;
                return true;
        }
        rs->rate_wait = now + (int64_t)((1 - rs->tokens) / rate * FERRY__NSEC_PER_SEC) + 1;
        return false;
}

static void start_work(struct ferry_runner *r, int64_t now)
{
        /* A token waited for is here now, or no longer needed: taken below, or looked for again. */
        for (struct rule_state *rs = r->states; rs; rs = rs->next)
                if (rs->rate_wait && rs->rate_wait <= now)
                        rs->rate_wait = 0;
        /* Copies whose twin ended are judged again (dedup), */
        ferry__judge_again(r);
        /* then waiting jobs: adopted claims and retries that are due. */
        for (struct job *job = r->jobs, *next; job; job = next) {
                next = job->next;
                if (!job->running && !job->judging && !job->rs->paused && job->retry_at <= now &&
                    job->rs->running < job->rs->rule->jobs && rate_take(job->rs, now))
                        ferry__job_start(job);
        }
        for (struct rule_state *rs = r->states; rs; rs = rs->next)
                while (!rs->paused && rs->pending.count && rs->running < rs->rule->jobs && rate_take(rs, now))
                        claim_and_start(rs);
}

static void check_timers(struct ferry_runner *r, int64_t now)
{
        for (struct job *job = r->jobs; job; job = job->next) {
                if (!job->running)
                        continue;
                if (r->stopping && now >= r->stop_at && !job->kill_at) {
                        job->stopped = true;
                        ferry__child_signal(&job->child, SIGTERM);
                        job->kill_at = now + job->rs->rule->kill_after_ns;
                } else if (job->term_at && now >= job->term_at && !job->kill_at) {
                        job->timed_out = true;
                        ferry__child_signal(&job->child, SIGTERM);
                        job->kill_at = now + job->rs->rule->kill_after_ns;
                } else if (job->kill_at && now >= job->kill_at) {
                        ferry__child_signal(&job->child, SIGKILL);
                        job->kill_at = INT64_MAX;
                }
        }
        ferry__hooks_check_timers(r, now);
        heartbeat(r, now);
        check_folders(r, now);
        if (r->warnings_suppressed)
                (void)rate_allows(r, false);
        if (now >= r->next_recover && !r->stopping) {
                int64_t period = INT64_MAX;

                for (struct rule_state *rs = r->states; rs; rs = rs->next) {
                        if (rs->wa.work_fd >= 0 && !rs->down)
                                (void)ferry__recover(&rs->wa, adopt, refused, rs);
                        if (rs->rule->lease_ns / 2 < period)
                                period = rs->rule->lease_ns / 2;
                }
                r->next_recover = now + period;
        }
}

static int64_t next_deadline(const struct ferry_runner *r)
{
        int64_t next = r->stopping ? INT64_MAX : r->next_recover;

        if (r->next_heartbeat < next)
                next = r->next_heartbeat;
        if (!r->stopping && r->next_folder_check < next)
                next = r->next_folder_check;
        if (r->warnings_suppressed && r->warnings_since + FERRY__NSEC_PER_SEC < next)
                next = r->warnings_since + FERRY__NSEC_PER_SEC; /* the count is said when its second ends */
        for (const struct rule_state *rs = r->states; rs; rs = rs->next)
                if (rs->rate_wait && !rs->paused && rs->rate_wait < next)
                        next = rs->rate_wait;
        for (const struct job *job = r->jobs; job; job = job->next) {
                if (!job->running) {
                        if (!job->judging && job->retry_at < next)
                                next = job->retry_at;
                        continue;
                }
                if (r->stopping && !job->kill_at && r->stop_at < next)
                        next = r->stop_at;
                if (job->term_at && !job->kill_at && job->term_at < next)
                        next = job->term_at;
                if (job->kill_at && job->kill_at != INT64_MAX && job->kill_at < next)
                        next = job->kill_at;
        }
        return ferry__hooks_deadline(r, next);
}

static void arm_timer(struct ferry_runner *r, int64_t deadline)
{
        struct itimerspec its = {0};

        if (r->timer_armed && r->timer_deadline == deadline)
                return; /* as it is: most deadlines (the next heartbeat) stay put across many files */
        r->timer_armed = true;
        r->timer_deadline = deadline;

        if (deadline != INT64_MAX) {
                its.it_value.tv_sec = deadline / FERRY__NSEC_PER_SEC;
                its.it_value.tv_nsec = deadline % FERRY__NSEC_PER_SEC;
                if (deadline <= 0)
                        its.it_value.tv_nsec = 1;
        }
        (void)timerfd_settime(r->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void handle(struct ferry_runner *r, const struct epoll_event *events, int n)
{
        for (int i = 0; i < n; i++) {
                struct source *s = events[i].data.ptr;
                uint64_t expirations;

                switch (s->kind) {
                case SOURCE_TIMER:
                        (void)read(r->timer_fd, &expirations, sizeof(expirations));
                        r->timer_armed = false;
                        break;
                case SOURCE_WATCH: break; /* drained by the loop */
                case SOURCE_STDERR:
                        /* At hang-up, leave the set first: reading to the end closes the fd. */
                        if (events[i].events & (EPOLLHUP | EPOLLERR))
                                ferry__runner_epoll_del(r, ((struct job *)s->owner)->child.stderr_fd);
                        ferry__child_read_stderr(&((struct job *)s->owner)->child);
                        break;
                case SOURCE_PIDFD:
                        ferry__job_exited(s->owner);
                        /* The job may be gone: later events of this batch may
                         * point to it; they are handled on the next round. */
                        return;
                case SOURCE_HASHER: ferry__judge_collect(r); break;
                case SOURCE_HOOK_STDERR: ferry__hook_stderr(s->owner, events[i].events & (EPOLLHUP | EPOLLERR)); break;
                case SOURCE_HOOK_PIDFD:
                        ferry__hook_exited(s->owner); /* gone now, as a job above */
                        return;
                }
        }
}

static bool any_running(const struct ferry_runner *r)
{
        for (const struct job *job = r->jobs; job; job = job->next)
                if (job->running)
                        return true;
        return false;
}

/* The audit trails' lines gathered, written out: before a wait, and before
 * the caller gets control back. */
static void audit_flush(struct ferry_runner *r)
{
        for (struct rule_state *rs = r->states; rs; rs = rs->next)
                ferry__audit_flush(&rs->audit);
}

static int dispatch(struct ferry_runner *r, int timeout_ms);

int ferry_runner_dispatch(struct ferry_runner *r, int timeout_ms)
{
        int e;

        if (!r || !r->started)
                return -EINVAL;
        e = dispatch(r, timeout_ms);
        audit_flush(r);
        return e;
}

static int dispatch(struct ferry_runner *r, int timeout_ms)
{
        int64_t until;

        until = timeout_ms < 0 ? INT64_MAX : ferry__now() + (int64_t)timeout_ms * FERRY__NSEC_PER_MSEC;
        for (;;) {
                struct epoll_event events[16];
                int64_t now, next;
                int n;

                /* Hooks queued in the last round: their files' log lines
                 * are out (the caller writes them before it waits). */
                ferry__hooks_start(r);
                n = epoll_wait(r->epoll_fd, events, 16, 0);
                if (n > 0)
                        handle(r, events, n);
                for (struct rule_state *rs = r->states; rs; rs = rs->next)
                        drain_watch(rs);
                now = ferry__now();
                check_timers(r, now);
                if (r->folder_lost && !r->stopping)
                        return -ENODEV; /* said in the log; the caller stops */
                if (!r->stopping)
                        start_work(r, now);
                if (r->handed && !r->stopping) {
                        /* A queue's caller has a claim to take. */
                        arm_timer(r, next_deadline(r));
                        return 1;
                }
                if (r->stopping && !any_running(r) && !r->hooks) {
                        /* Claims waiting for a retry go back to the queue. */
                        while (r->jobs)
                                ferry__job_return(r->jobs, true);
                        ferry__hooks_stopped(r);
                        return 0;
                }
                next = next_deadline(r);
                if (now >= until) {
                        /* Back to the caller (signals, its own fds), busy or not:
                         * pending events keep the fd readable. */
                        arm_timer(r, next);
                        return 1;
                }
                if (n > 0)
                        continue; /* something happened: look again before waiting */
                if (next > until)
                        next = until;
                audit_flush(r);
                n = epoll_wait(r->epoll_fd, events, 16,
                               next == INT64_MAX
                                       ? -1
                                       : (int)((next - now + FERRY__NSEC_PER_MSEC - 1) / FERRY__NSEC_PER_MSEC));
                if (n < 0 && errno != EINTR)
                        return -errno;
                if (n > 0)
                        handle(r, events, n);
        }
}

int ferry_runner_stats(struct ferry_runner *r, struct ferry_runner_stats *ret_stats)
{
        struct ferry_runner_stats st;

        if (!r || !ret_stats)
                return -EINVAL;
        st = r->stats;
        st.queued = st.running = st.waiting = st.watches = st.folders_lost = st.rules_paused = 0;
        for (const struct rule_state *rs = r->states; rs; rs = rs->next) {
                st.queued += rs->pending.count;
                st.watches += ferry_watch_count(rs->watch);
                st.folders_lost += rs->down;
                st.rules_paused += rs->paused;
        }
        for (const struct job *job = r->jobs; job; job = job->next) {
                if (job->running)
                        st.running += job->count;
                else
                        st.waiting += job->count;
        }
        *ret_stats = st;
        return 0;
}

int ferry_runner_each_rule(struct ferry_runner *r, int (*callback)(void *userdata, struct ferry_rule *rule),
                           void *userdata)
{
        int e;

        if (!r || !callback)
                return -EINVAL;
        for (struct ferry_rule *rule = r->rules; rule; rule = rule->next)
                if ((e = callback(userdata, rule)) != 0)
                        return e;
        for (struct rule_state *rs = r->states; rs; rs = rs->next)
                if ((e = callback(userdata, rs->rule)) != 0)
                        return e;
        return 0;
}

int ferry_runner_rule_up(struct ferry_runner *r, const char *name)
{
        if (!r || !name)
                return -EINVAL;
        for (struct rule_state *rs = r->states; rs; rs = rs->next)
                if (strcmp(rs->rule->name, name) == 0)
                        return !rs->down;
        for (struct ferry_rule *rule = r->rules; rule; rule = rule->next)
                if (strcmp(rule->name, name) == 0)
                        return 1;
        return -ENOENT;
}

int ferry_runner_rule_paused(struct ferry_runner *r, const char *name)
{
        if (!r || !name)
                return -EINVAL;
        for (struct rule_state *rs = r->states; rs; rs = rs->next)
                if (strcmp(rs->rule->name, name) == 0)
                        return rs->paused;
        for (struct ferry_rule *rule = r->rules; rule; rule = rule->next)
                if (strcmp(rule->name, name) == 0)
                        return 0;
        return -ENOENT;
}

int ferry_runner_fd(struct ferry_runner *r)
{
        return r ? r->epoll_fd : -EINVAL;
}

static void stop(struct ferry_runner *r, int64_t grace_ns, bool say)
{
        if (!r->stopping) {
                r->stopping = true;
                r->stop_at = ferry__now() + (grace_ns > 0 ? grace_ns : 0);
                char grace[32];

                (void)ferry__format_duration(grace_ns, grace, sizeof(grace));
                if (say)
                        LOG(r, FERRY_LOG_INFO, NULL, NULL, "stopping: no new claims; handlers get %s to finish", grace);
        } else {
                int64_t now = ferry__now();

                if (now + grace_ns < r->stop_at)
                        r->stop_at = now + (grace_ns > 0 ? grace_ns : 0);
        }
        for (struct rule_state *rs = r->states; rs; rs = rs->next)
                rule_unwatch(rs);
}

void ferry_runner_stop(struct ferry_runner *r, int64_t grace_ns)
{
        if (r)
                stop(r, grace_ns, true);
}

void ferry_runner_free(struct ferry_runner *r)
{
        if (!r)
                return;
        if (r->log && r->warnings_suppressed) {
                r->warnings_since = INT64_MIN / 2; /* the count is said now, not after a second */
                (void)rate_allows(r, false);
        }
        if (r->started) {
                /* Whatever still runs is killed; its claims go back to the queue. */
                stop(r, 0, false);
                for (struct job *job = r->jobs; job; job = job->next)
                        if (job->running) {
                                job->stopped = true;
                                ferry__child_abandon(&job->child);
                        }
                while (r->jobs)
                        ferry__job_return(r->jobs, true);
                ferry__hooks_stopped(r);
        }
        ferry__hasher_free(r->hasher);
        while (r->states) {
                struct rule_state *rs = r->states;

                r->states = rs->next;
                rule_release(rs);
                ferry__env_free(rs->env);
                free(rs->output_dir);
                ferry_rule_free(rs->rule);
                free(rs);
        }
        while (r->rules) {
                struct ferry_rule *rule = r->rules;

                r->rules = rule->next;
                ferry_rule_free(rule);
        }
        ferry__keeper_stop(&r->keeper);
        if (r->timer_fd >= 0)
                close(r->timer_fd);
        if (r->epoll_fd >= 0)
                close(r->epoll_fd);
        free(r);
}
