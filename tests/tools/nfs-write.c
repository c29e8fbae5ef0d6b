/* nfs-write: a libnfs writer for the shared-folder tests: copies a local file
 * to an NFS export the way a client program would, in chunks, with pauses,
 * through one open or one open per chunk, optionally dying half-way or
 * renaming the file into place at the end.
 *
 *   nfs-write [-r] [-k N] [-p MS] [-c BYTES] [-w MAX] [-R FINAL] VERSION SERVER EXPORT SRC PATH
 *     -r        reopen: open, write one chunk at its offset, close, per chunk
 *     -k N      after N chunks, SIGKILL itself (the file still open)
 *     -p MS     pause between chunks (default 0)
 *     -c BYTES  chunk size (default 65536)
 *     -w MAX    at most MAX bytes per WRITE (libnfs 4.0 cannot encode NFSv4
 *               WRITEs above about 4 KB: use 2048 there)
 *     -R FINAL  after the last close, rename PATH to FINAL
 * PATH and FINAL are inside EXPORT (for NFSv3 the real path, for NFSv4 the
 * pseudo path). Exit 0 on success. */
#include <errno.h>
#include <fcntl.h>
#include <nfsc/libnfs.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int die(struct nfs_context *nfs, const char *what, const char *path)
{
        fprintf(stderr, "nfs-write: %s %s: %s\n", what, path, nfs ? nfs_get_error(nfs) : strerror(errno));
        return 1;
}

int main(int argc, char **argv)
{
        long pause = 0, kill_after = -1;
        size_t chunk = 65536, max_write = 0;
        const char *final = NULL;
        int reopen = 0, opt;

        while ((opt = getopt(argc, argv, "rk:p:c:w:R:")) != -1) {
                switch (opt) {
                case 'r': reopen = 1; break;
                case 'k': kill_after = atol(optarg); break;
                case 'p': pause = atol(optarg); break;
                case 'c': chunk = strtoul(optarg, NULL, 10); break;
                case 'w': max_write = strtoul(optarg, NULL, 10); break;
                case 'R': final = optarg; break;
                default: return 2;
                }
        }
        if (argc - optind != 5 || chunk == 0) {
                fprintf(stderr, "usage: nfs-write [-r] [-k N] [-p MS] [-c BYTES] [-w MAX] [-R FINAL] "
                                "VERSION SERVER EXPORT SRC PATH\n");
                return 2;
        }
        int version = atoi(argv[optind]);
        const char *server = argv[optind + 1], *export = argv[optind + 2], *src = argv[optind + 3],
                   *path = argv[optind + 4];
        if (max_write == 0 || max_write > chunk)
                max_write = chunk;
        FILE *in = fopen(src, "rb");
        char *buf = malloc(chunk);
        struct nfs_context *nfs = nfs_init_context();
        struct nfsfh *fh = NULL;

        if (!in || !buf)
                return die(NULL, "cannot read", src);
        if (!nfs)
                return die(NULL, "cannot start libnfs for", path);
        if (nfs_set_version(nfs, version) < 0)
                return die(nfs, "bad version for", path);
        if (nfs_mount(nfs, server, export) < 0)
                return die(nfs, "cannot mount", export);
        uint64_t offset = 0;
        for (long n = 0;; n++) {
                size_t got = fread(buf, 1, chunk, in);

                if (got == 0 && n > 0)
                        break;
                if (n > 0 && pause > 0)
                        pause_ms(pause);
                if (!fh) {
                        if (nfs_open2(nfs, path, O_WRONLY | (n == 0 ? O_CREAT | O_TRUNC : 0), 0644, &fh) < 0)
                                return die(nfs, "cannot open", path);
                }
                for (size_t done = 0; done < got;) {
                        size_t len = got - done < max_write ? got - done : max_write;
                        int w = nfs_pwrite(nfs, fh, offset + done, len, buf + done);

                        if (w < 0)
                                return die(nfs, "cannot write", path);
                        done += (size_t)w;
                }
                offset += got;
                if (reopen || got < chunk) {
                        if (nfs_close(nfs, fh) < 0)
                                return die(nfs, "cannot close", path);
                        fh = NULL;
                }
                if (kill_after >= 0 && n + 1 == kill_after)
                        raise(SIGKILL);
                if (got < chunk)
                        break;
        }
        if (fh && nfs_close(nfs, fh) < 0)
                return die(nfs, "cannot close", path);
        if (final && nfs_rename(nfs, path, final) < 0)
                return die(nfs, "cannot rename", path);
        nfs_destroy_context(nfs);
        fclose(in);
        free(buf);
        return 0;
}
