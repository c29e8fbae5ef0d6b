/* spawn.c: running a handler: expanding its command template, starting it, and collecting its exit and stderr.
 *
 * A handler is never run through a shell. The template is a vector of
 * arguments; a placeholder fills in part of one argument and the result is
 * always exactly that one argument, whatever bytes the file name holds, so a
 * name like "; rm -rf x" or "$(touch x)" reaches the program as inert bytes.
 *
 * Starting a child is a vfork-style clone (CLONE_VM | CLONE_VFORK) onto a
 * stack of its own, then a short list of async-signal-safe calls, then execve.
 * The child shares ferry's memory until the exec, so nothing is copied (a fork
 * copies the page tables and then pays a fault for every page either side
 * writes), and ferry waits only until the exec has begun. Because the memory
 * is shared, the child writes nothing of it but a slot for an errno (and the
 * thread's errno, which the parent does not read across the clone); it calls
 * the kernel directly to switch users, where glibc's wrappers would go through
 * ferry's list of threads; and it keeps every signal blocked until each
 * disposition is back to the default, so that no handler of ferry's runs in
 * it. Everything that allocates or consults the system databases (the PATH
 * candidates, the target user's supplementary groups) is prepared before. A
 * failure of any step, exec included, is left as an errno in that slot, read
 * once the parent resumes: so ferry__spawn returns -ENOENT or -EACCES instead
 * of a child that exits 127. The clone also hands back a pidfd, on which the
 * child is waited for and signalled.
 *
 * Each child leads its own process group, so its helpers can be signalled and,
 * once it exits, killed together. The leader is kept unreaped until the group
 * has been killed: while it is a zombie its pid, and with it the group id, can
 * not be reused, so a signal to the group never reaches a stranger.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<sys/pidfd.h>)
#include <sys/pidfd.h>
#else
static int pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags)
{
        return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags);
}
#endif

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* The child's stack until its exec: its frames, libc's calls, and a sanitizer's redzones around them. */
#define CHILD_STACK (256 * 1024)

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define FERRY__UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define FERRY__UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* PATH when the handler's environment has none: what glibc's confstr(_CS_PATH) gives, plus /usr/local/bin. */
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* Bytes of stderr one ferry__child_read_stderr call takes before returning to the caller's loop, so that a
 * child writing without pause cannot starve the other fds; the loop calls again while the pipe is readable. */
#define READ_BUDGET (64 * 1024)
/* Bytes a reap drains: more than a pipe holds by default (64 KiB) and bounded, because the leader's
 * helpers, killed but not yet dead, may still be writing. */
#define REAP_BUDGET (1024 * 1024)

/* ---- command templates ----------------------------------------------------------------------------------- */

struct piece {
        const char *text;
        size_t len;
};

enum word { WORD_PATH, WORD_NAME, WORD_DIR, WORD_STEM, WORD_EXT, WORD_DEST, WORD_NOTE, WORD_PATHS };

/* What the placeholders stand for, derived once per expansion. */
struct values {
        bool has_path;  /* {} {path} {name} {dir} {stem} {ext} may be used */
        bool has_paths; /* {paths} may be used */
        bool has_hook;  /* {dest} {note} may be used: a hook's command */
        const char *const *paths;
        struct piece pieces[WORD_PATHS]; /* by enum word, up to WORD_PATHS */
};

static const struct {
        const char *text;
        enum word word;
} words[] = {
        {"", WORD_PATH},   {"path", WORD_PATH}, {"name", WORD_NAME}, {"dir", WORD_DIR},     {"stem", WORD_STEM},
        {"ext", WORD_EXT}, {"dest", WORD_DEST}, {"note", WORD_NOTE}, {"paths", WORD_PATHS},
};

/* Splits path into the pieces the placeholders name; the pieces point into path.
 *
 *   {name}  the last component                       "in/x.tar.gz" -> "x.tar.gz"
 *   {dir}   what precedes the last '/'               "in", "." when there is no '/', "/" for "/x"
 *   {stem}  the name without its last extension      "x.tar"; ".bashrc" -> ".bashrc"
 *   {ext}   the last extension, without its dot      "gz"; "" when there is none
 */
