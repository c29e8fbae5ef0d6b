/* Unit tests: running handlers (spawn.c): template expansion, starting, exit status, stderr, process groups. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

#include "scratch.h"

static char *const plain_env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};

static char **expand(char *const *template, const char *path)
{
        struct ferry__placeholders values = {.path = path};
        char **argv = NULL;

        cr_assert_eq(ferry__argv_expand(template, &values, &argv), 0);
        return argv;
}

static size_t count(char *const *argv)
{
        size_t n = 0;

        while (argv[n])
                n++;
        return n;
}

/* Reads the whole file at path into buffer; returns its length. */
static size_t slurp(const char *path, char *buffer, size_t size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t len = 0;
        ssize_t n;

        cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
        while ((n = read(fd, buffer + len, size - len)) > 0)
                len += (size_t)n;
        close(fd);
        return len;
}

static void write_file(const char *path, const char *content, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the child's loop as ferry run will: stderr read while it is readable, reaped when the pidfd says so. */
static struct ferry__exit finish(struct ferry__child *c)
{
        int64_t deadline = now_ms() + 10000;
        struct ferry__exit e = {.code = 42, .signal = 42};

        for (;;) {
                struct pollfd fds[2] = {{.fd = c->pidfd, .events = POLLIN}, {.fd = c->stderr_fd, .events = POLLIN}};
                int64_t left = deadline - now_ms();

                cr_assert_gt(left, 0, "child did not finish in time");
                cr_assert_geq(poll(fds, c->stderr_fd >= 0 ? 2 : 1, (int)left), 0);
                if (fds[1].revents)
                        ferry__child_read_stderr(c);
                if (fds[0].revents) {
                        cr_assert_eq(ferry__child_reap(c, &e), 0);
                        return e;
                }
        }
}

static struct ferry__exit run(char *const *argv, int stdin_fd, int stdout_fd, struct ferry__child *c)
{
        struct ferry__spawn_request req =
                {.argv = argv, .envp = plain_env, .stdin_fd = stdin_fd, .stdout_fd = stdout_fd, .cwd = folder};

        cr_assert_eq(ferry__spawn(&req, c), 0);
        return finish(c);
}

/* Asserts that this process has no child left, reaped or not. */
static void assert_no_children(void)
{
        siginfo_t info;

        cr_assert_eq(waitid(P_ALL, 0, &info, WEXITED | WNOHANG), -1, "a child is left");
        cr_assert_eq(errno, ECHILD);
}

/* Waits up to timeout_ms for the process behind pidfd to be gone (exited; a zombie of someone else counts). */
static bool gone_within(int pidfd, int timeout_ms)
{
        struct pollfd p = {.fd = pidfd, .events = POLLIN};

        return poll(&p, 1, timeout_ms) == 1;
}

TestSuite(argv, .timeout = 10);
TestSuite(spawn, .init = make_folder, .fini = remove_folder, .timeout = 20);

/* ---- expansion ---- */

Test(argv, every_placeholder)
{
        char *const template[] = {"prog",  "{}",          "{path}",           "{name}", "{dir}", "{stem}",
                                  "{ext}", "--in={path}", "{stem}.bak.{ext}", "plain",  NULL};
        const char *expected[] = {"prog", "in/sub/x.tar.gz",      "in/sub/x.tar.gz", "x.tar.gz", "in/sub", "x.tar",
                                  "gz",   "--in=in/sub/x.tar.gz", "x.tar.bak.gz",    "plain"};
        char **argv = expand(template, "in/sub/x.tar.gz");

        cr_assert_eq(count(argv), sizeof(expected) / sizeof(expected[0]));
        for (size_t i = 0; argv[i]; i++)
                cr_assert_str_eq(argv[i], expected[i], "argument %zu", i);
        ferry__argv_free(argv);
}

Test(argv, name_parts)
{
        static const struct {
                const char *path, *name, *dir, *stem, *ext;
        } cases[] = {
                {"file", "file", ".", "file", ""},
                {".bashrc", ".bashrc", ".", ".bashrc", ""},
                {"d/..hidden.txt", "..hidden.txt", "d", "..hidden", "txt"},
                {"/x", "x", "/", "x", ""},
                {"/srv/in/a.b/c", "c", "/srv/in/a.b", "c", ""},
                {"x.", "x.", ".", "x", ""},
                {"a/b.c", "b.c", "a", "b", "c"},
        };
        char *const template[] = {"{name}", "{dir}", "{stem}", "{ext}", NULL};

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char **argv = expand(template, cases[i].path);

                cr_assert_str_eq(argv[0], cases[i].name, "name of %s", cases[i].path);
                cr_assert_str_eq(argv[1], cases[i].dir, "dir of %s", cases[i].path);
                cr_assert_str_eq(argv[2], cases[i].stem, "stem of %s", cases[i].path);
                cr_assert_str_eq(argv[3], cases[i].ext, "ext of %s", cases[i].path);
                ferry__argv_free(argv);
        }
}

