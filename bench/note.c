/* note.c: the trivial handler of the benchmark. Usage: note FIFO PATH...
 * Writes each PATH and a newline to FIFO in one write(2) per call (atomic
 * for up to PIPE_BUF bytes, so handlers running at once never mix their
 * lines), then exits. The benchmark's reader takes the time of the line as
 * the time the handler started. Without a reader on FIFO it fails at once. With many PATHs (ferry run --batch) the
 * lines go in writes of at most PIPE_BUF bytes, cut between lines. */
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        if (argc < 3)
                return 2;
        /* Non-blocking open: with no reader left, fail rather than hang. */
        int fd = open(argv[1], O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || fcntl(fd, F_SETFL, 0) < 0)
                return 1;
        char buf[PIPE_BUF];
        size_t used = 0;
        for (int i = 2; i < argc; i++) {
                size_t length = strlen(argv[i]);
                if (length + 1 > sizeof buf)
                        continue;
                if (used + length + 1 > sizeof buf) {
                        if (write(fd, buf, used) != (ssize_t)used)
                                return 1;
                        used = 0;
                }
                memcpy(buf + used, argv[i], length);
                buf[used + length] = '\n';
                used += length + 1;
        }
        if (used && write(fd, buf, used) != (ssize_t)used)
                return 1;
        return 0;
}
