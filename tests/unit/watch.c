/* Unit tests: the watcher through its public API, on real folders. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ferry.h>

#include "scratch.h"
#include "next_event.h"

static void write_file(const char *name, const char *content)
{
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", folder, name);
        f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(content, f);
        fclose(f);
}

static const char *name_of(const struct ferry_event *ev)
{
        const char *slash = strrchr(ev->path, '/');

        return slash ? slash + 1 : ev->path;
}

TestSuite(watch, .init = make_folder, .fini = remove_folder, .timeout = 30);

Test(watch, arguments_are_checked)
{
        struct ferry_watch *w = NULL;
        const struct ferry_event *ev;

        cr_assert_eq(ferry_watch_new(NULL, 0), -EINVAL);
        cr_assert_eq(ferry_watch_new(&w, 1u << 30), -EINVAL);
        cr_assert_null(w, "out-parameter written on failure");
        ferry_watch_free(NULL);
        cr_assert_eq(ferry_watch_new(&w, 0), 0);
        cr_assert_eq(ferry_watch_add(w, ""), -EINVAL);
        cr_assert_eq(ferry_watch_add(w, "/nonexistent/ferry"), -ENOENT);
        cr_assert_eq(ferry_watch_add(w, "/etc/hostname"), -ENOTDIR);
        cr_assert_eq(ferry_watch_set_ready(w, "bogus"), -EINVAL);
        cr_assert_eq(ferry_watch_next(w, &ev, 0), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        cr_assert_eq(ferry_watch_add(w, folder), -EEXIST);
        cr_assert_eq(ferry_watch_set_ready(w, "auto"), -EINVAL, "policy changed after roots were added");
        ferry_watch_free(w);
}

Test(watch, events_for_a_written_file)
{
        struct ferry_watch *w;
        const struct ferry_event *ev;

        cr_assert_eq(ferry_watch_new(&w, 0), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        write_file("a b", "hello");
        ev = next_of(w, FERRY_EVENT_CREATE, 5000);
        cr_assert_not_null(ev);
        cr_assert_str_eq(name_of(ev), "a b");
        cr_assert_str_eq(ev->root, folder);
        cr_assert_eq(ev->path_len, strlen(folder) + 4);
        ev = next_of(w, FERRY_EVENT_CLOSE_WRITE, 5000);
        cr_assert_not_null(ev);
        cr_assert_str_eq(name_of(ev), "a b");
        ferry_watch_free(w);
}

Test(watch, two_watchers_do_not_interfere)
{
        struct ferry_watch *a, *b;
        const struct ferry_event *ev;

        cr_assert_eq(ferry_watch_new(&a, 0), 0);
        cr_assert_eq(ferry_watch_new(&b, 0), 0);
        cr_assert_eq(ferry_watch_set_events(a, FERRY_EVENT_CLOSE_WRITE), 0);
        cr_assert_eq(ferry_watch_set_events(b, FERRY_EVENT_CLOSE_WRITE), 0);
        cr_assert_eq(ferry_watch_add(a, folder), 0);
        cr_assert_eq(ferry_watch_add(b, folder), 0);
        write_file("one", "1");
        ev = next_of(a, FERRY_EVENT_CLOSE_WRITE, 5000);
        cr_assert_not_null(ev);
        cr_assert_str_eq(name_of(ev), "one");
        cr_assert_eq(ferry_watch_next(a, &ev, 100), 0, "a sees nothing more");
        ev = next_of(b, FERRY_EVENT_CLOSE_WRITE, 5000);
        cr_assert_not_null(ev, "b still has its own copy of the event");
        cr_assert_str_eq(name_of(ev), "one");
        ferry_watch_free(a);
        ferry_watch_free(b);
}

Test(watch, fd_for_a_poll_loop)
{
        struct ferry_watch *w;
        const struct ferry_event *ev;
        struct pollfd pfd;

        cr_assert_eq(ferry_watch_new(&w, 0), 0);
        cr_assert_eq(ferry_watch_set_ready(w, "close=50ms"), 0);
        cr_assert_eq(ferry_watch_set_events(w, FERRY_EVENT_READY), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        pfd = (struct pollfd){.fd = ferry_watch_fd(w), .events = POLLIN};
        cr_assert_geq(pfd.fd, 0);
        cr_assert_eq(poll(&pfd, 1, 0), 0, "readable with nothing to do");
        write_file("x", "data");
        /* The close arrives, then the guard's timer must wake the poll loop too. */
        for (int rounds = 0; rounds < 50; rounds++) {
                cr_assert_eq(poll(&pfd, 1, 5000), 1, "poll loop was not woken");
                if (ferry_watch_next(w, &ev, 0) == 1) {
                        cr_assert_eq(ev->type, FERRY_EVENT_READY);
                        cr_assert_str_eq(name_of(ev), "x");
                        cr_assert_eq(ev->size, 4);
                        ferry_watch_free(w);
                        return;
                }
        }
        cr_assert_fail("no ready event");
}