static void split_path(const char *path, struct values *v)
{
        const char *slash = strrchr(path, '/');
        const char *name = slash ? slash + 1 : path;
        const char *dot, *after_leading_dots = name;
        struct piece *p = v->pieces;

        p[WORD_PATH] = (struct piece){path, strlen(path)};
        p[WORD_NAME] = (struct piece){name, strlen(name)};
        if (!slash)
                p[WORD_DIR] = (struct piece){".", 1};
        else if (slash == path)
                p[WORD_DIR] = (struct piece){"/", 1}; /* "/x" lives in "/", not in "" */
        else
                p[WORD_DIR] = (struct piece){path, (size_t)(slash - path)};

        /* Leading dots mark hidden files and do not start an extension: ".bashrc" has none. */
        while (*after_leading_dots == '.')
                after_leading_dots++;
        dot = strrchr(after_leading_dots, '.');
        if (dot) {
                p[WORD_STEM] = (struct piece){name, (size_t)(dot - name)};
                p[WORD_EXT] = (struct piece){dot + 1, strlen(dot + 1)};
        } else {
                p[WORD_STEM] = p[WORD_NAME];
                p[WORD_EXT] = (struct piece){"", 0};
        }
}

/* The value of the placeholder named by word (len bytes, without braces): -ENOENT when the word is no
 * placeholder (the braces are then literal), -EINVAL when it has no value here. {paths} is only valid as a
 * whole argument, which the caller handles before this. */
static int lookup(const char *word, size_t len, const struct values *v, struct piece *ret_piece)
{
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
                if (strlen(words[i].text) != len || memcmp(words[i].text, word, len) != 0)
                        continue;
                if (words[i].word == WORD_PATHS || !v->has_path ||
                    ((words[i].word == WORD_DEST || words[i].word == WORD_NOTE) && !v->has_hook))
                        return -EINVAL;
                *ret_piece = v->pieces[words[i].word];
                return 0;
        }
        return -ENOENT;
}

/* Expands one template argument into out, or only measures it when out is NULL. Only the placeholder
 * names are special: any other brace is literal, so that the ${1} of a shell script or an awk program
 * passes unchanged. "{{" and "}}" are single braces, for a literal "{name}". */
static int render(const char *arg, const struct values *v, char *out, size_t *ret_len)
{
        size_t len = 0;
        const char *s = arg;

        while (*s) {
                struct piece piece = {s, 1};

                if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
                        s += 2;
                } else if (s[0] == '{') {
                        const char *end = strchr(s + 1, '}');
                        int r = end ? lookup(s + 1, (size_t)(end - s - 1), v, &piece) : -ENOENT;

                        if (r == -EINVAL)
                                return r;
                        s = r == 0 ? end + 1 : s + 1;
                } else if (s[0] == '}') {
                        s++;
                } else {
                        piece.len = strcspn(s, "{}");
                        s += piece.len;
                }
                if (out)
                        memcpy(out + len, piece.text, piece.len);
                len += piece.len;
        }
        *ret_len = len;
        return 0;
}

static bool is_paths(const char *arg)
{
        return strcmp(arg, "{paths}") == 0;
}

/* Checks every argument of template against what v offers, and counts the arguments it expands to. */
static int measure(char *const *template, const struct values *v, size_t *ret_count)
{
        size_t count = 0, path_count = 0, len;
        int r;

        if (!template || !template[0])
                return -EINVAL;
        if (v->has_paths)
                while (v->paths[path_count])
                        path_count++;
        for (size_t i = 0; template[i]; i++) {
                if (is_paths(template[i])) {
                        if (!v->has_paths)
                                return -EINVAL;
                        count += path_count;
                        continue;
                }
                r = render(template[i], v, NULL, &len);
                if (r < 0)
                        return r;
                count++;
        }
        *ret_count = count;
        return 0;
}

int ferry__argv_check(char *const *template, bool batch)
{
        static const char *const no_paths[] = {NULL};
        struct values v = {.has_path = !batch, .has_paths = batch, .paths = no_paths};
        size_t count;

        split_path("", &v);
        return measure(template, &v, &count);
}

