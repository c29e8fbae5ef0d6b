/* verify.c: a done-marker's SHA-256 is checked off the event loop.
 *
 * Hashing is the one piece of a watcher's work whose cost a writer chooses:
 * a marker that names a 20 GiB sparse file would hold the loop, and every
 * other file of every rule, for as long as it takes to read it. So the
 * loop opens the file (without following a link, only a regular file of
 * the size the marker says) and hands its descriptor to the hasher
 * (lib/common/hasher.c), whose thread reads it in slices, taking turns
 * between the files waiting. A finished hash comes back through the
 * hasher's eventfd in the watcher's epoll set; the loop then judges the
 * file as ready.c always did.
 *
 * Ownership: a check is the loop's. Its file pointer is set to NULL when
 * the file goes away or changes, and the result is dropped.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

struct verify_job {
        struct verify_job *next;  /* every check not yet collected */
        struct ferry__file *file; /* NULL once its result does not matter */
        struct ferry__version version;
        uint64_t want_size;
        bool has_size;
        char want_hex[2 * FERRY__SHA256_SIZE + 1];
};

struct ferry__verifier {
        struct ferry__hasher *hasher;
        struct verify_job *jobs;
};

static int verifier_new(struct ferry_watch *w)
{
        struct ferry__verifier *v = calloc(1, sizeof(*v));
        struct epoll_event ev = {.events = EPOLLIN};
        int r;

        if (!v)
                return -ENOMEM;
        r = ferry__hasher_new(&v->hasher);
        if (r == 0 && epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, ferry__hasher_fd(v->hasher), &ev) < 0)
                r = -errno;
        if (r < 0) {
                ferry__hasher_free(v->hasher);
                free(v);
                return r;
        }
        w->verifier = v;
        return 0;
}

int ferry__verify_start(struct ferry_watch *w, struct ferry__file *f, const char *data_path,
                        const struct ferry__version *version, const struct ferry__marker_claim *claim)
{
        struct verify_job *job;
        struct stat st;
        int fd, r;

        ferry__verify_forget(w, f);
        fd = open(data_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* Only a regular file, and only the version the loop judges. */
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EINVAL;
        }
        if ((uint64_t)st.st_ino != version->ino || st.st_size != version->size) {
                close(fd);
                return -EAGAIN;
        }
        if (claim->has_size && (uint64_t)st.st_size != claim->size) {
                close(fd);
                return -EBADMSG;
        }
        if (!w->verifier && (r = verifier_new(w)) < 0) {
                close(fd);
                return r;
        }
        job = calloc(1, sizeof(*job));
        if (!job) {
                close(fd);
                return -ENOMEM;
        }
        job->file = f;
        job->version = *version;
        job->has_size = claim->has_size;
        job->want_size = claim->size;
        memcpy(job->want_hex, claim->hex, sizeof(job->want_hex));
        /* A file that grows past its claim is refused without reading on. */
        r = ferry__hasher_add(w->verifier->hasher, fd, claim->has_size ? claim->size : UINT64_MAX, job);
        if (r < 0) {
                free(job);
                return r;
        }
        job->next = w->verifier->jobs;
        w->verifier->jobs = job;
        return 0;
}

void ferry__verify_forget(struct ferry_watch *w, struct ferry__file *f)
{
        if (!w->verifier)
                return;
        for (struct verify_job *job = w->verifier->jobs; job; job = job->next)
                if (job->file == f)
                        job->file = NULL;
}

static void verified(void *userdata, void *owner, int result, const uint8_t digest[FERRY__SHA256_SIZE], uint64_t size)
{
        struct ferry_watch *w = userdata;
        struct verify_job *job = owner;
        char hex[2 * FERRY__SHA256_SIZE + 1];

        for (struct verify_job **p = &w->verifier->jobs; *p; p = &(*p)->next)
                if (*p == job) {
                        *p = job->next;
                        break;
                }
        if (result == 0) {
                ferry__sha256_hex(digest, hex);
                result = strcasecmp(hex, job->want_hex) != 0 || (job->has_size && size != job->want_size)
                                 ? -EBADMSG
                                 : 0;
        } else if (result == -EFBIG) {
                result = -EBADMSG; /* grew past its claim */
        }
        if (job->file)
                ferry__ready_verified(w, job->file, &job->version, result);
        free(job);
}

void ferry__verify_collect(struct ferry_watch *w)
{
        if (w->verifier)
                ferry__hasher_collect(w->verifier->hasher, verified, w);
}

void ferry__verify_free(struct ferry_watch *w)
{
        struct ferry__verifier *v = w->verifier;

        if (!v)
                return;
        ferry__hasher_free(v->hasher);
        while (v->jobs) {
                struct verify_job *job = v->jobs;

                v->jobs = job->next;
                free(job);
        }
        free(v);
        w->verifier = NULL;
}
