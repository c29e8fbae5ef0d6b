/* marker.c: done-markers that say what a complete file is: its size and its
 * SHA-256 (Nettle), so that a receiver can tell a complete file from one whose
 * writer died half-way, which no event and no rename can.
 *
 * Format, one "key value" per line, written after the data file is complete:
 *
 *   ferry-marker 1
 *   size 1234
 *   sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
 *
 * An empty marker (touch X.done) carries no claim and checks nothing.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void ferry__sha256_hex(const uint8_t digest[FERRY__SHA256_SIZE], char hex[2 * FERRY__SHA256_SIZE + 1])
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < FERRY__SHA256_SIZE; i++) {
                hex[2 * i] = digits[digest[i] >> 4];
                hex[2 * i + 1] = digits[digest[i] & 15];
        }
        hex[2 * FERRY__SHA256_SIZE] = '\0';
}

int ferry__sha256_file(const char *path, uint8_t digest[FERRY__SHA256_SIZE], uint64_t *ret_size)
{
        struct sha256_ctx ctx;
        char buffer[64 * 1024];
        uint64_t size = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        struct stat st;

        if (fd < 0)
                return -errno;
        /* Only a regular file: a fifo someone named so would block the loop. */
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EINVAL;
        }
        sha256_init(&ctx);
        for (;;) {
                ssize_t n = read(fd, buffer, sizeof(buffer));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
                if (n == 0)
                        break;
                sha256_update(&ctx, (size_t)n, (const uint8_t *)buffer);
                size += (uint64_t)n;
        }
        close(fd);
        sha256_digest(&ctx, FERRY__SHA256_SIZE, digest);
        *ret_size = size;
        return 0;
}

int ferry__marker_format(char *buf, size_t size, uint64_t file_size, const uint8_t digest[FERRY__SHA256_SIZE])
{
        char hex[2 * FERRY__SHA256_SIZE + 1];
        int n;

        ferry__sha256_hex(digest, hex);
        n = snprintf(buf, size, "ferry-marker 1\nsize %" PRIu64 "\nsha256 %s\n", file_size, hex);
        return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

int ferry__marker_read(const char *marker_path, struct ferry__marker_claim *ret)
{
        return ferry__marker_read_at(AT_FDCWD, marker_path, ret, NULL);
}

int ferry__marker_read_at(int dir_fd, const char *name, struct ferry__marker_claim *ret, struct stat *ret_st)
{
        struct ferry__marker_claim m = {0};
        char text[512];
        struct stat st;
        ssize_t n;
        int fd;

        /* A marker is anyone's file: never a link, a fifo or a device. */
        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, text, sizeof(text) - 1) : -1;
        close(fd);
        if (n < 0)
                return -EIO;
        if (ret_st)
                *ret_st = st;
        text[n] = '\0';
        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (sscanf(line, "size %" SCNu64, &m.size) == 1)
                        m.has_size = true;
                else if (strncmp(line, "sha256 ", 7) == 0 && strlen(line + 7) == 2 * FERRY__SHA256_SIZE)
                        memcpy(m.hex, line + 7, sizeof(m.hex));
        }
        *ret = m;
        return 0;
}

int ferry__marker_check(const char *marker_path, const char *data_path)
{
        char got_hex[2 * FERRY__SHA256_SIZE + 1];
        uint8_t digest[FERRY__SHA256_SIZE];
        struct ferry__marker_claim m;
        uint64_t got_size;
        int r = ferry__marker_read(marker_path, &m);

        if (r < 0)
                return r;
        if (!m.has_size && !m.hex[0])
                return 0; /* a plain marker: no claim to check */
        if (m.has_size) {
                struct stat st;

                if (lstat(data_path, &st) < 0)
                        return -errno;
                if ((uint64_t)st.st_size != m.size)
                        return -EBADMSG;
        }
        if (!m.hex[0])
                return 0;
        r = ferry__sha256_file(data_path, digest, &got_size);
        if (r < 0)
                return r;
        ferry__sha256_hex(digest, got_hex);
        if (strcasecmp(got_hex, m.hex) != 0 || (m.has_size && got_size != m.size))
                return -EBADMSG;
        return 0;
}