int ferry__argv_check_hook(char *const *template)
{
        struct values v = {.has_path = true, .has_hook = true};
        size_t count;

        split_path("", &v);
        return measure(template, &v, &count);
}

void ferry__argv_free(char **argv)
{
        if (!argv)
                return;
        for (size_t i = 0; argv[i]; i++)
                free(argv[i]);
        free(argv);
}

int ferry__argv_expand(char *const *template, const struct ferry__placeholders *values, char ***ret_argv)
{
        struct values v = {0};
        char **argv = NULL;
        size_t count, n = 0, len;
        int r;

        if (!values || !ret_argv)
                return -EINVAL;
        v.has_path = values->path != NULL;
        v.has_paths = values->paths != NULL;
        v.has_hook = values->dest && values->note;
        v.paths = values->paths;
        split_path(values->path ? values->path : "", &v);
        if (v.has_hook) {
                v.pieces[WORD_DEST] = (struct piece){values->dest, strlen(values->dest)};
                v.pieces[WORD_NOTE] = (struct piece){values->note, strlen(values->note)};
        }

        r = measure(template, &v, &count);
        if (r < 0)
                return r;
        if (count == 0)
                return -EINVAL; /* only a {paths} with no paths: there is no program to run */

        argv = calloc(count + 1, sizeof(*argv));
        if (!argv)
                return -ENOMEM;
        for (size_t i = 0; template[i]; i++) {
                if (is_paths(template[i])) {
                        for (size_t j = 0; v.paths[j]; j++) {
                                argv[n] = strdup(v.paths[j]);
                                if (!argv[n])
                                        goto nomem;
                                n++;
                        }
                        continue;
                }
                /* measure() accepted every argument, so rendering cannot fail now. */
                (void)render(template[i], &v, NULL, &len);
                argv[n] = malloc(len + 1);
                if (!argv[n])
                        goto nomem;
                (void)render(template[i], &v, argv[n], &len);
                argv[n][len] = '\0';
                n++;
        }
        *ret_argv = argv;
        return 0;
nomem:
        ferry__argv_free(argv);
        return -ENOMEM;
}

/* ---- starting a child ------------------------------------------------------------------------------------- */

/* Everything the child needs that takes allocation or lookups, prepared before the fork. */
struct plan {
        const char **candidates; /* paths to hand to execve, in order; NULL-terminated */
        char *candidate_text;    /* the strings of PATH candidates, when argv[0] has no '/' */
        gid_t *groups;           /* supplementary groups of the target user, when switching */
        size_t group_count;
        pid_t parent; /* the process that starts the handler */
};

static void plan_done(struct plan *p)
{
        free(p->candidates);
        free(p->candidate_text);
        free(p->groups);
}

static const char *env_lookup(char *const *envp, const char *name)
{
        size_t len = strlen(name);

        for (size_t i = 0; envp[i]; i++)
                if (strncmp(envp[i], name, len) == 0 && envp[i][len] == '=')
                        return envp[i] + len + 1;
        return NULL;
}

/* The execve candidates for program. With a '/' it is used as it is. Without one it is searched in PATH
 * as execvp does, with one difference: empty and relative PATH entries are skipped. They name the
 * current directory, which for a handler may be the watched folder, where anyone who can drop a file
 * could plant a program under the handler's name. PATH is taken from the handler's own environment. */