/* Names that a shell, a word splitter or an option parser would mangle. */
static const char *const hostile[] = {
        "$(touch x)", "; rm -rf x", "a\nb",   "-rf",  "--help", "\xff\xfe.bin", "a b\tc", "'\"`\\",
        "*",          "{}",         "{path}", "%s%n", "",
};

Test(argv, hostile_names_are_one_argument_each)
{
        char *const template[] = {"prog", "{name}", "--in={path}", "{stem}", NULL};
        char long_name[256], path[300];

        for (size_t i = 0; i <= sizeof(hostile) / sizeof(hostile[0]); i++) {
                const char *name = i < sizeof(hostile) / sizeof(hostile[0]) ? hostile[i] : long_name;
                char expected[320];
                char **argv;

                if (i == sizeof(hostile) / sizeof(hostile[0])) {
                        memset(long_name, 'n', 255); /* NAME_MAX bytes, one of them not UTF-8 */
                        long_name[100] = '\xff';
                        long_name[255] = '\0';
                }
                snprintf(path, sizeof(path), "in/%s", name);
                argv = expand(template, path);
                cr_assert_eq(count(argv), 4, "name %zu split or merged", i);
                cr_assert_eq(strlen(argv[1]), strlen(name));
                cr_assert_eq(memcmp(argv[1], name, strlen(name)), 0, "name %zu changed", i);
                snprintf(expected, sizeof(expected), "--in=in/%s", name);
                cr_assert_str_eq(argv[2], expected);
                ferry__argv_free(argv);
        }
        cr_assert_eq(strlen(long_name), 255);
}

Test(argv, paths_in_batch_mode)
{
        const char *const paths[] = {"a b", "-x", "c\nd", NULL};
        const char *const none[] = {NULL};
        char *const template[] = {"prog", "--", "{paths}", "end", NULL};
        struct ferry__placeholders values = {.paths = paths};
        char **argv;

        cr_assert_eq(ferry__argv_expand(template, &values, &argv), 0);
        cr_assert_eq(count(argv), 6);
        cr_assert_str_eq(argv[2], "a b");
        cr_assert_str_eq(argv[3], "-x");
        cr_assert_str_eq(argv[4], "c\nd");
        cr_assert_str_eq(argv[5], "end");
        ferry__argv_free(argv);

        values.paths = none;
        cr_assert_eq(ferry__argv_expand(template, &values, &argv), 0);
        cr_assert_eq(count(argv), 3, "no paths: no arguments, not an empty one");
        ferry__argv_free(argv);

        char *const only_paths[] = {"{paths}", NULL};
        argv = NULL;
        cr_assert_eq(ferry__argv_expand(only_paths, &values, &argv), -EINVAL, "nothing to run");
        cr_assert_null(argv);
}

Test(argv, braces_and_bad_placeholders)
{
        char *const literal[] = {"{{}}", "{{path}}", "a}}b{{", "{{{name}}}", NULL};
        const char *expected[] = {"{}", "{path}", "a}b{", "{f.c}"};
        struct ferry__placeholders values = {.path = "d/f.c"};
        char **argv = NULL;
        /* Only placeholder names are special: other braces (a shell's ${1}, awk) stay as they are. */
        char *const unknown[] = {"prog",     "{nmae}",  "{PATH}",  "{",         "}",          "{path", "path}",
                                 "x{path}}", "{ name}", "{{path}", "${1%.csv}", "{print $1}", NULL};
        const char *unknown_expected[] = {"prog",  "{nmae}",  "{PATH}",  "{",      "}",         "{path",
                                          "path}", "xd/f.c}", "{ name}", "{path}", "${1%.csv}", "{print $1}"};
        char *const paths_inside[] = {"prog", "--in={paths}", NULL};

        argv = expand(literal, "d/f.c");
        for (size_t i = 0; i < 4; i++)
                cr_assert_str_eq(argv[i], expected[i]);
        ferry__argv_free(argv);

        argv = expand(unknown, "d/f.c");
        for (size_t i = 0; i < sizeof(unknown_expected) / sizeof(unknown_expected[0]); i++)
                cr_assert_str_eq(argv[i], unknown_expected[i]);
        ferry__argv_free(argv);
        cr_assert_eq(ferry__argv_check(unknown, false), 0);

        argv = NULL;
        cr_assert_eq(ferry__argv_expand(paths_inside, &values, &argv), -EINVAL, "{paths} inside an argument");
        cr_assert_null(argv, "out-parameter written on failure");
        cr_assert_eq(ferry__argv_check(paths_inside, true), -EINVAL);
}

