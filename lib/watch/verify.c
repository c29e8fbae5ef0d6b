/* verify.c: a done-marker's SHA-256 is checked off the event loop.
 *
 * Hashing is the one piece of a watcher's work whose cost a writer chooses:
 * a marker that names a 20 GiB sparse file would hold the loop, and every
 * other file of every rule, for as long as it takes to read it. So the
 * loop opens the file (without following a link, only a regular file of
 * the size the marker says) and hands its descriptor to one thread, which
 * reads VERIFY_SLICE bytes of a file at a time and takes turns between the
 * files waiting, so that a small file's check never waits for a big one's
 * to end. A finished check comes back through an eventfd in the watcher's
 * epoll set; the loop then judges the file as ready.c always did.
 *
 * Ownership: a job is the loop's until it is queued, the thread's while it
 * is on the "todo" list or being read, and the loop's again on "done". Its
 * file pointer is the loop's alone (the thread never reads it): a file that
 * goes away, or changes, sets it to NULL, and the result is dropped.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERIFY_SLICE (16u << 20) /* bytes read of one file before the next file's turn */

struct verify_job {
        struct verify_job *next;      /* todo or done, under the lock */
        struct verify_job *loop_next; /* every job not yet collected: the loop's */
        struct ferry__file *file;     /* the loop's: NULL once its result does not matter */
        struct ferry__version version;
        int fd;
        uint64_t want_size;
        bool has_size;
        char want_hex[2 * FERRY__SHA256_SIZE + 1];
        /* the thread's while it runs */
        struct sha256_ctx ctx;
        uint64_t size;
        int result; /* 0: the claims hold; -EBADMSG: they do not; -errno */
};

struct ferry__verifier {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        struct verify_job *todo_head, *todo_tail; /* under lock */
        struct verify_job *done;                  /* under lock */
        bool stop;                                /* under lock */
        int event_fd;
        struct verify_job *jobs; /* the loop's list of every job out */
};

/* Reads one slice of job; true when the file is read to its end (or failed). */
static bool read_slice(struct verify_job *job, char *buffer, size_t size)
{
        for (size_t done = 0; done < VERIFY_SLICE;) {
                ssize_t n = read(job->fd, buffer, size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        job->result = -errno;
                        return true;
                }
                if (n == 0) {
                        uint8_t digest[FERRY__SHA256_SIZE];
                        char hex[2 * FERRY__SHA256_SIZE + 1];

                        sha256_digest(&job->ctx, FERRY__SHA256_SIZE, digest);
                        ferry__sha256_hex(digest, hex);
                        job->result = (strcasecmp(hex, job->want_hex) != 0 ||
                                       (job->has_size && job->size != job->want_size))
                                              ? -EBADMSG
                                              : 0;
                        return true;
                }
                sha256_update(&job->ctx, (size_t)n, (const uint8_t *)buffer);
                job->size += (uint64_t)n;
                done += (size_t)n;
                if (job->has_size && job->size > job->want_size) {
                        job->result = -EBADMSG; /* grew past its claim: no need to read on */
                        return true;
                }
        }
        return false;
}

static void *verify_thread(void *data)
{
        struct ferry__verifier *v = data;
        static const uint64_t one = 1;
        char *buffer = malloc(256 * 1024);

        pthread_mutex_lock(&v->lock);
        for (;;) {
                struct verify_job *job;
                bool finished;

                while (!v->todo_head && !v->stop)
                        pthread_cond_wait(&v->wake, &v->lock);
                if (v->stop)
                        break;
                job = v->todo_head;
                v->todo_head = job->next;
                if (!v->todo_head)
                        v->todo_tail = NULL;
                pthread_mutex_unlock(&v->lock);
                if (buffer) {
                        finished = read_slice(job, buffer, 256 * 1024);
                } else {
                        job->result = -ENOMEM;
                        finished = true;
                }
                pthread_mutex_lock(&v->lock);
                job->next = NULL;
                if (finished) {
                        job->next = v->done;
                        v->done = job;
                        (void)!write(v->event_fd, &one, sizeof(one));
                } else if (v->todo_tail) { /* to the back: the next file's turn */
                        v->todo_tail->next = job;
                        v->todo_tail = job;
                } else {
                        v->todo_head = v->todo_tail = job;
                }
        }
        pthread_mutex_unlock(&v->lock);
        free(buffer);
        return NULL;
}

static int verifier_new(struct ferry_watch *w)
{
        struct ferry__verifier *v = calloc(1, sizeof(*v));
        struct epoll_event ev = {.events = EPOLLIN};
        sigset_t all, old;
        int r;

        if (!v)
                return -ENOMEM;
        v->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (v->event_fd < 0 || epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, v->event_fd, &ev) < 0) {
                r = -errno;
                if (v->event_fd >= 0)
                        close(v->event_fd);
                free(v);
                return r;
        }
        pthread_mutex_init(&v->lock, NULL);
        pthread_cond_init(&v->wake, NULL);
        /* The thread takes no signal: the caller's are the caller's business. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&v->thread, NULL, verify_thread, v);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                pthread_cond_destroy(&v->wake);
                pthread_mutex_destroy(&v->lock);
                close(v->event_fd);
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
        job->fd = fd;
        job->has_size = claim->has_size;
        job->want_size = claim->size;
        memcpy(job->want_hex, claim->hex, sizeof(job->want_hex));
        sha256_init(&job->ctx);
        job->loop_next = w->verifier->jobs;
        w->verifier->jobs = job;
        pthread_mutex_lock(&w->verifier->lock);
        if (w->verifier->todo_tail)
                w->verifier->todo_tail->next = job;
        else
                w->verifier->todo_head = job;
        w->verifier->todo_tail = job;
        pthread_cond_signal(&w->verifier->wake);
        pthread_mutex_unlock(&w->verifier->lock);
        return 0;
}

void ferry__verify_forget(struct ferry_watch *w, struct ferry__file *f)
{
        if (!w->verifier)
                return;
        for (struct verify_job *job = w->verifier->jobs; job; job = job->loop_next)
                if (job->file == f)
                        job->file = NULL;
}

void ferry__verify_collect(struct ferry_watch *w)
{
        struct ferry__verifier *v = w->verifier;
        struct verify_job *done;
        uint64_t count;

        if (!v)
                return;
        (void)!read(v->event_fd, &count, sizeof(count));
        pthread_mutex_lock(&v->lock);
        done = v->done;
        v->done = NULL;
        pthread_mutex_unlock(&v->lock);
        while (done) {
                struct verify_job *job = done;

                done = job->next;
                for (struct verify_job **p = &v->jobs; *p; p = &(*p)->loop_next)
                        if (*p == job) {
                                *p = job->loop_next;
                                break;
                        }
                close(job->fd);
                if (job->file)
                        ferry__ready_verified(w, job->file, &job->version, job->result);
                free(job);
        }
}

void ferry__verify_free(struct ferry_watch *w)
{
        struct ferry__verifier *v = w->verifier;

        if (!v)
                return;
        pthread_mutex_lock(&v->lock);
        v->stop = true; /* the thread stops between two slices */
        pthread_cond_signal(&v->wake);
        pthread_mutex_unlock(&v->lock);
        pthread_join(v->thread, NULL);
        while (v->jobs) {
                struct verify_job *job = v->jobs;

                v->jobs = job->loop_next;
                close(job->fd);
                free(job);
        }
        pthread_cond_destroy(&v->wake);
        pthread_mutex_destroy(&v->lock);
        close(v->event_fd);
        free(v);
        w->verifier = NULL;
}
