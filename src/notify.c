/* notify.c: telling systemd how `ferry run` is doing: the notification
 * protocol of sd_notify(3), spoken without libsystemd.
 *
 * The protocol is one datagram per message on the AF_UNIX socket named by
 * $NOTIFY_SOCKET, holding newline-separated VARIABLE=VALUE assignments
 * (READY=1, STATUS=..., STOPPING=1, WATCHDOG=1, ...). A path that starts with
 * '@' names a socket in the abstract namespace. systemd learns the sender's
 * pid from the kernel (SCM_CREDENTIALS), so nothing else goes with it.
 *
 * That is a few lines of code, so ferry keeps libsystemd out: the same binary
 * runs where systemd is absent (containers, other init systems), where
 * $NOTIFY_SOCKET is simply not set and every call here does nothing.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* Reads a positive decimal number; false for anything else. */
static bool parse_u64(const char *text, uint64_t *ret_value)
{
        char *end;
        uintmax_t value;

        if (!text || *text < '0' || *text > '9')
                return false;
        errno = 0;
        value = strtoumax(text, &end, 10);
        if (*end || errno == ERANGE || value == 0 || value > UINT64_MAX)
                return false;
        *ret_value = value;
        return true;
}

/* The watchdog interval systemd asks for: $WATCHDOG_USEC, when $WATCHDOG_PID
 * is unset or names this process (a variable inherited by some other process
 * is not meant for it), as sd_watchdog_enabled(3) reads them. */
static int64_t watchdog_from_environment(void)
{
        const char *pid_text = getenv("WATCHDOG_PID");
        uint64_t usec, pid;

        if (!parse_u64(getenv("WATCHDOG_USEC"), &usec) || usec > INT64_MAX / 1000)
                return 0;
        if (pid_text && (!parse_u64(pid_text, &pid) || pid != (uint64_t)getpid()))
                return 0;
        return (int64_t)usec * 1000;
}

int notify_open(struct notifier *n)
{
        const char *path = getenv("NOTIFY_SOCKET");
        size_t len = path ? strlen(path) : 0;
        /* A send waits at most this long for a busy systemd, so that a stuck
         * manager cannot stop the loop that hands out files. */
        const struct timeval send_timeout = {.tv_sec = 1};

        *n = (struct notifier){.fd = -1};
        if (!path)
                return 0;
        if ((path[0] != '/' && path[0] != '@') || len < 2 || len > sizeof(n->address.sun_path)) {
                cli_error("NOTIFY_SOCKET=%s is not an AF_UNIX socket path; systemd will not hear from ferry", path);
                return -EAFNOSUPPORT;
        }
        n->address.sun_family = AF_UNIX;
        memcpy(n->address.sun_path, path, len);
        if (path[0] == '@')
                n->address.sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL */
        n->address_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (n->fd < 0) {
                int e = errno;

                cli_error("cannot create a socket for NOTIFY_SOCKET: %s; systemd will not hear from ferry",
                          strerror(e));
                return -e;
        }
        (void)setsockopt(n->fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
        n->watchdog_ns = watchdog_from_environment();
        /* As sd_notify(3) does when asked: what was meant for ferry is not
         * passed on to the processes it starts. */
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        return 1;
}

void notify_close(struct notifier *n)
{
        if (n->fd >= 0)
                close(n->fd);
        n->fd = -1;
}

int notify_send(struct notifier *n, const char *format, ...)
{
        char message[4096];
        va_list ap;
        ssize_t sent;
        int len;

        if (n->fd < 0)
                return 0;
        va_start(ap, format);
        len = vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);
        if (len < 0)
                return -EINVAL;
        if ((size_t)len >= sizeof(message))
                len = sizeof(message) - 1; /* only a STATUS= text can be that long: cut it */
        do
                sent = sendto(n->fd, message, (size_t)len, MSG_NOSIGNAL, (const struct sockaddr *)&n->address,
                              n->address_len);
        while (sent < 0 && errno == EINTR);
        if (sent < 0) {
                int e = errno;

                /* Said once: a manager that went away stays away, and the
                 * files are handled all the same. */
                if (!n->failed)
                        cli_error("cannot notify systemd through NOTIFY_SOCKET: %s", strerror(e));
                n->failed = true;
                return -e;
        }
        n->failed = false;
        return 1;
}

uint64_t notify_monotonic_usec(void)
{
        return (uint64_t)cli_now() / 1000;
}
