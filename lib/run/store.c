/* store.c: the record of handled files for rules that leave files in place
 * (on-success = keep), in SQLite: DIR/.ferry/state.db.
 *
 * A file counts as handled in one version: (path, inode, size, mtime). A
 * restart looks each file up and skips what was handled in its current
 * version; a file rewritten later is a new version and is handled again. The
 * record is written after the handler succeeded: a crash in between means the
 * file is handled again (at-least-once), never lost.
 *
 * Files are not claimed by rename in this mode, so only one worker may serve
 * a folder, and no worker that moves files beside it (each would handle the
 * same files): the keeper holds an exclusive flock on DIR/.ferry/keep.lock,
 * every worker that moves files a shared one (ferry__store_share). flock(2)
 * reaches the processes of one machine (and NFS's clients, where it is a
 * POSIX lock); across FUSE mounts it does not.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ferry__store {
        sqlite3 *db;
        sqlite3_stmt *lookup, *record;
        int lock_fd;
        int dir_fd; /* read-only: DIR/.ferry, held while the database is open; else -1 */
};

static const char schema[] = "PRAGMA journal_mode=WAL;"
                             "PRAGMA synchronous=NORMAL;"
                             "CREATE TABLE IF NOT EXISTS handled ("
                             " path BLOB PRIMARY KEY," /* relative to DIR; bytes, not text */
                             " ino INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
                             " outcome TEXT NOT NULL," /* done | failed */
                             " reason TEXT, at INTEGER NOT NULL);";

void ferry__store_close(struct ferry__store *s)
{
        if (!s)
                return;
        sqlite3_finalize(s->lookup);
        sqlite3_finalize(s->record);
        sqlite3_close(s->db);
        if (s->lock_fd >= 0)
                close(s->lock_fd);
        if (s->dir_fd >= 0)
                close(s->dir_fd);
        free(s);
}

int ferry__store_share(int ferry_fd, int *ret_fd)
{
        int fd = openat(ferry_fd, "keep.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
                int r = errno == EWOULDBLOCK ? -EBUSY : -errno;

                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int ferry__store_open(int ferry_fd, struct ferry__store **ret_store)
{
        struct ferry__store *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->dir_fd = -1;
        s->lock_fd = openat(ferry_fd, "keep.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (s->lock_fd < 0) {
                r = -errno;
                goto fail;
        }
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                goto fail;
        }
        /* Through the descriptor of .ferry opened and checked at start, not
         * by its path, which someone may have swapped since (db.c). */
        r = ferry__db_open(ferry_fd, "state.db", false, &s->db);
        if (r < 0)
                goto fail;
        if (sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db,
                               "SELECT 1 FROM handled WHERE path = ?1 AND ino = ?2 AND size = ?3 AND mtime_ns = ?4", -1,
                               &s->lookup, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db,
                               "INSERT OR REPLACE INTO handled (path, ino, size, mtime_ns, outcome, reason, at)"
                               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                               -1, &s->record, NULL) != SQLITE_OK) {
                r = -EIO;
                goto fail;
        }
        /* Private, as every note of ours; SQLite makes its journals with the same mode. */
        (void)fchmodat(ferry_fd, "state.db", 0600, 0);
        *ret_store = s;
        return 0;
fail:
        ferry__store_close(s);
        return r;
}

static void bind_version(sqlite3_stmt *st, const char *path, const struct ferry__version *v)
{
        sqlite3_bind_blob(st, 1, path, (int)strlen(path), SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)v->ino);
        sqlite3_bind_int64(st, 3, v->size);
        sqlite3_bind_int64(st, 4, v->mtime_ns);
}

int ferry__store_handled(struct ferry__store *s, const char *path, const struct ferry__version *v)
{
        int r;

        sqlite3_reset(s->lookup);
        bind_version(s->lookup, path, v);
        r = sqlite3_step(s->lookup);
        sqlite3_reset(s->lookup);
        return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : -EIO;
}

int ferry__store_record(struct ferry__store *s, const char *path, const struct ferry__version *v, const char *outcome,
                        const char *reason)
{
        int r;

        sqlite3_reset(s->record);
        bind_version(s->record, path, v);
        sqlite3_bind_text(s->record, 5, outcome, -1, SQLITE_STATIC);
        if (reason)
                sqlite3_bind_text(s->record, 6, reason, -1, SQLITE_TRANSIENT);
        else
                sqlite3_bind_null(s->record, 6);
        sqlite3_bind_int64(s->record, 7, (sqlite3_int64)time(NULL));
        r = sqlite3_step(s->record);
        sqlite3_reset(s->record);
        return r == SQLITE_DONE ? 0 : -EIO;
}

int ferry__store_open_readonly(const char *dir, struct ferry__store **ret_store)
{
        struct ferry__store *s = calloc(1, sizeof(*s));
        int dir_fd;

        if (!s)
                return -ENOMEM;
        s->lock_fd = -1;
        /* DIR/.ferry, never through a link; held while the database is open. */
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        s->dir_fd = dir_fd < 0 ? -1 : openat(dir_fd, ".ferry", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd >= 0)
                close(dir_fd);
        /* No lock: reading while a worker runs is what ferry status does. */
        if (s->dir_fd < 0 || ferry__db_open(s->dir_fd, "state.db", true, &s->db) < 0 ||
            sqlite3_prepare_v2(s->db, "SELECT ino, size, mtime_ns, outcome, reason, at FROM handled WHERE path = ?1",
                               -1, &s->lookup, NULL) != SQLITE_OK) {
                ferry__store_close(s);
                return -ENOENT;
        }
        *ret_store = s;
        return 0;
}

int ferry__store_count(struct ferry__store *s, const char *outcome, uint64_t *ret_count)
{
        sqlite3_stmt *st;
        int r = -EIO;

        if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM handled WHERE outcome = ?1", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, outcome, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
                *ret_count = (uint64_t)sqlite3_column_int64(st, 0);
                r = 0;
        }
        sqlite3_finalize(st);
        return r;
}

int ferry__store_get(struct ferry__store *s, const char *path, struct ferry__record *ret_record)
{
        int r;

        sqlite3_reset(s->lookup);
        sqlite3_bind_blob(s->lookup, 1, path, (int)strlen(path), SQLITE_TRANSIENT);
        r = sqlite3_step(s->lookup);
        if (r == SQLITE_ROW) {
                const unsigned char *outcome = sqlite3_column_text(s->lookup, 3);
                const unsigned char *reason = sqlite3_column_text(s->lookup, 4);

                ret_record->version.ino = (uint64_t)sqlite3_column_int64(s->lookup, 0);
                ret_record->version.size = sqlite3_column_int64(s->lookup, 1);
                ret_record->version.mtime_ns = sqlite3_column_int64(s->lookup, 2);
                snprintf(ret_record->outcome, sizeof(ret_record->outcome), "%s", outcome ? (const char *)outcome : "");
                snprintf(ret_record->reason, sizeof(ret_record->reason), "%s", reason ? (const char *)reason : "");
                ret_record->at = sqlite3_column_int64(s->lookup, 5);
        }
        sqlite3_reset(s->lookup);
        return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : -EIO;
}
