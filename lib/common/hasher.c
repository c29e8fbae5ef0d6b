/* hasher.c: SHA-256 of files, read by a thread off the caller's event loop.
 *
 * Hashing is the one piece of work whose cost a writer chooses: a file of
 * 20 GiB would hold a loop, and every other file it serves, for as long as
 * it takes to read it. So the loop opens the file and hands its descriptor
 * to one thread, which reads HASHER_SLICE bytes of a file at a time and
 * takes turns between the files waiting, so that a small file's hash never
 * waits for a big one's to end. A finished hash comes back through an
 * eventfd the caller keeps in its epoll set; ferry__hasher_collect then
 * hands it to the caller. The watcher checks done-markers with it
 * (lib/watch/verify.c), the runner learns what a claimed file holds
 * (lib/run/duplicate.c).
 *
 * Ownership: a hashing is the loop's until it is queued, the thread's while
 * it is on the "todo" list or being read, and the loop's again on "done".
 * Its owner pointer is the loop's alone (the thread never reads it): an
 * owner that goes away is forgotten (set to NULL) and the result dropped.
 */
#include "common.h"

#include <errno.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define HASHER_SLICE (16u << 20) /* bytes read of one file before the next file's turn */
#define HASHER_BUFFER (256u << 10)

struct hashing {
        struct hashing *next;      /* todo or done, under the lock */
        struct hashing *loop_next; /* every hashing not yet collected: the loop's */
        void *owner;               /* the loop's: NULL once its result does not matter */
        int fd;
        uint64_t limit;
        /* the thread's while it runs */
        struct sha256_ctx ctx;
        uint64_t size;
        int result; /* 0: digest holds; -EFBIG: more than limit bytes; -errno */
        uint8_t digest[FERRY__SHA256_SIZE];
};

struct ferry__hasher {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        struct hashing *todo_head, *todo_tail; /* under lock */
        struct hashing *done;                  /* under lock */
        bool stop;                             /* under lock */
        int event_fd;
        struct hashing *all; /* the loop's list of every hashing out */
};

/* Reads one slice; true when the file is read to its end (or failed). */
static bool read_slice(struct hashing *job, char *buffer, size_t size)
{
        for (size_t done = 0; done < HASHER_SLICE;) {
                ssize_t n = read(job->fd, buffer, size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        job->result = -errno;
                        return true;
                }
                if (n == 0) {
                        sha256_digest(&job->ctx, FERRY__SHA256_SIZE, job->digest);
                        job->result = 0;
                        return true;
                }
                sha256_update(&job->ctx, (size_t)n, (const uint8_t *)buffer);
                job->size += (uint64_t)n;
                done += (size_t)n;
                if (job->size > job->limit) {
                        job->result = -EFBIG; /* grew past what the caller expects: no need to read on */
                        return true;
                }
        }
        return false;
}

static void *hasher_thread(void *data)
{
        struct ferry__hasher *h = data;
        static const uint64_t one = 1;
        char *buffer = malloc(HASHER_BUFFER);

        pthread_mutex_lock(&h->lock);
        for (;;) {
                struct hashing *job;
                bool finished;

                while (!h->todo_head && !h->stop)
                        pthread_cond_wait(&h->wake, &h->lock);
                if (h->stop)
                        break;
                job = h->todo_head;
                h->todo_head = job->next;
                if (!h->todo_head)
                        h->todo_tail = NULL;
                pthread_mutex_unlock(&h->lock);
                if (buffer) {
                        finished = read_slice(job, buffer, HASHER_BUFFER);
                } else {
                        job->result = -ENOMEM;
                        finished = true;
                }
                pthread_mutex_lock(&h->lock);
                job->next = NULL;
                if (finished) {
                        job->next = h->done;
                        h->done = job;
                        (void)!write(h->event_fd, &one, sizeof(one));
                } else if (h->todo_tail) { /* to the back: the next file's turn */
                        h->todo_tail->next = job;
                        h->todo_tail = job;
                } else {
                        h->todo_head = h->todo_tail = job;
                }
        }
        pthread_mutex_unlock(&h->lock);
        free(buffer);
        return NULL;
}

int ferry__hasher_new(struct ferry__hasher **ret_hasher)
{
        struct ferry__hasher *h = calloc(1, sizeof(*h));
        sigset_t all, old;
        int r;

        if (!h)
                return -ENOMEM;
        h->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (h->event_fd < 0) {
                r = -errno;
                free(h);
                return r;
        }
        pthread_mutex_init(&h->lock, NULL);
        pthread_cond_init(&h->wake, NULL);
        /* The thread takes no signal: the caller's are the caller's business. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&h->thread, NULL, hasher_thread, h);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                pthread_cond_destroy(&h->wake);
                pthread_mutex_destroy(&h->lock);
                close(h->event_fd);
                free(h);
                return r;
        }
        *ret_hasher = h;
        return 0;
}

int ferry__hasher_fd(const struct ferry__hasher *h)
{
        return h->event_fd;
}

int ferry__hasher_add(struct ferry__hasher *h, int fd, uint64_t limit, void *owner)
{
        struct hashing *job = calloc(1, sizeof(*job));

        if (!job) {
                close(fd);
                return -ENOMEM;
        }
        job->owner = owner;
        job->fd = fd;
        job->limit = limit;
        sha256_init(&job->ctx);
        job->loop_next = h->all;
        h->all = job;
        pthread_mutex_lock(&h->lock);
        if (h->todo_tail)
                h->todo_tail->next = job;
        else
                h->todo_head = job;
        h->todo_tail = job;
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->lock);
        return 0;
}

void ferry__hasher_forget(struct ferry__hasher *h, const void *owner)
{
        if (!h)
                return;
        for (struct hashing *job = h->all; job; job = job->loop_next)
                if (job->owner == owner)
                        job->owner = NULL;
}

void ferry__hasher_collect(struct ferry__hasher *h, ferry__hashed_cb done_cb, void *userdata)
{
        struct hashing *done;
        uint64_t count;

        if (!h)
                return;
        (void)!read(h->event_fd, &count, sizeof(count));
        pthread_mutex_lock(&h->lock);
        done = h->done;
        h->done = NULL;
        pthread_mutex_unlock(&h->lock);
        while (done) {
                struct hashing *job = done;

                done = job->next;
                for (struct hashing **p = &h->all; *p; p = &(*p)->loop_next)
                        if (*p == job) {
                                *p = job->loop_next;
                                break;
                        }
                close(job->fd);
                if (job->owner)
                        done_cb(userdata, job->owner, job->result, job->digest, job->size);
                free(job);
        }
}

void ferry__hasher_free(struct ferry__hasher *h)
{
        if (!h)
                return;
        pthread_mutex_lock(&h->lock);
        h->stop = true; /* the thread stops between two slices */
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->thread, NULL);
        while (h->all) {
                struct hashing *job = h->all;

                h->all = job->loop_next;
                close(job->fd);
                free(job);
        }
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->lock);
        close(h->event_fd);
        free(h);
}
