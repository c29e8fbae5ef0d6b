/* duplicate.c: dedup = sha256: a claimed file whose content the rule handled
 * within dedup-window goes to done as a duplicate, its handler not run.
 *
 * Between its claim and its first run, a job is judged:
 *
 *   hashing     its SHA-256 is read by the runner's hasher thread (lib/common/
 *               hasher.c), off the loop; or taken at once from its done-marker,
 *               which the watcher checked against the file before it was ready
 *   twin_wait   a job of the rule with the same content is out (running,
 *               waiting for a retry, with a queue's caller): its outcome is
 *               waited for, so that two copies never run at once
 *   looked up   in every host's record of the folder (dedup.c): found, a
 *               duplicate; not, the job starts
 *
 * A job being judged holds its handler slot, as a running one does: a worker
 * never claims more than its jobs allow. Its twin ended, a waiting job is
 * judged again: a duplicate if the twin succeeded (its row is in the record
 * now), else it runs, and the next copy waits for it.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

static bool parse_hex(const char *hex, uint8_t digest[FERRY__SHA256_SIZE])
{
        for (size_t i = 0; i < FERRY__SHA256_SIZE; i++) {
                unsigned value;

                if (sscanf(hex + 2 * i, "%2x", &value) != 1)
                        return false;
                digest[i] = (uint8_t)value;
        }
        return true;
}

/* The claim's hash from its NAME.SUFFIX marker, when the watcher checked it
 * (a fresh claim, under the done-file policy) and it is the file's own: a
 * regular file of the file's owner (someone else's marker planted beside a
 * file, under a folder without the sticky bit, is not taken), naming its
 * size and SHA-256. */
static bool marker_hash(struct rule_state *rs, struct ferry__claim *c)
{
        struct ferry__marker_claim m;
        struct stat marker_st, file_st;
        bool own;
        int fd;

        if (!rs->wa.marker_suffix || !c->ready_at || c->type != S_IFREG ||
            ferry__claim_marker(&rs->wa, c, &m, &marker_st) < 0 || !m.hex[0] || !m.has_size ||
            m.size != (uint64_t)c->version.size)
                return false;
        if (ferry__claim_open(&rs->wa, c, false, &fd) < 0)
                return false;
        own = fstat(fd, &file_st) == 0 && file_st.st_uid == marker_st.st_uid &&
              (uint64_t)file_st.st_ino == c->version.ino && file_st.st_size == c->version.size;
        close(fd);
        if (!own || !parse_hex(m.hex, c->sha256))
                return false;
        ferry__sha256_hex(c->sha256, c->sha256_hex);
        c->hashed = c->hash_from_marker = true;
        return true;
}

/* The slot the job held while judged is free: it starts (now, or when the
 * rule is no longer paused), or goes to done as a duplicate. */
static void let_go(struct job *job)
{
        job->judging = job->twin_wait = job->rejudge = job->hashing = false;
        job->rs->running--;
}

static bool same_content(const struct job *a, const struct job *b)
{
        return a->claims[0]->hashed && b->claims[0]->hashed &&
               memcmp(a->claims[0]->sha256, b->claims[0]->sha256, FERRY__SHA256_SIZE) == 0;
}

/* Judges a job whose hash is known. */
static void judge(struct job *job)
{
        struct rule_state *rs = job->rs;
        struct ferry__claim *c = job->claims[0];
        struct ferry__dedup_hit hit;
        char warning[512];
        int found;

        job->rejudge = false;
        for (const struct job *other = rs->runner->jobs; other; other = other->next)
                if (other != job && other->rs == rs && other->judged && !other->judging && same_content(job, other)) {
                        if (!job->twin_wait)
                                LOG(rs->runner, FERRY_LOG_INFO, rs->rule->name, c->original_path,
                                    "the same content as %s, out now: waits for its outcome",
                                    other->claims[0]->original_path);
                        job->twin_wait = true;
                        return;
                }
        found = ferry__dedup_find(rs->dedup, rs->rule->name, c->sha256, ferry__realtime() - rs->rule->dedup_window_ns,
                                  &hit, warning, sizeof(warning));
        if (warning[0])
                LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, rs->rule->dir, "%s", warning);
        let_go(job);
        if (found > 0)
                return ferry__job_duplicate(job, &hit);
        if (!rs->paused)
                ferry__job_start(job);
        /* else: it waits, not judging any more, and starts when the rule resumes */
}

static int hasher_get(struct ferry_runner *r)
{
        int e;

        if (r->hasher)
                return 0;
        e = ferry__hasher_new(&r->hasher);
        if (e < 0)
                return e;
        r->hasher_source = (struct source){SOURCE_HASHER, r};
        e = ferry__runner_epoll_add(r, ferry__hasher_fd(r->hasher), &r->hasher_source);
        if (e < 0) {
                ferry__hasher_free(r->hasher);
                r->hasher = NULL;
        }
        return e;
}