Test(argv, check_matches_the_mode)
{
        char *const single[] = {"prog", "--out={dir}/{stem}.txt", "{}", NULL};
        char *const batch[] = {"prog", "{paths}", NULL};
        char *const literal[] = {"prog", "x", NULL};
        char *const empty[] = {NULL};
        const char *const paths[] = {"a", NULL};
        struct ferry__placeholders no_path = {.paths = paths};
        char **argv = NULL;

        cr_assert_eq(ferry__argv_check(single, false), 0);
        cr_assert_eq(ferry__argv_check(single, true), -EINVAL, "{} has no value in a batch");
        cr_assert_eq(ferry__argv_check(batch, true), 0);
        cr_assert_eq(ferry__argv_check(batch, false), -EINVAL, "{paths} has no value for one file");
        cr_assert_eq(ferry__argv_check(literal, false), 0);
        cr_assert_eq(ferry__argv_check(literal, true), 0);
        cr_assert_eq(ferry__argv_check(empty, false), -EINVAL);
        cr_assert_eq(ferry__argv_check(NULL, false), -EINVAL);
        cr_assert_eq(ferry__argv_expand(single, &no_path, &argv), -EINVAL);
        ferry__argv_free(NULL);
}

Test(argv, hook_placeholders)
{
        char *const hook[] = {"alert", "{name}", "--to={dest}", "{note}", "{path}", NULL};
        char *const handler_only[] = {"alert", "{paths}", NULL};
        struct ferry__placeholders values = {.path = "in/a b\n.csv",
                                             .dest = "in/.ferry/failed/a b\n.csv.1",
                                             .note = "exit status 3"};
        char **argv = NULL;

        cr_assert_eq(ferry__argv_expand(hook, &values, &argv), 0);
        cr_assert_eq(count(argv), 5);
        cr_assert_str_eq(argv[1], "a b\n.csv");
        cr_assert_str_eq(argv[2], "--to=in/.ferry/failed/a b\n.csv.1");
        cr_assert_str_eq(argv[3], "exit status 3");
        cr_assert_str_eq(argv[4], "in/a b\n.csv");
        ferry__argv_free(argv);

        /* An empty value is one empty argument: a hook that got no {note} still gets its place. */
        values.dest = values.note = "";
        cr_assert_eq(ferry__argv_expand(hook, &values, &argv), 0);
        cr_assert_eq(count(argv), 5);
        cr_assert_str_eq(argv[3], "");
        ferry__argv_free(argv);

        cr_assert_eq(ferry__argv_check_hook(hook), 0);
        cr_assert_eq(ferry__argv_check_hook(handler_only), -EINVAL, "a hook runs for one file");
        cr_assert_eq(ferry__argv_check(hook, false), -EINVAL, "{dest} and {note} are a hook's");
        cr_assert_eq(ferry__argv_check(hook, true), -EINVAL);
        argv = NULL;
        cr_assert_eq(ferry__argv_expand(hook, &(struct ferry__placeholders){.path = "a"}, &argv), -EINVAL);
        cr_assert_null(argv);
}

/* ---- the stderr tail, without a child ---- */

