/* event.c: the names of event types, for output and for parsing event lists. */
#include "common.h"

#include <errno.h>
#include <string.h>

static const struct {
        unsigned type;
        const char *name;
} names[] = {
        {FERRY_EVENT_CREATE, "create"},       {FERRY_EVENT_MODIFY, "modify"},
        {FERRY_EVENT_ATTRIB, "attrib"},       {FERRY_EVENT_CLOSE_WRITE, "close_write"},
        {FERRY_EVENT_DELETE, "delete"},       {FERRY_EVENT_MOVED_FROM, "moved_from"},
        {FERRY_EVENT_MOVED_TO, "moved_to"},   {FERRY_EVENT_READY, "ready"},
        {FERRY_EVENT_RESCAN, "rescan"},       {FERRY_EVENT_ROOT_GONE, "root_gone"},
        {FERRY_EVENT_ROOT_BACK, "root_back"}, {FERRY_EVENT_ERROR, "error"},
};

const char *ferry_event_type_name(unsigned type)
{
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (names[i].type == type)
                        return names[i].name;
        return NULL;
}

int ferry_event_type_parse(const char *name)
{
        if (!name)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(names[i].name, name) == 0)
                        return (int)names[i].type;
        return -EINVAL;
}