Test(watch, close_waits_for_the_last_writer)
{
        struct ferry_watch *w;
        const struct ferry_event *ev;
        char path[512];
        int first, second;

        snprintf(path, sizeof(path), "%s/slow", folder);
        cr_assert_eq(ferry_watch_new(&w, 0), 0);
        cr_assert_eq(ferry_watch_set_ready(w, "close=20ms"), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        first = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        second = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        cr_assert(first >= 0 && second >= 0);
        cr_assert_eq(write(second, "12", 2), 2);
        close(second); /* one writer closed; the other still has it open */
        cr_assert_null(next_of(w, FERRY_EVENT_READY, 300), "ready while a writer still had it open");
        cr_assert_eq(pwrite(first, "abcd", 4, 2), 4);
        close(first);
        ev = next_of(w, FERRY_EVENT_READY, 5000);
        cr_assert_not_null(ev);
        cr_assert_eq(ev->size, 6);
        cr_assert_null(next_of(w, FERRY_EVENT_READY, 200), "reported twice");
        ferry_watch_free(w);
}

Test(watch, ready_once_per_version)
{
        struct ferry_watch *w;
        const struct ferry_event *ev;
        char path[512];
        int fd;

        snprintf(path, sizeof(path), "%s/v", folder);
        cr_assert_eq(ferry_watch_new(&w, 0), 0);
        cr_assert_eq(ferry_watch_set_ready(w, "close=10ms"), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        write_file("v", "one");
        cr_assert_not_null(next_of(w, FERRY_EVENT_READY, 5000));
        /* Opened for writing and closed without a write: not a new version. */
        fd = open(path, O_WRONLY | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        close(fd);
        cr_assert_null(next_of(w, FERRY_EVENT_READY, 300), "an unchanged file reported again");
        write_file("v", "two!");
        ev = next_of(w, FERRY_EVENT_READY, 5000);
        cr_assert_not_null(ev, "a rewritten file is a new version");
        cr_assert_eq(ev->size, 4);
        ferry_watch_free(w);
}

/* auto: a close at size 0 can come before the writing (smbnetfs creates,
 * closes and reopens every file); an empty file is ready only once it stayed
 * empty for the quiet time. */
Test(watch, auto_waits_out_a_close_at_size_0)
{
        struct ferry_watch *w;
        const struct ferry_event *ev;
        char path[512];
        int fd;

        cr_assert_eq(ferry_watch_new(&w, 0), 0);
        cr_assert_eq(ferry_watch_set_ready(w, "auto=1s"), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        snprintf(path, sizeof(path), "%s/e", folder);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        close(fd);
        /* the reopen comes later than the 100ms guard */
        ev = next_of(w, FERRY_EVENT_READY, 400);
        cr_assert_null(ev, "an empty file was ready after its first close, before its writing began");
        write_file("e", "hello");
        ev = next_of(w, FERRY_EVENT_READY, 5000);
        cr_assert_not_null(ev);
        cr_assert_str_eq(name_of(ev), "e");
        cr_assert_eq(ev->size, 5);
        /* an empty file that stays empty is ready after the quiet time */
        snprintf(path, sizeof(path), "%s/flag", folder);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        close(fd);
        ev = next_of(w, FERRY_EVENT_READY, 5000);
        cr_assert_not_null(ev);
        cr_assert_str_eq(name_of(ev), "flag");
        cr_assert_eq(ev->size, 0);
        ferry_watch_free(w);
}

Test(watch, rename_policy_and_temp_names)
{
        struct ferry_watch *w;
        const struct ferry_event *ev;
        char from[512], to[512];

        cr_assert_eq(ferry_watch_new(&w, 0), 0);
        cr_assert_eq(ferry_watch_set_ready(w, "rename"), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        write_file("direct", "not renamed");
        write_file("data.part", "payload");
        snprintf(from, sizeof(from), "%s/data.part", folder);
        snprintf(to, sizeof(to), "%s/data", folder);
        cr_assert_eq(rename(from, to), 0);
        ev = next_of(w, FERRY_EVENT_READY, 5000);
        cr_assert_not_null(ev);
        cr_assert_str_eq(name_of(ev), "data");
        cr_assert_null(next_of(w, FERRY_EVENT_READY, 200), "a file written in place is not ready under rename");
        ferry_watch_free(w);
}

Test(watch, existing_files_and_globs)
{
        struct ferry_watch *w;
        const struct ferry_event *ev;

        write_file("a.csv", "1");
        write_file("b.txt", "2");
        write_file("skip.csv", "3");
        cr_assert_eq(ferry_watch_new(&w, FERRY_WATCH_EXISTING), 0);
        cr_assert_eq(ferry_watch_set_ready(w, "close=10ms"), 0);
        cr_assert_eq(ferry_watch_include(w, "*.csv"), 0);
        cr_assert_eq(ferry_watch_exclude(w, "skip*"), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        ev = next_of(w, FERRY_EVENT_READY, 5000);
        cr_assert_not_null(ev);
        cr_assert_str_eq(name_of(ev), "a.csv");
        cr_assert_null(next_of(w, FERRY_EVENT_READY, 300));
        ferry_watch_free(w);
}

Test(watch, explain_names_the_sysctl)
{
        struct ferry_watch *w;
        char message[1024];

        cr_assert_eq(ferry_watch_new(&w, 0), 0);
        cr_assert_eq(ferry_watch_explain(w, -ENOSPC, "/srv/in", message, sizeof(message)), 0);
        cr_assert_not_null(strstr(message, "/srv/in"));
        cr_assert_not_null(strstr(message, "fs.inotify.max_user_watches"));
        ferry_watch_free(w);
}

/* A rename within the tree is one event with both paths, however the reads
 * fall: a process renames a file back and forth between two folders while
 * the watcher reads as often as it can, often between the MOVED_FROM and the
 * MOVED_TO the kernel queues for one rename. */
Test(watch, moves_within_the_tree_are_never_split)
{
        enum { MOVES = 20000 };
        char sub[300], a[320], b[320];
        struct ferry_watch *w;
        const struct ferry_event *ev;
        int paired = 0, split = 0, status;
        pid_t pid;

        snprintf(sub, sizeof(sub), "%s/sub", folder);
        cr_assert_eq(mkdir(sub, 0700), 0);
        write_file("f", "x");
        snprintf(a, sizeof(a), "%s/f", folder);
        snprintf(b, sizeof(b), "%s/sub/f", folder);
        cr_assert_eq(ferry_watch_new(&w, FERRY_WATCH_RECURSIVE), 0);
        cr_assert_eq(ferry_watch_set_events(w, FERRY_EVENT_MOVED_FROM | FERRY_EVENT_MOVED_TO), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
                for (int i = 0; i < MOVES; i++)
                        if (rename(i % 2 ? b : a, i % 2 ? a : b) < 0)
                                _exit(1);
                _exit(0);
        }
        while (paired + split < MOVES) {
                int r = ferry_watch_next(w, &ev, 5000);

                cr_assert_eq(r, 1, "%d of %d moves seen", paired + split, MOVES);
                if (ev->type == FERRY_EVENT_MOVED_TO && ev->old_path)
                        paired++;
                else if (ev->type == FERRY_EVENT_MOVED_TO)
                        split++;
        }
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        cr_assert_eq(split, 0, "%d of %d renames within the tree reported as a move out and a move in", split, MOVES);
        ferry_watch_free(w);
}

/* Beyond the cap of watched folders, a folder is listed every few seconds
 * instead: its files are still ready (later), no watch is used for it, and it
 * is watched once a watch is free. */
Test(watch, folders_beyond_the_cap_are_polled)
{
        struct ferry_watch *w;
        const struct ferry_event *ev;
        char path[512];

        cr_assert_eq(ferry_watch_new(&w, FERRY_WATCH_RECURSIVE), 0);
        cr_assert_eq(ferry_watch_set_ready(w, "close=10ms"), 0);
        cr_assert_eq(ferry_watch_set_max_dirs(w, 2), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        snprintf(path, sizeof(path), "%s/a", folder);
        cr_assert_eq(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/b", folder);
        cr_assert_eq(mkdir(path, 0755), 0);
        /* a is watched (the root and a: the cap); b is polled, said once. */
        ev = next_of(w, FERRY_EVENT_ERROR, 5000);
        cr_assert_not_null(ev);
        cr_assert_eq(ev->error, -EDQUOT);
        cr_assert_str_eq(name_of(ev), "b");
        cr_assert_eq(ferry_watch_count(w), 2);
        write_file("b/polled", "x");
        ev = next_of(w, FERRY_EVENT_READY, 15000);
        cr_assert_not_null(ev, "a file in a polled folder was never ready");
        cr_assert_str_eq(name_of(ev), "polled");
        cr_assert_eq(ferry_watch_count(w), 2);
        /* a goes away: b gets its watch at the next retry, and events again. */
        snprintf(path, sizeof(path), "%s/a", folder);
        cr_assert_eq(rmdir(path), 0);
        for (int i = 0; i < 200 && ferry_watch_count(w) == 2; i++)
                (void)ferry_watch_next(w, &ev, 50);
        cr_assert_eq(ferry_watch_count(w), 1, "a's watch was not dropped");
        for (int i = 0; i < 300 && ferry_watch_count(w) == 1; i++)
                (void)ferry_watch_next(w, &ev, 50);
        cr_assert_eq(ferry_watch_count(w), 2, "b was not watched once a watch was free");
        write_file("b/watched", "y");
        ev = next_of(w, FERRY_EVENT_READY, 15000);
        cr_assert_not_null(ev);
        cr_assert_str_eq(name_of(ev), "watched");
        cr_assert_eq(ferry_watch_count(w), 2);
        ferry_watch_free(w);
}