static int plan_candidates(struct plan *p, const char *program, char *const *envp)
{
        const char *search, *entry;
        size_t program_len = strlen(program), entries = 1, n = 0;
        char *text;

        if (program_len == 0)
                return -ENOENT;
        if (strchr(program, '/')) {
                p->candidates = calloc(2, sizeof(*p->candidates));
                if (!p->candidates)
                        return -ENOMEM;
                p->candidates[0] = program;
                return 0;
        }
        if (program_len > NAME_MAX)
                return -ENAMETOOLONG;

        search = env_lookup(envp, "PATH");
        if (!search)
                search = DEFAULT_PATH;
        for (const char *s = search; *s; s++)
                entries += *s == ':';
        p->candidates = calloc(entries + 1, sizeof(*p->candidates));
        /* Each entry is copied once, with '/', the program and a NUL: no more than this. */
        p->candidate_text = malloc(strlen(search) + entries * (program_len + 2) + 1);
        if (!p->candidates || !p->candidate_text)
                return -ENOMEM;

        text = p->candidate_text;
        for (entry = search;; entry++) {
                size_t len = strcspn(entry, ":");

                if (len > 0 && entry[0] == '/' && len + 1 + program_len < PATH_MAX) {
                        p->candidates[n++] = text;
                        memcpy(text, entry, len);
                        text[len] = '/';
                        memcpy(text + len + 1, program, program_len + 1);
                        text += len + 1 + program_len + 1;
                }
                entry += len;
                if (!*entry)
                        break;
        }
        return n > 0 ? 0 : -ENOENT;
}

/* The supplementary groups of uid's user, with gid among them. A uid without a passwd entry gets gid alone. */
static int plan_groups(struct plan *p, uid_t uid, gid_t gid)
{
        struct passwd pw, *found = NULL;
        char *buffer = NULL;
        size_t buffer_size = 4096;
        int count = 32, r;

        for (;;) {
                char *bigger = realloc(buffer, buffer_size);

                if (!bigger) {
                        r = -ENOMEM;
                        goto out;
                }
                buffer = bigger;
                r = getpwuid_r(uid, &pw, buffer, buffer_size, &found);
                if (r != ERANGE || buffer_size >= 1024 * 1024)
                        break;
                buffer_size *= 2;
        }
        /* The man page lists these as "not found" from some NSS modules. */
        if (!found && r != 0 && r != ENOENT && r != ESRCH && r != EBADF && r != EPERM) {
                r = -r;
                goto out;
        }
        if (!found) {
                p->groups = malloc(sizeof(*p->groups));
                if (!p->groups) {
                        r = -ENOMEM;
                        goto out;
                }
                p->groups[0] = gid;
                p->group_count = 1;
                r = 0;
                goto out;
        }
        for (;;) {
                gid_t *bigger = realloc(p->groups, (size_t)count * sizeof(*p->groups));
                int wanted = count;

                if (!bigger) {
                        r = -ENOMEM;
                        goto out;
                }
                p->groups = bigger;
                if (getgrouplist(pw.pw_name, gid, p->groups, &wanted) >= 0) {
                        p->group_count = (size_t)wanted;
                        break;
                }
                /* wanted now says how many there are; it only grows if the group database changed meanwhile. */
                if (wanted > NGROUPS_MAX) {
                        r = -E2BIG;
                        goto out;
                }
                count = wanted > count ? wanted : count * 2;
        }
        r = 0;
out:
        free(buffer);
        return r;
}

/* What the child is given, and where it leaves the errno of a step that failed (0: the exec went ahead). */
struct child_args {
        const struct ferry__spawn_request *req;
        const struct plan *plan;
        int stderr_fd;
        volatile int error;
};

static _Noreturn void child_fail(struct child_args *a, int error)
{
        a->error = error > 0 ? error : EIO;
        _exit(127);
}

