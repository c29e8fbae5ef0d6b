/* Unit tests: the backend seam. The same watch tests, through the public API,
 * against each backend: inotify (the kernel's events) and poll (listings
 * only, no inotify watch at all). What a user may rely on whichever backend
 * watches a folder is asserted the same way for both: every completed file is
 * reported ready once per version, with its size; deletions are seen; new
 * subfolders are followed; a root that goes away is said, and taken up again
 * when it comes back; names are bytes. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ferry.h>

#include "scratch.h"
#include "next_event.h"

#define POLL_MS 50
#define WAIT_MS 10000

static void write_at(const char *relative, const char *content)
{
        char path[512];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", folder, relative);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
        cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
}

static void at(char *buf, size_t size, const char *relative)
{
        snprintf(buf, size, "%s/%s", folder, relative);
}

/* A watcher on folder with the backend, policy and flags given. */
static struct ferry_watch *watcher(const char *backend, const char *policy, unsigned flags)
{
        struct ferry_watch *w;

        cr_assert_eq(ferry_watch_new(&w, flags), 0);
        cr_assert_eq(ferry_watch_set_backend(w, backend), 0);
        cr_assert_eq(ferry_watch_set_poll_interval(w, (int64_t)POLL_MS * 1000000), 0);
        if (policy)
                cr_assert_eq(ferry_watch_set_ready(w, policy), 0);
        cr_assert_eq(ferry_watch_add(w, folder), 0);
        return w;
}

/* The path of ev relative to the folder. */
static const char *relative(const struct ferry_event *ev)
{
        size_t n = strlen(folder);

        cr_assert(strncmp(ev->path, folder, n) == 0 && ev->path[n] == '/', "%s is not in %s", ev->path, folder);
        return ev->path + n + 1;
}

/* The next READY event, which must be for name (relative to the folder). */
static const struct ferry_event *expect_ready(struct ferry_watch *w, const char *backend, const char *name)
{
        const struct ferry_event *ev = next_of(w, FERRY_EVENT_READY, WAIT_MS);

        cr_assert_not_null(ev, "%s: %s was not reported ready", backend, name);
        cr_assert_str_eq(relative(ev), name);
        return ev;
}

/* Collects READY events for quiet_ms after the last one: how often each
 * name was reported, into names/counts (at most max names). */
static size_t collect_ready(struct ferry_watch *w, int quiet_ms, char names[][64], int *counts, size_t max)
{
        const struct ferry_event *ev;
        size_t n = 0;

        while ((ev = next_of(w, FERRY_EVENT_READY, quiet_ms))) {
                size_t i;

                for (i = 0; i < n && strcmp(names[i], relative(ev)) != 0; i++)
                        ;
                if (i == n) {
                        cr_assert_lt(n, max);
                        snprintf(names[n], 64, "%s", relative(ev));
                        counts[n++] = 0;
                }
                counts[i]++;
        }
        return n;
}

/* inotify watches this process holds, from /proc/self/fdinfo. */
static int inotify_watches(void)
{
        DIR *d = opendir("/proc/self/fdinfo");
        struct dirent *de;
        int count = 0;

        cr_assert_not_null(d);
        while ((de = readdir(d))) {
                char path[300], line[256];
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof(line), f))
                        count += strncmp(line, "inotify wd:", 11) == 0;
                fclose(f);
        }
        closedir(d);
        return count;
}

static const char *const backends[] = {"inotify", "poll"};