Test(argv, stderr_lines)
{
        static struct ferry__child c; /* 4 KiB: not on the stack of a test */
        const char *s;
        size_t len;

        memcpy(c.tail, "a\nb\nc\n", 6);
        c.tail_len = 6;
        s = ferry__child_stderr_lines(&c, 2, &len);
        cr_assert_eq(len, 3);
        cr_assert_eq(memcmp(s, "b\nc", 3), 0);
        s = ferry__child_stderr_lines(&c, 10, &len);
        cr_assert_eq(len, 5);
        cr_assert_eq(memcmp(s, "a\nb\nc", 5), 0);
        ferry__child_stderr_lines(&c, 0, &len);
        cr_assert_eq(len, 0);

        memcpy(c.tail, "a\nb", 3); /* no final newline */
        c.tail_len = 3;
        s = ferry__child_stderr_lines(&c, 1, &len);
        cr_assert_eq(len, 1);
        cr_assert_eq(s[0], 'b');

        memcpy(c.tail, "ut off\nwhole\n", 13); /* the start of the first line was dropped */
        c.tail_len = 13;
        c.tail_cut = true;
        s = ferry__child_stderr_lines(&c, 5, &len);
        cr_assert_eq(len, 5);
        cr_assert_eq(memcmp(s, "whole", 5), 0);

        memcpy(c.tail, "one long line", 13); /* no boundary at all: everything kept */
        s = ferry__child_stderr_lines(&c, 5, &len);
        cr_assert_eq(len, 13);
}

/* ---- starting and ending children ---- */

Test(spawn, hostile_names_arrive_byte_exact)
{
        char out[300], got[512], path[600], long_name[256], marker[300];
        /* The name is the shell's "$1", never part of its script. */
        char *const template[] = {"/bin/sh", "-c", "printf %s \"$1\" > \"$2\"", "sh", "{name}", out, NULL};
        struct ferry__child c;

        memset(long_name, 'n', 255);
        long_name[7] = '\xff';
        long_name[255] = '\0';
        snprintf(out, sizeof(out), "%s/out", folder);
        for (size_t i = 0; i <= sizeof(hostile) / sizeof(hostile[0]); i++) {
                const char *name = i < sizeof(hostile) / sizeof(hostile[0]) ? hostile[i] : long_name;
                char **argv;
                struct ferry__exit e;
                size_t len;

                snprintf(path, sizeof(path), "%s/%s", folder, name);
                argv = expand(template, path);
                e = run(argv, -1, -1, &c);
                cr_assert_eq(e.code, 0, "name %zu: exit %d", i, e.code);
                len = slurp(out, got, sizeof(got));
                cr_assert_eq(len, strlen(name), "name %zu: %zu bytes arrived", i, len);
                cr_assert_eq(memcmp(got, name, len), 0, "name %zu changed on the way", i);
                ferry__argv_free(argv);
        }
        snprintf(marker, sizeof(marker), "%s/x", folder);
        cr_assert_eq(access(marker, F_OK), -1, "a name was run as a command");
        assert_no_children();
}

Test(spawn, exit_code_and_signal)
{
        char *const exits[] = {"/bin/sh", "-c", "exit 3", NULL};
        char *const killed[] = {"/bin/sh", "-c", "kill -TERM $$", NULL};
        char *const by_path[] = {"true", NULL};
        struct ferry__child c;
        struct ferry__exit e;

        e = run(exits, -1, -1, &c);
        cr_assert_eq(e.code, 3);
        cr_assert_eq(e.signal, 0);
        cr_assert_eq(c.pidfd, -1, "fds closed by the reap");
        cr_assert_eq(c.stderr_fd, -1);
        e = run(killed, -1, -1, &c);
        cr_assert_eq(e.code, -1);
        cr_assert_eq(e.signal, SIGTERM);
        e = run(by_path, -1, -1, &c);
        cr_assert_eq(e.code, 0, "'true' found in the environment's PATH");
        assert_no_children();
}

Test(spawn, stderr_keeps_the_newest_bytes)
{
        /* About 117 KB of numbered lines: more than the pipe holds, so the loop must read while it runs. */
        char *const argv[] = {"/bin/sh", "-c",
                              "i=1; while [ $i -le 12000 ]; do echo \"line $i\"; i=$((i + 1)); done >&2", NULL};
        static char expected[200000];
        size_t expected_len = 0, len;
        struct ferry__child c;
        struct ferry__exit e;
        const char *lines;

        for (int i = 1; i <= 12000; i++)
                expected_len += (size_t)sprintf(expected + expected_len, "line %d\n", i);
        cr_assert_gt(expected_len, 100 * 1024);
        e = run(argv, -1, -1, &c);
        cr_assert_eq(e.code, 0);
        cr_assert_eq(c.tail_len, FERRY__STDERR_TAIL);
        cr_assert(c.tail_cut);
        cr_assert_eq(memcmp(c.tail, expected + expected_len - FERRY__STDERR_TAIL, FERRY__STDERR_TAIL), 0,
                     "the tail is not the last %d bytes written", FERRY__STDERR_TAIL);
        lines = ferry__child_stderr_lines(&c, 3, &len);
        cr_assert_eq(len, strlen("line 11998\nline 11999\nline 12000"));
        cr_assert_eq(memcmp(lines, "line 11998\nline 11999\nline 12000", len), 0);
        lines = ferry__child_stderr_lines(&c, 100000, &len);
        cr_assert_eq(memcmp(lines, "line ", 5), 0, "starts at a line boundary");
}

