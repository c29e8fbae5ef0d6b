/* next_event.h: the next event of the wanted types from a watcher, for the
 * unit tests of the watch engine. */
#ifndef FERRY_TESTS_NEXT_EVENT_H
#define FERRY_TESTS_NEXT_EVENT_H

#include <ferry.h>

/* Next event of one of the types in mask within timeout_ms; NULL when none came. */
static const struct ferry_event *next_of(struct ferry_watch *w, unsigned mask, int timeout_ms)
{
        const struct ferry_event *ev;

        while (ferry_watch_next(w, &ev, timeout_ms) == 1)
                if (ev->type & mask)
                        return ev;
        return NULL;
}

#endif