/* Each test runs once per backend. */
#define BACKEND_TEST(name)                                                                        \
        static void name(const char *backend);                                                    \
        Test(backends, name##_inotify, .init = make_folder, .fini = remove_folder, .timeout = 60) \
        {                                                                                         \
                name(backends[0]);                                                                \
        }                                                                                         \
        Test(backends, name##_poll, .init = make_folder, .fini = remove_folder, .timeout = 60)    \
        {                                                                                         \
                name(backends[1]);                                                                \
        }                                                                                         \
        static void name(const char *backend)

BACKEND_TEST(written_file_ready_once_with_its_size)
{
        struct ferry_watch *w = watcher(backend, "close=50ms", 0);
        const struct ferry_event *ev;

        write_at("a b", "hello");
        ev = expect_ready(w, backend, "a b");
        cr_assert_eq(ev->size, 5);
        cr_assert_str_eq(ev->root, folder);
        cr_assert_null(next_of(w, FERRY_EVENT_READY, 5 * POLL_MS), "%s: reported twice", backend);
        /* A new version is a new hand-out; the same one is not. */
        write_at("a b", "hello again");
        ev = next_of(w, FERRY_EVENT_READY, WAIT_MS);
        cr_assert_not_null(ev, "%s: the rewrite was not reported", backend);
        cr_assert_eq(ev->size, 11);
        ferry_watch_free(w);
}

BACKEND_TEST(renamed_and_linked_in_files_are_ready)
{
        struct ferry_watch *w = watcher(backend, "rename", 0);
        char from[512], to[512], staging[512];
        const struct ferry_event *ev;

        at(staging, sizeof(staging), ".staging");
        cr_assert_eq(mkdir(staging, 0755), 0);
        write_at("x.part", "renamed");
        at(from, sizeof(from), "x.part");
        at(to, sizeof(to), "x");
        cr_assert_eq(rename(from, to), 0);
        ev = expect_ready(w, backend, "x");
        /* Published by link(2) from a staging folder. */
        write_at(".staging/y", "linked");
        at(from, sizeof(from), ".staging/y");
        at(to, sizeof(to), "y");
        cr_assert_eq(link(from, to), 0);
        ev = expect_ready(w, backend, "y");
        cr_assert_eq(ev->size, 6);
        ferry_watch_free(w);
}

BACKEND_TEST(deletions_are_seen)
{
        struct ferry_watch *w = watcher(backend, NULL, 0);
        const struct ferry_event *ev;
        char path[512];

        write_at("gone", "x");
        cr_assert_not_null(next_of(w, FERRY_EVENT_CREATE, WAIT_MS), "%s: no create", backend);
        at(path, sizeof(path), "gone");
        cr_assert_eq(unlink(path), 0);
        ev = next_of(w, FERRY_EVENT_DELETE, WAIT_MS);
        cr_assert_not_null(ev, "%s: no delete", backend);
        cr_assert_str_eq(relative(ev), "gone");
        ferry_watch_free(w);
}

BACKEND_TEST(new_subfolders_are_followed)
{
        struct ferry_watch *w = watcher(backend, "close=50ms", FERRY_WATCH_RECURSIVE);
        char path[512];

        at(path, sizeof(path), "sub");
        cr_assert_eq(mkdir(path, 0755), 0);
        at(path, sizeof(path), "sub/deeper");
        cr_assert_eq(mkdir(path, 0755), 0);
        write_at("sub/deeper/f", "deep");
        (void)expect_ready(w, backend, "sub/deeper/f");
        ferry_watch_free(w);
}

BACKEND_TEST(a_burst_each_ready_exactly_once)
{
        enum { FILES = 300 };
        static char names[FILES][64];
        static int counts[FILES];
        struct ferry_watch *w = watcher(backend, "close=20ms", 0);
        size_t n;

        for (int i = 0; i < FILES; i++) {
                char name[32];

                snprintf(name, sizeof(name), "f%03d", i);
                write_at(name, name);
        }
        n = collect_ready(w, 10 * POLL_MS + 500, names, counts, FILES);
        cr_assert_eq(n, FILES, "%s: %zu of %d files reported", backend, n, FILES);
        for (size_t i = 0; i < n; i++)
                cr_assert_eq(counts[i], 1, "%s: %s reported %d times", backend, names[i], counts[i]);
        ferry_watch_free(w);
}

BACKEND_TEST(names_are_bytes)
{
        struct ferry_watch *w = watcher(backend, "close=20ms", 0);
        const char *odd = "new\nline \xff\xfe *?";

        write_at(odd, "odd");
        (void)expect_ready(w, backend, odd);
        ferry_watch_free(w);
}

BACKEND_TEST(existing_files_are_reported_when_asked)
{
        struct ferry_watch *w;

        write_at("before", "already here");
        w = watcher(backend, "close=20ms", FERRY_WATCH_EXISTING);
        (void)expect_ready(w, backend, "before");
        ferry_watch_free(w);
}

BACKEND_TEST(done_file_markers)
{
        struct ferry_watch *w = watcher(backend, "done-file", 0);

        write_at("data", "payload");
        cr_assert_null(next_of(w, FERRY_EVENT_READY, 5 * POLL_MS), "%s: ready without its marker", backend);
        write_at("data.done", "");
        (void)expect_ready(w, backend, "data");
        ferry_watch_free(w);
}

BACKEND_TEST(a_root_that_goes_and_comes_back)
{
        struct ferry_watch *w = watcher(backend, "close=20ms", FERRY_WATCH_FOLLOW);
        const struct ferry_event *ev;
        char aside[300], command[400];

        snprintf(aside, sizeof(aside), "%s.aside", folder);
        cr_assert_eq(rename(folder, aside), 0);
        ev = next_of(w, FERRY_EVENT_ROOT_GONE, WAIT_MS);
        cr_assert_not_null(ev, "%s: a root moved away was not said", backend);
        cr_assert_str_eq(ev->path, folder);
        /* Another folder under the root's name: watched, its files reported. */
        cr_assert_eq(mkdir(folder, 0755), 0);
        cr_assert_not_null(next_of(w, FERRY_EVENT_ROOT_BACK, WAIT_MS), "%s: the root's return was not said", backend);
        write_at("after", "back");
        ev = expect_ready(w, backend, "after");
        ferry_watch_free(w);
        snprintf(command, sizeof(command), "rm -rf '%s'", aside);
        cr_assert_eq(system(command), 0);
}

/* Not the same for both: what each backend costs the user's inotify watches. */
Test(backends, poll_uses_no_inotify_watch, .init = make_folder, .fini = remove_folder, .timeout = 60)
{
        struct ferry_watch *w = watcher("poll", NULL, FERRY_WATCH_RECURSIVE);
        char path[512], how[256];

        at(path, sizeof(path), "sub");
        cr_assert_eq(mkdir(path, 0755), 0);
        write_at("sub/f", "x");
        cr_assert_not_null(next_of(w, FERRY_EVENT_CREATE, WAIT_MS));
        cr_assert_eq(inotify_watches(), 0, "polling alone holds inotify watches");
        cr_assert_eq(ferry_watch_describe_root(w, folder, how, sizeof(how)), 0);
        cr_assert(strstr(how, "no inotify"), "%s", how);
        ferry_watch_free(w);
        w = watcher("inotify", NULL, FERRY_WATCH_RECURSIVE);
        cr_assert_eq(inotify_watches(), 2, "inotify: one watch per folder");
        ferry_watch_free(w);
}