Test(spawn, exec_failures_are_errors_not_exit_127)
{
        char script[300], cwd_missing[300];
        char *const missing[] = {"ferry-no-such-program", NULL};
        char *const missing_path[] = {"/nonexistent/ferry", NULL};
        char *const not_executable[] = {script, NULL};
        char *const in_cwd[] = {"handler", NULL};
        char *const relative_path[] = {"PATH=.:bin:", NULL};
        char *const folder_path[] = {"PATH=/nonexistent:/tmp", NULL};
        struct ferry__spawn_request req = {.argv = missing, .envp = plain_env, .stdin_fd = -1, .stdout_fd = -1};
        struct ferry__child c;

        cr_assert_eq(ferry__spawn(&req, &c), -ENOENT);
        assert_no_children();
        req.argv = missing_path;
        cr_assert_eq(ferry__spawn(&req, &c), -ENOENT);

        snprintf(script, sizeof(script), "%s/handler", folder);
        write_file(script, "#!/bin/sh\nexit 0\n", 0644);
        req.argv = not_executable;
        cr_assert_eq(ferry__spawn(&req, &c), -EACCES);

        /* A program in the current directory (the watched folder, say) is not found through PATH. */
        cr_assert_eq(chmod(script, 0755), 0);
        req.argv = in_cwd;
        req.cwd = folder;
        req.envp = relative_path;
        cr_assert_eq(ferry__spawn(&req, &c), -ENOENT);
        req.envp = folder_path;
        cr_assert_eq(ferry__spawn(&req, &c), -ENOENT);
        req.argv = not_executable;
        cr_assert_eq(ferry__spawn(&req, &c), 0, "runs by its full path");
        cr_assert_eq(finish(&c).code, 0);

        snprintf(cwd_missing, sizeof(cwd_missing), "%s/nonexistent", folder);
        req.cwd = cwd_missing;
        cr_assert_eq(ferry__spawn(&req, &c), -ENOENT, "chdir failure reported");
        req.cwd = NULL;
        req.argv = NULL;
        cr_assert_eq(ferry__spawn(&req, &c), -EINVAL);
        assert_no_children();
}

