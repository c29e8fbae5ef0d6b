/* smb-write: a libsmbclient writer for the shared-folder tests: copies a local
 * file to an SMB share the way a client program would, in chunks, with pauses,
 * through one open or one open per chunk, optionally dying half-way or
 * renaming the file into place at the end.
 *
 *   smb-write [-r] [-k N] [-p MS] [-c BYTES] [-R FINAL] SRC smb://HOST/SHARE/PATH
 *     -r        reopen: open, write one chunk at its offset, close, per chunk
 *     -k N      after N chunks, SIGKILL itself (the file still open)
 *     -p MS     pause between chunks (default 0)
 *     -c BYTES  chunk size (default 65536)
 *     -R FINAL  after the last close, rename PATH to FINAL (a URL too)
 * Credentials: SMB_USER (default root), SMB_PASSWORD. Exit 0 on success. */
#include <errno.h>
#include <fcntl.h>
#include <libsmbclient.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void auth(const char *server, const char *share, char *workgroup, int workgroup_len, char *user,
                 int user_len, char *password, int password_len)
{
        const char *u = getenv("SMB_USER"), *p = getenv("SMB_PASSWORD");

        (void)server;
        (void)share;
        snprintf(workgroup, (size_t)workgroup_len, "WORKGROUP");
        snprintf(user, (size_t)user_len, "%s", u ? u : "root");
        snprintf(password, (size_t)password_len, "%s", p ? p : "");
}

static void pause_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int die(const char *what, const char *url)
{
        fprintf(stderr, "smb-write: %s %s: %s\n", what, url, strerror(errno));
        return 1;
}

int main(int argc, char **argv)
{
        long pause = 0, kill_after = -1;
        size_t chunk = 65536;
        const char *final = NULL;
        int reopen = 0, opt, fd = -1;

        while ((opt = getopt(argc, argv, "rk:p:c:R:")) != -1) {
                switch (opt) {
                case 'r': reopen = 1; break;
                case 'k': kill_after = atol(optarg); break;
                case 'p': pause = atol(optarg); break;
                case 'c': chunk = strtoul(optarg, NULL, 10); break;
                case 'R': final = optarg; break;
                default: return 2;
                }
        }
        if (argc - optind != 2 || chunk == 0) {
                fprintf(stderr, "usage: smb-write [-r] [-k N] [-p MS] [-c BYTES] [-R FINAL] SRC URL\n");
                return 2;
        }
        const char *src = argv[optind], *url = argv[optind + 1];
        FILE *in = fopen(src, "rb");
        char *buf = malloc(chunk);

        if (!in || !buf)
                return die("cannot read", src);
        if (smbc_init(auth, 0) < 0)
                return die("smbc_init", url);
        off_t offset = 0;
        for (long n = 0;; n++) {
                size_t got = fread(buf, 1, chunk, in);

                if (got == 0 && n > 0)
                        break;
                if (n > 0 && pause > 0)
                        pause_ms(pause);
                if (fd < 0) {
                        fd = smbc_open(url, O_CREAT | O_WRONLY | (n == 0 ? O_TRUNC : 0), 0644);
                        if (fd < 0)
                                return die("cannot open", url);
                        if (smbc_lseek(fd, offset, SEEK_SET) < 0)
                                return die("cannot seek", url);
                }
                for (size_t done = 0; done < got;) {
                        ssize_t w = smbc_write(fd, buf + done, got - done);

                        if (w < 0)
                                return die("cannot write", url);
                        done += (size_t)w;
                }
                offset += (off_t)got;
                if (reopen || got < chunk) {
                        if (smbc_close(fd) < 0)
                                return die("cannot close", url);
                        fd = -1;
                }
                if (kill_after >= 0 && n + 1 == kill_after)
                        raise(SIGKILL);
                if (got < chunk)
                        break;
        }
        if (fd >= 0 && smbc_close(fd) < 0)
                return die("cannot close", url);
        if (final && smbc_rename(url, final) < 0)
                return die("cannot rename", url);
        fclose(in);
        free(buf);
        return 0;
}
