/* keeper.c: a small process that makes handlers' process groups die with ferry.
 *
 * A handler dies with ferry (PR_SET_PDEATHSIG), but what it started in its
 * process group would live on and could still work on a file that the next
 * ferry hands out again. The keeper is forked once per runner, sits in a
 * process group of its own (a kill of ferry's group spares it), and is told
 * over a socket which groups are running. When the socket ends without a
 * goodbye, ferry died: the keeper kills every group it still knows.
 *
 * Messages are one record each (SOCK_SEQPACKET): "+PGID", "-PGID", "bye".
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEPER_MAX_GROUPS 4096

static _Noreturn void keeper_main(int fd)
{
        static pid_t groups[KEEPER_MAX_GROUPS];
        size_t count = 0;
        sigset_t none;

        (void)setpgid(0, 0);
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        /* SIGINT from a terminal goes to ferry's group, not here; SIGTERM is ignored too:
         * the keeper ends when ferry does. */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        for (;;) {
                char message[32];
                ssize_t n = recv(fd, message, sizeof(message) - 1, 0);
                long pgid;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break; /* ferry is gone */
                message[n] = '\0';
                if (strcmp(message, "bye") == 0)
                        _exit(0);
                pgid = strtol(message + 1, NULL, 10);
                if (pgid <= 1)
                        continue;
                if (message[0] == '+' && count < KEEPER_MAX_GROUPS) {
                        groups[count++] = (pid_t)pgid;
                } else if (message[0] == '-') {
                        for (size_t i = 0; i < count; i++)
                                if (groups[i] == (pid_t)pgid) {
                                        groups[i] = groups[--count];
                                        break;
                                }
                }
        }
        for (size_t i = 0; i < count; i++)
                (void)kill(-groups[i], SIGKILL);
        _exit(0);
}

int ferry__keeper_start(struct ferry__keeper *k)
{
        int sv[2];
        pid_t pid;

        k->fd = -1;
        k->pid = 0;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;

                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (pid == 0) {
                close(sv[0]);
                /* Nothing else of ferry's: the keeper must not hold files, pipes or sockets open. */
                if (sv[1] != 3) {
                        (void)dup2(sv[1], 3);
                        sv[1] = 3;
                }
                (void)close_range(4, ~0U, 0);
                /* Not even ferry's standard streams: a reader of ferry's output must see its end when ferry ends. */
                int null_fd = open("/dev/null", O_RDWR);

                if (null_fd >= 0) {
                        (void)dup2(null_fd, 0);
                        (void)dup2(null_fd, 1);
                        (void)dup2(null_fd, 2);
                        if (null_fd > 3)
                                close(null_fd);
                }
                keeper_main(sv[1]);
        }
        close(sv[1]);
        k->fd = sv[0];
        k->pid = pid;
        return 0;
}

static void tell(struct ferry__keeper *k, char sign, pid_t pgid)
{
        char message[32];
        int n;

        if (k->fd < 0)
                return;
        n = snprintf(message, sizeof(message), "%c%d", sign, (int)pgid);
        /* MSG_NOSIGNAL: a keeper that died must not take ferry with it (SIGPIPE). */
        if (send(k->fd, message, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {
                close(k->fd);
                k->fd = -1;
        }
}

void ferry__keeper_add(struct ferry__keeper *k, pid_t pgid)
{
        tell(k, '+', pgid);
}

void ferry__keeper_remove(struct ferry__keeper *k, pid_t pgid)
{
        tell(k, '-', pgid);
}

void ferry__keeper_stop(struct ferry__keeper *k)
{
        if (k->fd >= 0) {
                (void)send(k->fd, "bye", 3, MSG_NOSIGNAL);
                close(k->fd);
                k->fd = -1;
        }
        if (k->pid > 0) {
                (void)waitpid(k->pid, NULL, 0);
                k->pid = 0;
        }
}
