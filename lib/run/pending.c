/* pending.c: the files a rule found ready and has not claimed yet, in the
 * order the rule asks for.
 *
 * By default (order = ready) they are claimed in the order they became
 * ready: a list, first in first out, where a worker that lost a race to
 * another can skip a random stretch ahead (ferry__pending_skip). With an
 * order (name, mtime or size, ascending or descending) or priority globs,
 * they wait in a binary heap: files matching an earlier priority glob first,
 * then by the order, then in the order they became ready.
 */
#include "runner.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void ferry__pending_init(struct pending_queue *q, const struct ferry_rule *rule)
{
        *q = (struct pending_queue){.order = rule->order,
                                    .descending = rule->order_descending,
                                    .priority = rule->priority,
                                    .priority_count = rule->priority_count};
        q->heaped = q->order != FERRY__ORDER_READY || q->priority_count > 0;
}

/* a before b? */
static bool before(const struct pending_queue *q, const struct pending *a, const struct pending *b)
{
        int c = 0;

        if (a->rank != b->rank)
                return a->rank < b->rank;
        switch (q->order) {
        case FERRY__ORDER_NAME: c = strcmp(a->path, b->path); break;
        case FERRY__ORDER_MTIME:
        case FERRY__ORDER_SIZE: c = (a->key > b->key) - (a->key < b->key); break;
        default: break;
        }
        if (c)
                return q->descending ? c > 0 : c < 0;
        return a->seq < b->seq;
}

static void sift_up(struct pending_queue *q, size_t i)
{
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                struct pending *t;

                if (!before(q, q->heap[i], q->heap[parent]))
                        break;
                t = q->heap[i];
                q->heap[i] = q->heap[parent];
                q->heap[parent] = t;
                i = parent;
        }
}

static void sift_down(struct pending_queue *q, size_t i)
{
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, best = i;
                struct pending *t;

                if (l < q->count && before(q, q->heap[l], q->heap[best]))
                        best = l;
                if (r < q->count && before(q, q->heap[r], q->heap[best]))
                        best = r;
                if (best == i)
                        return;
                t = q->heap[i];
                q->heap[i] = q->heap[best];
                q->heap[best] = t;
                i = best;
        }
}

bool ferry__pending_append(struct pending_queue *q, struct pending *p)
{
        p->next = NULL;
        if (!q->heaped) {
                if (q->tail)
                        q->tail->next = p;
                else
                        q->head = p;
                q->tail = p;
                q->count++;
                return true;
        }
        if (q->count == q->capacity) {
                size_t capacity = q->capacity ? 2 * q->capacity : 64;
                struct pending **bigger = realloc(q->heap, capacity * sizeof(*bigger));

                if (!bigger)
                        return false;
                q->heap = bigger;
                q->capacity = capacity;
        }
        q->heap[q->count++] = p;
        sift_up(q, q->count - 1);
        return true;
}

struct pending *ferry__pending_new(struct pending_queue *q, const char *path, size_t len, int64_t size)
{
        struct pending *p = malloc(sizeof(*p) + len + 1);
        const char *name = memrchr(path, '/', len);
        struct stat st;

        if (!p)
                return NULL;
        p->next = NULL;
        p->found_at = ferry__realtime();
        p->said = false;
        p->seq = q->seq++;
        memcpy(p->path, path, len + 1);
        name = name ? name + 1 : path;
        p->rank = (unsigned)q->priority_count;
        for (size_t i = 0; i < q->priority_count; i++)
                if (fnmatch(q->priority[i], name, 0) == 0) {
                        p->rank = (unsigned)i;
                        break;
                }
        p->key = 0;
        if (q->order == FERRY__ORDER_SIZE && size >= 0)
                p->key = size;
        else if ((q->order == FERRY__ORDER_SIZE || q->order == FERRY__ORDER_MTIME) && lstat(p->path, &st) == 0)
                p->key = q->order == FERRY__ORDER_SIZE
                                 ? st.st_size
                                 : (int64_t)st.st_mtim.tv_sec * FERRY__NSEC_PER_SEC + st.st_mtim.tv_nsec;
        return p;
}

struct pending *ferry__pending_pop(struct pending_queue *q)
{
        struct pending *p;

        if (!q->count)
                return NULL;
        if (!q->heaped) {
                p = q->head;
                q->head = p->next;
                if (!q->head)
                        q->tail = NULL;
                q->count--;
                p->next = NULL;
                return p;
        }
        p = q->heap[0];
        q->heap[0] = q->heap[--q->count];
        sift_down(q, 0);
        return p;
}

/* Another worker won the race for the head of the queue: workers that list
 * the same folder queue its files in the same order, so the loser would trail
 * the winner file by file, losing every race (a worker on a mount whose
 * listing lags behind the server's never catches up). Skip a random stretch
 * of the queue, moved to its end: the workers spread over the folder. An
 * order the rule asks for is kept instead. */
void ferry__pending_skip(struct pending_queue *q, uint64_t random)
{
        size_t n;

        if (q->heaped || q->count < 2)
                return;
        n = (size_t)(random % (q->count < 4096 ? q->count : 4096));
        while (n--) {
                struct pending *p = q->head;

                q->head = p->next;
                p->next = NULL;
                q->tail->next = p;
                q->tail = p;
        }
}

void ferry__pending_clear(struct pending_queue *q)
{
        struct pending *p;

        while ((p = ferry__pending_pop(q)))
                free(p);
        free(q->heap);
        q->heap = NULL;
        q->capacity = 0;
}
