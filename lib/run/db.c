/* db.c: SQLite databases opened through a folder's held descriptor.
 *
 * ferry keeps its records (state.db, dedup/HOST.db) in folders it opened
 * and checked once, and works through those descriptors ever after: the
 * watched folder is someone else's, and a path through it may lead
 * elsewhere by the time it is used. SQLite opens files by name, so the
 * name given is /proc/self/fd/N/NAME: the kernel follows N's magic link to
 * the folder held, whatever its path is now. But SQLite's own unix VFS
 * first turns every name into a full path in user space, reading the link
 * (the folder's path as a string) and opening by that string: a window in
 * which a swapped folder leads its database, journal and WAL files
 * anywhere. So the names go through a VFS of ours that is SQLite's unix VFS
 * except that a /proc/self/fd/ name is kept as it is.
 */
#include "run.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_PREFIX "/proc/self/fd/"

static sqlite3_vfs vfs;
static sqlite3_vfs *base;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered = SQLITE_ERROR;

static int full_pathname(sqlite3_vfs *v, const char *name, int size, char *out)
{
        size_t len = strlen(name);

        if (strncmp(name, FD_PREFIX, strlen(FD_PREFIX)) != 0)
                return base->xFullPathname(v, name, size, out);
        if (size <= 0 || len >= (size_t)size)
                return SQLITE_CANTOPEN;
        memcpy(out, name, len + 1);
        return SQLITE_OK;
}

static void register_vfs(void)
{
        base = sqlite3_vfs_find("unix");
        if (!base)
                return;
        vfs = *base;
        vfs.zName = "ferry-fd";
        vfs.pNext = NULL;
        vfs.xFullPathname = full_pathname;
        registered = sqlite3_vfs_register(&vfs, 0);
}

int ferry__db_open(int dir_fd, const char *name, bool read_only, sqlite3 **ret_db)
{
        int flags = SQLITE_OPEN_NOMUTEX |
                    (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        char path[sizeof(FD_PREFIX) + 16 + NAME_MAX];
        sqlite3 *db = NULL;
        int r;

        if (dir_fd < 0 || !name[0] || strchr(name, '/') ||
            snprintf(path, sizeof(path), FD_PREFIX "%d/%s", dir_fd, name) >= (int)sizeof(path))
                return -EINVAL;
        (void)pthread_once(&once, register_vfs);
        if (registered != SQLITE_OK)
                return -ENOSYS;
        r = sqlite3_open_v2(path, &db, flags, "ferry-fd");
        if (r != SQLITE_OK) {
                r = sqlite3_errcode(db) == SQLITE_CANTOPEN ? -ENOENT : -EIO;
                sqlite3_close(db);
                return r;
        }
        *ret_db = db;
        return 0;
}
