/* dedup.c: the record of contents handled, for rules with dedup = sha256.
 *
 * One SQLite file a host, DIR/.ferry/dedup/HOST.db (HOST made safe as the
 * audit trail's day files make it): a worker writes only its own host's
 * file, and looks a content up in every host's file of the folder, the
 * others opened read-only. SQLite's locks are safe between the workers of
 * one machine on a local disk; across hosts on a network file system they
 * are not to be trusted, which is why no two hosts write one file. There,
 * each file keeps a rollback journal: WAL needs memory that the hosts of a
 * network file system do not share.
 *
 * A row says that the rule's handler succeeded with a content:
 *
 *   rule        the rule's name (two rules of a folder handle files apart)
 *   sha256      the content's SHA-256, 32 bytes
 *   name        the file's path relative to DIR, bytes
 *   size        its size
 *   handled_at  CLOCK_REALTIME ns when its handler succeeded
 *
 * It is written after the handler succeeded: a crash in between means the
 * next copy is handled again (at-least-once), never skipped. Any error
 * reading another host's file counts as "not found", said once a run.
 */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEDUP_DIR "dedup"
#define BUSY_MS 200 /* another worker of this host writing its row: waited for this long at most */

static const char schema[] = "PRAGMA synchronous=NORMAL;"
                             "CREATE TABLE IF NOT EXISTS contents ("
                             " rule TEXT NOT NULL, sha256 BLOB NOT NULL, name BLOB NOT NULL,"
                             " size INTEGER NOT NULL, handled_at INTEGER NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS contents_by_hash ON contents (sha256, rule);";

static const char find_sql[] = "SELECT name, handled_at FROM contents WHERE sha256 = ?1 AND rule = ?2"
                               " AND handled_at >= ?3 ORDER BY handled_at DESC LIMIT 1";

/* Another host's record, read-only. */
struct peer {
        char *name; /* its file's name in DIR/.ferry/dedup */
        sqlite3 *db;
        sqlite3_stmt *find;
        bool warned; /* an error reading it was said */
};

struct ferry__dedup {
        int dir_fd;             /* DIR/.ferry/dedup */
        char own[NAME_MAX + 1]; /* HOST.db */
        sqlite3 *db;            /* ours */
        sqlite3_stmt *find, *add, *prune;
        bool warned; /* an error reading ours was said */
        struct peer *peers;
        size_t peer_count;
        struct timespec listed; /* the folder's mtime when it was last listed */
        bool ever_listed;
};

/* Opens NAME in the record's folder, through its descriptor (db.c), and
 * reads its schema: a file that is not a database is refused at once. */
static int open_db(struct ferry__dedup *d, const char *name, bool read_only, sqlite3 **ret_db)
{
        sqlite3 *db = NULL;
        int r = ferry__db_open(d->dir_fd, name, read_only, &db);

        if (r < 0)
                return r;
        if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                return -EIO;
        }
        sqlite3_busy_timeout(db, BUSY_MS);
        *ret_db = db;
        return 0;
}

void ferry__dedup_close(struct ferry__dedup *d)
{
        if (!d)
                return;
        for (size_t i = 0; i < d->peer_count; i++) {
                sqlite3_finalize(d->peers[i].find);
                sqlite3_close(d->peers[i].db);
                free(d->peers[i].name);
        }
        free(d->peers);
        sqlite3_finalize(d->find);
        sqlite3_finalize(d->add);
        sqlite3_finalize(d->prune);
        sqlite3_close(d->db);
        if (d->dir_fd >= 0)
                close(d->dir_fd);
        free(d);
}

