/* events.c: the queue of events waiting to be handed out by ferry_watch_next().
 *
 * Each queued event is one allocation holding the public struct and copies of
 * its strings. The event handed out last stays alive until the next call, so
 * callers may borrow its strings without copying them.
 */
#include "engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ferry__queued {
        struct ferry__queued *next;
        struct ferry_event event;
        char strings[];
};

int ferry__queue_push(struct ferry_watch *w, unsigned type, unsigned flags, const struct ferry__root *root,
                      const char *path, size_t len, const char *old_path, size_t old_len, int error, int64_t size)
{
        struct ferry__event_queue *q = &w->queue;
        size_t need = len + 1 + (old_path ? old_len + 1 : 0);
        struct ferry__queued *item = malloc(sizeof(*item) + need);

        if (!item)
                return -ENOMEM;
        item->next = NULL;
        item->event = (struct ferry_event){
                .type = type,
                .flags = flags,
                .path = item->strings,
                .path_len = len,
                .root = root ? root->given : "",
                .error = error,
                .size = size,
        };
        memcpy(item->strings, path, len);
        item->strings[len] = '\0';
        if (old_path) {
                char *copy = item->strings + len + 1;

                memcpy(copy, old_path, old_len);
                copy[old_len] = '\0';
                item->event.old_path = copy;
                item->event.old_path_len = old_len;
        }
        if (q->tail)
                q->tail->next = item;
        else
                q->head = item;
        q->tail = item;
        return 0;
}

bool ferry__queue_pop(struct ferry__event_queue *q, const struct ferry_event **ret_event)
{
        struct ferry__queued *item = q->head;

        free(q->current);
        q->current = NULL;
        if (!item)
                return false;
        q->head = item->next;
        if (!q->head)
                q->tail = NULL;
        q->current = item;
        *ret_event = &item->event;
        return true;
}

void ferry__queue_done(struct ferry__event_queue *q)
{
        const struct ferry_event *unused;

        while (ferry__queue_pop(q, &unused))
                ;
        free(q->current);
        q->current = NULL;
}