bool ferry__judge_begin(struct job *job)
{
        struct rule_state *rs = job->rs;
        struct ferry_runner *r = rs->runner;
        struct ferry__claim *c = job->claims[0];
        int e, fd;

        if (!rs->dedup || job->judged || job->count != 1 || c->in_place)
                return false;
        job->judged = job->judging = true;
        rs->running++;
        if (marker_hash(rs, c)) {
                judge(job);
                return true;
        }
        e = ferry__claim_open(&rs->wa, c, rs->rule->follow_symlinks, &fd);
        if (e == 0) {
                e = hasher_get(r);
                if (e < 0)
                        close(fd);
        }
        if (e == 0)
                e = ferry__hasher_add(r->hasher, fd, UINT64_MAX, job);
        if (e == 0) {
                job->hashing = true;
                return true;
        }
        /* Handled as a new content: at least once, never skipped wrongly. */
        LOG(r, FERRY_LOG_WARNING, rs->rule->name, c->original_path,
            "cannot read it to learn its SHA-256 (%s): handled without looking for a duplicate", strerror(-e));
        let_go(job);
        return false;
}

static void hashed(void *userdata, void *owner, int result, const uint8_t digest[FERRY__SHA256_SIZE], uint64_t size)
{
        struct job *job = owner;
        struct rule_state *rs = job->rs;

        (void)userdata;
        (void)size;
        job->hashing = false;
        if (result == 0) {
                memcpy(job->claims[0]->sha256, digest, FERRY__SHA256_SIZE);
                ferry__sha256_hex(digest, job->claims[0]->sha256_hex);
                job->claims[0]->hashed = true;
                judge(job);
                return;
        }
        LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, job->claims[0]->original_path,
            "cannot read it to learn its SHA-256 (%s): handled without looking for a duplicate", strerror(-result));
        let_go(job);
        if (!rs->paused)
                ferry__job_start(job);
}

void ferry__judge_collect(struct ferry_runner *r)
{
        ferry__hasher_collect(r->hasher, hashed, r);
}

void ferry__judge_again(struct ferry_runner *r)
{
        bool again = true;

        if (!r->rejudge)
                return;
        r->rejudge = false;
        /* Judging one may end or start another: from the top each time. */
        while (again) {
                again = false;
                for (struct job *job = r->jobs; job; job = job->next)
                        if (job->rejudge) {
                                judge(job);
                                again = true;
                                break;
                        }
        }
}

void ferry__judge_end(struct job *job)
{
        struct ferry_runner *r = job->rs->runner;

        if (job->hashing)
                ferry__hasher_forget(r->hasher, job);
        if (job->judging)
                let_go(job);
        if (!job->judged || !job->count || !job->claims[0] || !job->claims[0]->hashed)
                return;
        for (struct job *other = r->jobs; other; other = other->next)
                if (other->twin_wait && other->rs == job->rs && same_content(job, other)) {
                        other->rejudge = true;
                        r->rejudge = true;
                }
}

void ferry__judge_record(struct job *job)
{
        struct rule_state *rs = job->rs;
        struct ferry__claim *c = job->count ? job->claims[0] : NULL;
        char *relative;
        int e;

        if (!rs->dedup || !c || !c->hashed)
                return;
        relative = ferry__claim_relative(c);
        e = relative ? ferry__dedup_add(rs->dedup, rs->rule->name, c->sha256, relative, c->version.size,
                                        ferry__realtime())
                     : -ENOMEM;
        free(relative);
        if (e < 0)
                LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, c->original_path,
                    "cannot record its content as handled in %s/.ferry/dedup (%s): a copy of it is handled again",
                    rs->rule->dir, e == -ENOMEM ? strerror(ENOMEM) : ferry__dedup_error(rs->dedup));
}

void ferry__judge_prune(struct rule_state *rs, int64_t now)
{
        int e;

        if (!rs->dedup || now < rs->next_prune)
                return;
        rs->next_prune = now + 3600 * FERRY__NSEC_PER_SEC;
        e = ferry__dedup_prune(rs->dedup, rs->rule->name, ferry__realtime() - rs->rule->dedup_window_ns);
        if (e < 0)
                LOG(rs->runner, FERRY_LOG_WARNING, rs->rule->name, rs->rule->dir,
                    "cannot remove old rows from %s/.ferry/dedup: %s; tried again in an hour", rs->rule->dir,
                    ferry__dedup_error(rs->dedup));
}