/* Moves fd to 3 or above, where the dup2 calls onto 0, 1 and 2 cannot clobber it. */
static int child_raise_fd(int fd)
{
        return fd >= 3 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* The signals whose disposition in this process is not the default (ignored or caught), as the kernel
 * reports them in /proc/self/status (SigIgn, SigCgt: hex masks, bit N-1 for signal N), into *ret_mask; false
 * when it cannot tell. Async-signal-safe: the child asks it of itself, so the answer is exactly its own. */
static bool nondefault_signals(uint64_t *ret_mask)
{
        char text[8192];
        size_t len = 0;
        ssize_t n;
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC), found = 0;

        if (fd < 0)
                return false;
        while (len < sizeof(text) - 1 && (n = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
                len += (size_t)n;
        close(fd);
        text[len] = '\0';
        *ret_mask = 0;
        for (char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                uint64_t mask = 0;
                char *p;

                if (strncmp(line, "SigIgn:\t", 8) != 0 && strncmp(line, "SigCgt:\t", 8) != 0)
                        continue;
                for (p = line + 8; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
                        mask = mask << 4 | (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
                if (*p != '\n')
                        return false;
                *ret_mask |= mask;
                found++;
        }
        return found == 2;
}

/* Child side, between clone and exec, in ferry's memory: only async-signal-safe calls, nothing that allocates,
 * no write but to a->error. */
static int child_run(void *arg)
{
        struct child_args *a = arg;
        const struct ferry__spawn_request *req = a->req;
        const struct plan *p = a->plan;
        struct sigaction default_action = {.sa_handler = SIG_DFL};
        uint64_t reset;
        sigset_t none;
        int stdin_fd = req->stdin_fd, stdout_fd = req->stdout_fd, stderr_fd = a->stderr_fd, error = ENOENT;
        bool denied = false;

        if (setpgid(0, 0) < 0)
                child_fail(a, errno);
        /* A handler dies with the process that started it: after a crash of ferry, the claim is adopted and
         * run again, and must not race with a handler still running from before. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                child_fail(a, errno);
        if (getppid() != p->parent)
                _exit(127); /* the parent died before the line above */
        /* Handlers do not survive exec, but ignored signals do, and the parent's mask (it may block SIGTERM,
         * SIGINT, SIGCHLD for signalfd) would otherwise be the program's. Until here every signal was blocked,
         * so none of the parent's handlers could run in the child; without CLONE_SIGHAND the dispositions set
         * here are the child's own. */
        if (!nondefault_signals(&reset))
                reset = UINT64_MAX; /* no /proc: all of them */
        for (int sig = 1; sig < NSIG && sig <= 64; sig++)
                if (reset & UINT64_C(1) << (sig - 1))
                        (void)sigaction(sig, &default_action, NULL); /* fails harmlessly for SIGKILL, SIGSTOP, libc's */
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                child_fail(a, errno);

        if (stdin_fd < 0 || stdout_fd < 0) {
                int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);

                if (null_fd < 0)
                        child_fail(a, errno);
                if (stdin_fd < 0)
                        stdin_fd = null_fd;
                if (stdout_fd < 0)
                        stdout_fd = null_fd;
        }
        stdin_fd = child_raise_fd(stdin_fd);
        stdout_fd = child_raise_fd(stdout_fd);
        stderr_fd = child_raise_fd(stderr_fd);
        if (stdin_fd < 0 || stdout_fd < 0 || stderr_fd < 0)
                child_fail(a, errno);
        /* dup2 clears close-on-exec on the copy, so 0, 1 and 2 are the only fds the program inherits. */
        if (dup2(stdin_fd, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0)
                child_fail(a, errno);
        /* Everything else goes: the parent's fds are not all close-on-exec (a host program's, a test
         * harness's), and a leaked pipe end can keep another reader from ever seeing EOF. The fd table is the
         * child's own (no CLONE_FILES). */
        if (close_range(3, ~0U, 0) < 0)
                child_fail(a, errno);

        if (req->switch_user) {
                /* Groups first: once the uid is dropped, the right to change them is gone. The system calls
                 * themselves: glibc's wrappers apply a change to every thread of the process, found in the
                 * memory the child shares with ferry. */
                if (syscall(SYS_setgroups, p->group_count, p->groups) < 0 ||
                    syscall(SYS_setresgid, req->gid, req->gid, req->gid) < 0 ||
                    syscall(SYS_setresuid, req->uid, req->uid, req->uid) < 0)
                        child_fail(a, errno);
        }
        if (req->cwd && chdir(req->cwd) < 0)
                child_fail(a, errno);

        /* Like execvp: a candidate that is missing or not permitted lets the search go on; EACCES wins over
         * ENOENT at the end, as it is the more telling of the two. ENOEXEC (no "#!" line) is not retried with
         * /bin/sh: handlers run without a shell. */
        for (size_t i = 0; p->candidates[i]; i++) {
                execve(p->candidates[i], req->argv, req->envp);
                switch (errno) {
                case EACCES: denied = true; break;
                case ENOENT:
                case ENOTDIR:
                case ESTALE:
                case ENODEV:
                case ETIMEDOUT: error = errno; break;
                default: child_fail(a, errno);
                }
        }
        child_fail(a, denied ? EACCES : error);
}

static void close_fd(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;

                close(*fd);
                errno = saved;
                *fd = -1;
        }
}

/* Waits for a child that has no pidfd yet; used only before ferry__spawn returns it. */
static void wait_pid(pid_t pid)
{
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

/* The children's stack, mapped once per thread that starts children and kept: a fresh mapping for every
 * child cost two system calls and a page fault for every page the child touched. One child at a time uses
 * it (the parent waits until the exec). MAP_FAILED, with errno, when it cannot be mapped. */
static char *child_stack(void)
{
        static _Thread_local char *stack;

        if (!stack) {
                char *p = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1,
                               0);

                if (p == MAP_FAILED)
                        return MAP_FAILED;
                stack = p;
        }
        return stack;
}

int ferry__spawn(const struct ferry__spawn_request *req, struct ferry__child *ret_child)
{
        struct plan plan = {0};
        struct child_args args = {.req = req, .plan = &plan};
        int stderr_pipe[2] = {-1, -1};
        int pidfd = -1, r;
        sigset_t all, old;
        char *stack = MAP_FAILED;
        pid_t pid;

        if (!req || !req->argv || !req->argv[0] || !req->envp || !ret_child)
                return -EINVAL;
        r = plan_candidates(&plan, req->argv[0], req->envp);
        if (r < 0)
                goto out;
        if (req->switch_user) {
                r = plan_groups(&plan, req->uid, req->gid);
                if (r < 0)
                        goto out;
        }
        if (pipe2(stderr_pipe, O_CLOEXEC) < 0) {
                r = -errno;
                goto out;
        }
        /* Only our end is non-blocking: the child's stderr must block as a normal stderr does. */
        if (fcntl(stderr_pipe[0], F_SETFL, O_NONBLOCK) < 0) {
                r = -errno;
                goto out;
        }
        stack = child_stack();
        if (stack == MAP_FAILED) {
                r = -errno;
                goto out;
        }
        args.stderr_fd = stderr_pipe[1];

        /* Every signal stays blocked across the clone, so no handler of the parent's runs in the child before
         * the child has reset them all. */
        sigfillset(&all);
        r = -pthread_sigmask(SIG_SETMASK, &all, &old);
        if (r < 0)
                goto out;
        plan.parent = getpid();
        /* Returns once the child has exec'd or exited. */
        pid = clone(child_run, stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &args, &pidfd);
        r = pid < 0 ? -errno : 0;
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                goto out;
        if (args.error) {
                /* the child failed before its program ran, and has exited */
                r = -args.error;
                wait_pid(pid);
                goto out;
        }
        /* The child is unreaped, so pid is still ours and cannot name another process. */
        ret_child->pid = pid;
        ret_child->pidfd = pidfd;
        ret_child->stderr_fd = stderr_pipe[0];
        ret_child->tail_len = 0;
        ret_child->tail_cut = false;
        pidfd = -1;
        stderr_pipe[0] = -1;
        r = 0;
out:
        if (stack != MAP_FAILED)
                FERRY__UNPOISON(stack, CHILD_STACK); /* the child's frames left the sanitizer's marks on it */
        close_fd(&pidfd);
        close_fd(&stderr_pipe[0]);
        close_fd(&stderr_pipe[1]);
        plan_done(&plan);
        return r;
}

/* ---- a running child ---------------------------------------------------------------------------------------- */

/* Appends what the child wrote to the tail, dropping the oldest bytes beyond FERRY__STDERR_TAIL. */
static void tail_append(struct ferry__child *c, const char *data, size_t len)
{
        if (len >= FERRY__STDERR_TAIL) {
                c->tail_cut = c->tail_cut || len > FERRY__STDERR_TAIL || c->tail_len > 0;
                memcpy(c->tail, data + len - FERRY__STDERR_TAIL, FERRY__STDERR_TAIL);
                c->tail_len = FERRY__STDERR_TAIL;
                return;
        }
        if (c->tail_len + len > FERRY__STDERR_TAIL) {
                size_t drop = c->tail_len + len - FERRY__STDERR_TAIL;

                memmove(c->tail, c->tail + drop, c->tail_len - drop);
                c->tail_len -= drop;
                c->tail_cut = true;
        }
        memcpy(c->tail + c->tail_len, data, len);
        c->tail_len += len;
}

/* Reads up to budget bytes of stderr; closes the pipe at EOF (or on an error, which no retry would fix). */
static void read_stderr(struct ferry__child *c, size_t budget)
{
        char buffer[FERRY__STDERR_TAIL];

        while (c->stderr_fd >= 0 && budget > 0) {
                ssize_t n = read(c->stderr_fd, buffer, sizeof(buffer));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        close_fd(&c->stderr_fd);
                        return;
                }
                tail_append(c, buffer, (size_t)n);
                budget -= (size_t)n < budget ? (size_t)n : budget;
        }
}

void ferry__child_read_stderr(struct ferry__child *c)
{
        read_stderr(c, READ_BUDGET);
}

void ferry__child_signal(struct ferry__child *c, int sig)
{
        if (c->pidfd >= 0)
                (void)kill(-c->pid, sig);
}

static int wait_pidfd(int pidfd, int options, siginfo_t *ret_info)
{
        memset(ret_info, 0, sizeof(*ret_info));
        while (waitid(P_PIDFD, (id_t)pidfd, ret_info, options) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}

/* Forgets the child: closes its fds. The tail stays readable. */
static void child_forget(struct ferry__child *c)
{
        close_fd(&c->pidfd);
        close_fd(&c->stderr_fd);
        c->pid = 0;
}

int ferry__child_reap(struct ferry__child *c, struct ferry__exit *ret_exit)
{
        siginfo_t info;
        int r;

        if (!c || c->pidfd < 0 || !ret_exit)
                return -EINVAL;
        /* Wait without reaping: the zombie leader keeps the group id from being reused while we kill it. */
        r = wait_pidfd(c->pidfd, WEXITED | WNOWAIT, &info);
        if (r < 0)
                goto out; /* reaped behind our back (SIGCHLD ignored?): the group id may be a stranger's now */
        /* Helpers the handler started and left behind would otherwise run on, unsupervised. */
        (void)kill(-c->pid, SIGKILL);
        r = wait_pidfd(c->pidfd, WEXITED, &info);
        if (r < 0)
                goto out;
        /* Whatever was written before the kill is in the pipe; the drain is bounded because killed helpers
         * can still be writing until they are gone. */
        read_stderr(c, REAP_BUDGET);
        if (info.si_code == CLD_EXITED)
                *ret_exit = (struct ferry__exit){.code = info.si_status, .signal = 0};
        else
                *ret_exit = (struct ferry__exit){.code = -1, .signal = info.si_status};
out:
        child_forget(c);
        return r;
}

const char *ferry__child_stderr_lines(const struct ferry__child *c, int max_lines, size_t *ret_len)
{
        size_t end = c->tail_len, start;
        int lines = 0;

        /* A final newline ends the last line; it does not begin an empty one. */
        if (end > 0 && c->tail[end - 1] == '\n')
                end--;
        if (max_lines <= 0) {
                *ret_len = 0;
                return c->tail + end;
        }
        for (start = end; start > 0; start--)
                if (c->tail[start - 1] == '\n' && ++lines == max_lines)
                        break;
        if (start == 0 && c->tail_cut) {
                /* The oldest byte kept may be in the middle of a line whose start was dropped. */
                const char *newline = memchr(c->tail, '\n', end);

                if (newline)
                        start = (size_t)(newline - c->tail) + 1;
        }
        *ret_len = end - start;
        return c->tail + start;
}

void ferry__child_abandon(struct ferry__child *c)
{
        siginfo_t info;

        if (!c || c->pidfd < 0)
                return;
        /* The leader too, directly: it may have moved itself to another group of the session. */
        (void)kill(-c->pid, SIGKILL);
        (void)pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0);
        (void)wait_pidfd(c->pidfd, WEXITED, &info);
        child_forget(c);
}