Test(spawn, stdin_and_stdout_redirected)
{
        char in_path[300], out_path[300], got[64];
        char *const cat[] = {"cat", NULL};
        struct ferry__child c;
        int in, out;

        snprintf(in_path, sizeof(in_path), "%s/in", folder);
        snprintf(out_path, sizeof(out_path), "%s/out", folder);
        write_file(in_path, "payload\n", 0644);
        in = open(in_path, O_RDONLY | O_CLOEXEC);
        out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert_eq(run(cat, in, out, &c).code, 0);
        cr_assert_eq(slurp(out_path, got, sizeof(got)), 8);
        cr_assert_eq(memcmp(got, "payload\n", 8), 0);
        close(in);
        close(out);

        /* -1: /dev/null on both sides. */
        cr_assert_eq(run(cat, -1, -1, &c).code, 0);

        /* Low fds given swapped still land where they belong. */
        in = open(in_path, O_RDONLY | O_CLOEXEC);
        out = open(out_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        cr_assert_eq(dup2(in, 1), 1);
        cr_assert_eq(dup2(out, 0), 0);
        cr_assert_eq(run(cat, 1, 0, &c).code, 0);
        cr_assert_eq(slurp(out_path, got, sizeof(got)), 8);
        cr_assert_eq(memcmp(got, "payload\n", 8), 0);
}

Test(spawn, only_three_fds_inherited)
{
        char out_path[300], got[256];
        char *const ls[] = {"ls", "/proc/self/fd", NULL};
        struct ferry__child c;
        int out, leak;

        /* A descriptor the host forgot to make close-on-exec. */
        leak = open("/dev/null", O_RDONLY);
        cr_assert_geq(leak, 0);
        cr_assert_eq(dup2(leak, 40), 40);
        snprintf(out_path, sizeof(out_path), "%s/out", folder);
        out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert_eq(run(ls, -1, out, &c).code, 0);
        got[slurp(out_path, got, sizeof(got) - 1)] = '\0';
        /* 3 is ls's own handle on the directory it lists. */
        cr_assert_str_eq(got, "0\n1\n2\n3\n");
}

Test(spawn, signals_unblocked_and_default)
{
        char out_path[300], got[4096];
        char *const status[] = {"cat", "/proc/self/status", NULL};
        char *const term_self[] = {"/bin/sh", "-c", "kill -TERM $$; exit 0", NULL};
        struct ferry__child c;
        struct ferry__exit e;
        sigset_t blocked;
        int out;

        sigemptyset(&blocked);
        sigaddset(&blocked, SIGTERM);
        sigaddset(&blocked, SIGINT);
        sigaddset(&blocked, SIGCHLD);
        cr_assert_eq(sigprocmask(SIG_BLOCK, &blocked, NULL), 0);
        cr_assert_neq(signal(SIGPIPE, SIG_IGN), SIG_ERR);
        cr_assert_neq(signal(SIGHUP, SIG_IGN), SIG_ERR);

        snprintf(out_path, sizeof(out_path), "%s/status", folder);
        out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert_eq(run(status, -1, out, &c).code, 0);
        got[slurp(out_path, got, sizeof(got) - 1)] = '\0';
        cr_assert_not_null(strstr(got, "\nSigBlk:\t0000000000000000\n"), "%s", got);
        /* Signals 32 and 33 are glibc's own (thread cancellation, setxid): its sigaction() cannot reset them
         * and every program's glibc installs its handlers for them; an ignored one may come from above us. */
        const char *ignored = strstr(got, "\nSigIgn:\t");
        cr_assert_not_null(ignored, "%s", got);
        cr_assert_eq(strtoull(ignored + 9, NULL, 16) & ~UINT64_C(0x180000000), 0, "%s", got);

        e = run(term_self, -1, -1, &c);
        cr_assert_eq(e.signal, SIGTERM, "SIGTERM blocked in the child (exit %d)", e.code);

        /* The child shares our memory until its exec, not our dispositions or mask: they are as they were. */
        sigset_t now;
        cr_assert_eq(sigprocmask(SIG_BLOCK, NULL, &now), 0);
        cr_assert(sigismember(&now, SIGTERM) && sigismember(&now, SIGCHLD) && !sigismember(&now, SIGUSR1));
        cr_assert_eq(signal(SIGPIPE, SIG_IGN), SIG_IGN);
        cr_assert_eq(signal(SIGHUP, SIG_IGN), SIG_IGN);
}

/* Starts "sh -c script" with stdout on a pipe; the script prints a helper's pid first. Returns a pidfd of it. */
static int start_with_helper(const char *script, struct ferry__child *c)
{
        char *const argv[] = {"/bin/sh", "-c", (char *)script, NULL};
        struct ferry__spawn_request req = {.argv = argv, .envp = plain_env, .stdin_fd = -1};
        char line[32];
        size_t len = 0;
        int p[2], helper_fd;

        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        req.stdout_fd = p[1];
        cr_assert_eq(ferry__spawn(&req, c), 0);
        close(p[1]);
        /* The helper keeps the pipe open: read the line, not to EOF. */
        while (len < sizeof(line) - 1) {
                ssize_t n = read(p[0], line + len, 1);

                cr_assert_eq(n, 1, "no pid printed");
                if (line[len] == '\n')
                        break;
                len++;
        }
        line[len] = '\0';
        close(p[0]);
        helper_fd = (int)syscall(SYS_pidfd_open, (pid_t)atoi(line), 0);
        cr_assert_geq(helper_fd, 0, "helper %s: %s", line, strerror(errno));
        cr_assert_not(gone_within(helper_fd, 0), "helper already gone");
        return helper_fd;
}

Test(spawn, signal_reaches_the_whole_group)
{
        struct ferry__child c;
        struct ferry__exit e;
        int helper = start_with_helper("sleep 60 & echo $!; wait", &c);

        ferry__child_signal(&c, SIGTERM);
        e = finish(&c);
        cr_assert_eq(e.signal, SIGTERM);
        cr_assert(gone_within(helper, 5000), "the helper survived");
        close(helper);
}

Test(spawn, reap_kills_helpers_left_behind)
{
        struct ferry__child c;
        struct ferry__exit e;
        /* A helper that ignores SIGTERM outlives the signal to its group: the reap must SIGKILL it. */
        int helper = start_with_helper("(trap '' TERM; exec sleep 60) & echo $!; wait", &c);

        ferry__child_signal(&c, SIGTERM);
        e = finish(&c);
        cr_assert_eq(e.signal, SIGTERM);
        cr_assert(gone_within(helper, 5000), "the helper survived the reap");
        close(helper);

        /* A leader that exits on its own while its helper runs on. */
        helper = start_with_helper("sleep 60 & echo $!", &c);
        e = finish(&c);
        cr_assert_eq(e.code, 0);
        cr_assert(gone_within(helper, 5000), "the helper survived the reap");
        close(helper);
        assert_no_children();
}

Test(spawn, abandon_kills_and_reaps)
{
        struct ferry__child c;
        int helper = start_with_helper("sleep 60 & echo $!; wait", &c);

        ferry__child_abandon(&c);
        cr_assert_eq(c.pidfd, -1);
        cr_assert_eq(c.stderr_fd, -1);
        cr_assert(gone_within(helper, 5000), "the helper survived");
        close(helper);
        assert_no_children();
        ferry__child_abandon(&c); /* twice: a no-op */
        ferry__child_abandon(NULL);
}

/* A thread of the process that spawns: it records its id, then waits for a byte on a pipe. */
struct bystander {
        int pipe[2];
        volatile pid_t tid;
};

static void *bystander_run(void *arg)
{
        struct bystander *b = arg;
        char byte;

        b->tid = (pid_t)syscall(SYS_gettid);
        (void)read(b->pipe[0], &byte, 1);
        return NULL;
}

/* The "Uid:" line of /proc/self/task/TID/status. */
static void task_uids(pid_t tid, char *buf, size_t size)
{
        char path[64], status[4096];
        int fd;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        n = read(fd, status, sizeof(status) - 1);
        close(fd);
        cr_assert_gt(n, 0);
        status[n] = '\0';
        const char *line = strstr(status, "\nUid:");
        cr_assert_not_null(line);
        snprintf(buf, size, "%.*s", (int)strcspn(line + 1, "\n"), line + 1);
}

Test(spawn, switch_user)
{
        char out_path[300], got[128];
        char *const id[] = {"/bin/sh", "-c", "id -u; id -g; id -G; pwd", NULL};
        struct ferry__spawn_request req = {.argv = id,
                                           .envp = plain_env,
                                           .stdin_fd = -1,
                                           .cwd = "/",
                                           .switch_user = true,
                                           .uid = 65534,
                                           .gid = 65534};
        struct ferry__child c;

        if (geteuid() != 0) {
                remove_folder(); /* a skip leaves without running the suite's fini */
                cr_skip_test("switching users needs root");
        }
        /* A second thread: the child runs in our memory until its exec; its switch must stay its own. */
        struct bystander b = {0};
        pthread_t thread;
        char uids[128], before[128];

        cr_assert_eq(pipe2(b.pipe, O_CLOEXEC), 0);
        cr_assert_eq(pthread_create(&thread, NULL, bystander_run, &b), 0);
        while (!b.tid)
                sched_yield();
        task_uids(b.tid, before, sizeof(before));

        snprintf(out_path, sizeof(out_path), "%s/id", folder);
        req.stdout_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert_eq(ferry__spawn(&req, &c), 0);
        cr_assert_eq(finish(&c).code, 0);
        got[slurp(out_path, got, sizeof(got) - 1)] = '\0';
        cr_assert_str_eq(got, "65534\n65534\n65534\n/\n", "%s", got);

        /* Only the child switched: this thread and the other one are still root. */
        cr_assert_eq(geteuid(), 0);
        cr_assert_eq(getegid(), 0);
        task_uids(b.tid, uids, sizeof(uids));
        cr_assert_str_eq(uids, before);
        cr_assert_eq(write(b.pipe[1], "x", 1), 1);
        cr_assert_eq(pthread_join(thread, NULL), 0);
        close(b.pipe[0]);
        close(b.pipe[1]);

        /* The user cannot enter a folder only root may: chdir happens after the switch. */
        cr_assert_eq(chmod(folder, 0700), 0);
        req.cwd = folder;
        cr_assert_eq(ferry__spawn(&req, &c), -EACCES);
        close(req.stdout_fd);
}
