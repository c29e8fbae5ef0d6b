/* common.h: what every layer of libferry shares: time and durations, a hash
 * table, versions of files and who writes them, every process's open files,
 * which file system a path is on, folders ferry trusts, and done-markers.
 * Nothing here knows the watcher or the runner.
 */
#ifndef FERRY_COMMON_H
#define FERRY_COMMON_H

#include "ferry.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define FERRY__NSEC_PER_MSEC INT64_C(1000000)
#define FERRY__NSEC_PER_SEC INT64_C(1000000000)
#define FERRY__FOREVER INT64_MAX

/* ---- time.c: the monotonic and wall clocks, durations --------------------- */

int64_t ferry__now(void);
/* CLOCK_REALTIME in ns: for times compared with files' times, or kept. */
int64_t ferry__realtime(void);
/* "250ms", "1.5s", "2m30s", "1h05m". */
int ferry__format_duration(int64_t ns, char *buf, size_t size);

/* ---- hash.c: intrusive chained hash table --------------------------------- */

/* Embedded in whatever the table holds; the table never allocates per item. */
struct ferry__hash_node {
        struct ferry__hash_node *next;
        uint32_t hash;
};

struct ferry__hash {
        struct ferry__hash_node **buckets;
        size_t bucket_count; /* a power of two, or 0 before the first insert */
        size_t count;
};

int ferry__hash_insert(struct ferry__hash *h, struct ferry__hash_node *node, uint32_t hash);
void ferry__hash_remove(struct ferry__hash *h, struct ferry__hash_node *node);
/* First node of the chain that may hold hash; walk it with ->next, comparing ->hash. */
struct ferry__hash_node *ferry__hash_chain(const struct ferry__hash *h, uint32_t hash);
void ferry__hash_done(struct ferry__hash *h);
uint32_t ferry__hash_bytes(const void *data, size_t size, uint64_t seed);
/* ---- fs.c: which file system a path is on ------------------------------------ */

/* Whether path is on a network or FUSE file system; name gets its type. */
bool ferry__fs_is_remote(const char *path, char *name, size_t size);

/* ---- versions of a file ---------------------------------------------------- */

/* Identity of one version of a file's content, as far as stat tells. */
struct ferry__version {
        uint64_t ino;
        int64_t size;
        int64_t mtime_ns;
};