int ferry__dedup_open(struct ferry__workarea *wa, bool remote, struct ferry__dedup **ret_dedup)
{
        struct ferry__dedup *d = calloc(1, sizeof(*d));
        char host[256], *path = NULL;
        int r;

        if (!d)
                return -ENOMEM;
        d->dir_fd = -1;
        if (asprintf(&path, "%s/.ferry/" DEDUP_DIR, wa->dir) < 0) {
                free(d);
                return -ENOMEM;
        }
        r = ferry__trusted_dir(&wa->trust, wa->ferry_fd, DEDUP_DIR, 0700, true, path, &d->dir_fd);
        free(path);
        if (r < 0)
                goto fail;
        snprintf(host, sizeof(host), "%s", wa->host);
        if (!host[0] && gethostname(host, sizeof(host) - 1) < 0)
                snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        ferry__audit_host_name(host, d->own, sizeof(d->own) - 3);
        strcat(d->own, ".db");
        r = open_db(d, d->own, false, &d->db);
        if (r < 0)
                goto fail;
        (void)fchmodat(d->dir_fd, d->own, 0600, 0);
        if (sqlite3_exec(d->db, remote ? "PRAGMA journal_mode=DELETE" : "PRAGMA journal_mode=WAL", NULL, NULL, NULL) !=
                    SQLITE_OK ||
            sqlite3_exec(d->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(d->db, find_sql, -1, &d->find, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(d->db,
                               "INSERT INTO contents (rule, sha256, name, size, handled_at)"
                               " VALUES (?1, ?2, ?3, ?4, ?5)",
                               -1, &d->add, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(d->db, "DELETE FROM contents WHERE rule = ?1 AND handled_at < ?2", -1, &d->prune,
                               NULL) != SQLITE_OK) {
                r = -EIO;
                goto fail;
        }
        *ret_dedup = d;
        return 0;
fail:
        ferry__dedup_close(d);
        return r;
}

int ferry__dedup_open_readonly(const char *dir, struct ferry__dedup **ret_dedup)
{
        struct ferry__dedup *d = calloc(1, sizeof(*d));
        int dir_fd, ferry_fd;

        if (!d)
                return -ENOMEM;
        /* DIR/.ferry/dedup, never through a link; every file in it is another's. */
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ferry_fd = dir_fd < 0 ? -1 : openat(dir_fd, ".ferry", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        d->dir_fd = ferry_fd < 0 ? -1 : openat(ferry_fd, DEDUP_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd >= 0)
                close(dir_fd);
        if (ferry_fd >= 0)
                close(ferry_fd);
        if (d->dir_fd < 0) {
                int r = errno == ENOTDIR || errno == ELOOP ? -ENOTDIR : -ENOENT;

                free(d);
                return r;
        }
        *ret_dedup = d;
        return 0;
}

/* The other hosts' files, listed again when the folder changed. */
static void list_peers(struct ferry__dedup *d)
{
        struct stat st;
        struct dirent *de;
        DIR *listing;
        int fd;

        if (fstat(d->dir_fd, &st) < 0 ||
            (d->ever_listed && st.st_mtim.tv_sec == d->listed.tv_sec && st.st_mtim.tv_nsec == d->listed.tv_nsec))
                return;
        fd = openat(d->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        listing = fd < 0 ? NULL : fdopendir(fd);
        if (!listing) {
                if (fd >= 0)
                        close(fd);
                return;
        }
        d->listed = st.st_mtim;
        d->ever_listed = true;
        while ((de = readdir(listing))) {
                size_t len = strlen(de->d_name);
                struct stat file_st;
                struct peer *bigger;
                bool known = false;

                if (de->d_name[0] == '.' || len < 4 || strcmp(de->d_name + len - 3, ".db") != 0 ||
                    strcmp(de->d_name, d->own) == 0 ||
                    fstatat(d->dir_fd, de->d_name, &file_st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(file_st.st_mode))
                        continue;
                for (size_t i = 0; i < d->peer_count && !known; i++)
                        known = strcmp(d->peers[i].name, de->d_name) == 0;
                if (known)
                        continue;
                bigger = realloc(d->peers, (d->peer_count + 1) * sizeof(*bigger));
                if (!bigger)
                        break;
                d->peers = bigger;
                d->peers[d->peer_count] = (struct peer){.name = strdup(de->d_name)};
                if (d->peers[d->peer_count].name)
                        d->peer_count++;
        }
        closedir(listing);
}

/* Binds and steps find; 1 with the hit, 0 when none, -EIO. */
static int find_in(sqlite3_stmt *find, const char *rule, const uint8_t sha256[FERRY__SHA256_SIZE], int64_t since,
                   struct ferry__dedup_hit *hit)
{
        int r;

        sqlite3_reset(find);
        sqlite3_bind_blob(find, 1, sha256, FERRY__SHA256_SIZE, SQLITE_STATIC);
        sqlite3_bind_text(find, 2, rule, -1, SQLITE_STATIC);
        sqlite3_bind_int64(find, 3, since);
        r = sqlite3_step(find);
        if (r == SQLITE_ROW) {
                int64_t at = sqlite3_column_int64(find, 1);

                if (at > hit->at) {
                        const void *name = sqlite3_column_blob(find, 0);
                        int len = sqlite3_column_bytes(find, 0);

                        if (len >= (int)sizeof(hit->name))
                                len = (int)sizeof(hit->name) - 1;
                        if (len > 0 && name)
                                memcpy(hit->name, name, (size_t)len);
                        hit->name[len > 0 ? len : 0] = '\0';
                        hit->at = at;
                }
        }
        sqlite3_reset(find);
        return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : -EIO;
}

int ferry__dedup_find(struct ferry__dedup *d, const char *rule, const uint8_t sha256[FERRY__SHA256_SIZE], int64_t since,
                      struct ferry__dedup_hit *ret_hit, char *warning, size_t size)
{
        struct ferry__dedup_hit hit = {.at = INT64_MIN};
        bool found = false;
        int r;

        if (warning && size)
                warning[0] = '\0';
        if (d->db) { /* not opened read-only */
                r = find_in(d->find, rule, sha256, since, &hit);
                if (r < 0 && !d->warned && warning) {
                        d->warned = true;
                        snprintf(warning, size, "cannot read .ferry/" DEDUP_DIR "/%s: %s", d->own,
                                 sqlite3_errmsg(d->db));
                }
                found = r > 0;
        }
        list_peers(d);
        for (size_t i = 0; i < d->peer_count; i++) {
                struct peer *p = &d->peers[i];

                r = 0;
                if (!p->db) {
                        /* Opened at its first use; one that cannot be (a host
                         * making it this moment) is tried again at the next. */
                        r = open_db(d, p->name, true, &p->db);
                        if (r == 0 && sqlite3_prepare_v2(p->db, find_sql, -1, &p->find, NULL) != SQLITE_OK)
                                r = -EIO;
                        if (r < 0) {
                                sqlite3_close(p->db);
                                p->db = NULL;
                        }
                }
                if (r == 0)
                        r = find_in(p->find, rule, sha256, since, &hit);
                if (r > 0)
                        found = true;
                if (r < 0 && !p->warned && warning && !warning[0]) {
                        p->warned = true;
                        snprintf(warning, size,
                                 "cannot read another host's record .ferry/" DEDUP_DIR "/%s (%s): its contents count "
                                 "as not handled",
                                 p->name, p->db ? sqlite3_errmsg(p->db) : "cannot open it");
                }
        }
        if (found)
                *ret_hit = hit;
        return found;
}

int ferry__dedup_add(struct ferry__dedup *d, const char *rule, const uint8_t sha256[FERRY__SHA256_SIZE],
                     const char *name, int64_t size, int64_t at)
{
        int r;

        sqlite3_reset(d->add);
        sqlite3_bind_text(d->add, 1, rule, -1, SQLITE_STATIC);
        sqlite3_bind_blob(d->add, 2, sha256, FERRY__SHA256_SIZE, SQLITE_STATIC);
        sqlite3_bind_blob(d->add, 3, name, (int)strlen(name), SQLITE_STATIC);
        sqlite3_bind_int64(d->add, 4, size);
        sqlite3_bind_int64(d->add, 5, at);
        r = sqlite3_step(d->add);
        sqlite3_reset(d->add);
        return r == SQLITE_DONE ? 0 : r == SQLITE_BUSY ? -EBUSY : -EIO;
}

int ferry__dedup_prune(struct ferry__dedup *d, const char *rule, int64_t before)
{
        int r;

        sqlite3_reset(d->prune);
        sqlite3_bind_text(d->prune, 1, rule, -1, SQLITE_STATIC);
        sqlite3_bind_int64(d->prune, 2, before);
        r = sqlite3_step(d->prune);
        sqlite3_reset(d->prune);
        return r == SQLITE_DONE ? sqlite3_changes(d->db) : -EIO;
}

const char *ferry__dedup_error(const struct ferry__dedup *d)
{
        return sqlite3_errmsg(d->db);
}