static inline bool ferry__same_version(const struct ferry__version *a, const struct ferry__version *b)
{
        return a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

/* ---- probe.c --------------------------------------------------------------- */

enum { FERRY__NO_WRITER = 0, FERRY__WRITER_OPEN = 1 };

/* Whether any process holds path open for writing, and its version. Returns
 * FERRY__NO_WRITER, FERRY__WRITER_OPEN, -ENOENT when it cannot be examined
 * (gone), or another -errno when the kernel cannot tell about writers (not
 * the owner, no lease support, not a regular file). Except for -ENOENT,
 * *ret_version is filled. */
int ferry__writers_check(const char *path, struct ferry__version *ret_version);
/* 1 when every process that has path open for writing is a file server
 * (nfs-ganesha, smbd, sftp-server, ...) or none shows (a kernel server such
 * as nfsd), 0 when a local program writes it; -errno. Reads /proc: slow. */
int ferry__writers_are_servers(const char *path);
struct stat;
void ferry__version_from_stat(const struct stat *st, struct ferry__version *ret_version);
/* lstat of path as a version; *ret_is_dir (may be NULL) says whether it is a directory. */
int ferry__stat_version(const char *path, struct ferry__version *ret_version, bool *ret_is_dir);
/* ---- proc.c: every process's open files ----------------------------------- */

#include <stdio.h>
/* Calls fd_cb(pid, fd, data) for each open fd of each process that process_cb
 * (NULL: every one) accepts, until a callback returns nonzero; returns that
 * value, 0 once all were seen, -errno when /proc cannot be listed. */
int ferry__proc_each_fd(bool (*process_cb)(int pid, void *data), int (*fd_cb)(int pid, int fd, void *data), void *data);
/* /proc/PID/fdinfo/FD opened for reading, or NULL (errno). */
FILE *ferry__proc_fdinfo(int pid, int fd);
/* ---- trust.c: folders ferry trusts, and files beneath them --------------- */

#include <sys/stat.h>
/* What is known of the file system ferry's state lives on, and why the last
 * check failed (one line that names the path and the fix). */
struct ferry__trust {
        bool learned;    /* owner and modes_kept were probed */
        uid_t owner;     /* what this file system reports as the owner of what we make */
        bool modes_kept; /* it keeps the modes we ask for */
        char why[768];
};
/* A relative path with no "..", "." or empty part and no leading slash. */
bool ferry__relative_is_clean(const char *relative);
/* Opens relative beneath dir_fd, following no link and never leaving it
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a walk by hand);
 * -ELOOP when a link stands on the way. */
int ferry__open_beneath(int dir_fd, const char *relative, int flags, int *ret_fd);
/* Makes and opens the folders of relative (NULL: dir_fd itself) beneath
 * dir_fd, a folder only we can write; *ret_fd is a new descriptor. */
int ferry__mkdirs_beneath(int dir_fd, const char *relative, mode_t mode, int *ret_fd);
/* Writes a private (0600) file through a new temporary name and a rename. */
int ferry__write_note(int dir_fd, const char *name, const char *text, size_t len);
/* Reads a small regular file (never a link, fifo or device); NUL-terminated. */
ssize_t ferry__read_note(int dir_fd, const char *name, char *buffer, size_t size);
/* renameat(2) that never replaces anything, also where RENAME_NOREPLACE is refused. */
int ferry__rename_noreplace(int from_fd, const char *from, int to_fd, const char *to);
/* Whether fd is a folder ferry may trust: owned by its user, writable by
 * nobody else; -EPERM or -ENOTDIR with t->why. probe_dir_fd: where a file
 * may be made, once, to learn how this file system reports owners and modes. */
int ferry__trust_check(struct ferry__trust *t, int fd, int probe_dir_fd, const char *path);
/* Makes (mode) or opens the folder name in parent_fd, never through a link,
 * and checks it as ferry__trust_check does; ours: set its mode to mode. */
int ferry__trusted_dir(struct ferry__trust *t, int parent_fd, const char *name, mode_t mode, bool ours,
                       const char *path, int *ret_fd);
/* Opens a folder an administrator named, following only links that root or
 * ferry's user made, making missing folders with create_mode (0: never). */
int ferry__open_admin_dir(struct ferry__trust *t, const char *path, mode_t create_mode, int *ret_fd);
/* ---- marker.c: done-markers with size and SHA-256 --------------------------- */

#define FERRY__SHA256_SIZE 32

/* ---- hasher.c: SHA-256 of files, off the event loop --------------------------- */

struct ferry__hasher;
/* A hashing finished: result 0 (digest and size hold), -EFBIG (more than
 * its limit), or -errno; owner as given to ferry__hasher_add. */
typedef void (*ferry__hashed_cb)(void *userdata, void *owner, int result, const uint8_t digest[FERRY__SHA256_SIZE],
                                 uint64_t size);
/* Starts the hasher's thread. */
int ferry__hasher_new(struct ferry__hasher **ret_hasher);
/* Readable when a hashing finished: for the caller's epoll set. */
int ferry__hasher_fd(const struct ferry__hasher *h);
/* Hashes fd (taken, also on failure; closed once done) for owner; reading
 * stops past limit bytes (UINT64_MAX: none). */
int ferry__hasher_add(struct ferry__hasher *h, int fd, uint64_t limit, void *owner);
/* owner goes away: the results of its hashings are dropped. NULL-safe. */
void ferry__hasher_forget(struct ferry__hasher *h, const void *owner);
/* Calls done_cb for each finished hashing whose owner was not forgotten. NULL-safe. */
void ferry__hasher_collect(struct ferry__hasher *h, ferry__hashed_cb done_cb, void *userdata);
/* Stops the thread (between two slices), drops what is out. NULL-safe. */
void ferry__hasher_free(struct ferry__hasher *h);

int ferry__sha256_file(const char *path, uint8_t digest[FERRY__SHA256_SIZE], uint64_t *ret_size);
void ferry__sha256_hex(const uint8_t digest[FERRY__SHA256_SIZE], char hex[2 * FERRY__SHA256_SIZE + 1]);
/* The marker's text for a file of file_size bytes and that digest; returns its length. */
int ferry__marker_format(char *buf, size_t size, uint64_t file_size, const uint8_t digest[FERRY__SHA256_SIZE]);
/* What a marker says of its file; an empty hex and no size: nothing. */
struct ferry__marker_claim {
        bool has_size;
        uint64_t size;
        char hex[2 * FERRY__SHA256_SIZE + 1];
};
/* Reads a marker (only a regular file, never through a link). */
int ferry__marker_read(const char *marker_path, struct ferry__marker_claim *ret);
/* The same for name in dir_fd; *ret_st (may be NULL): the marker's stat. */
int ferry__marker_read_at(int dir_fd, const char *name, struct ferry__marker_claim *ret, struct stat *ret_st);
/* 0 when the marker carries no claim or its claims (size, sha256) hold for the
 * data file, -EBADMSG when they do not, another -errno when it cannot tell.
 * Reads the whole file at once: the watcher checks off its loop (verify.c). */
int ferry__marker_check(const char *marker_path, const char *data_path);
#endif
