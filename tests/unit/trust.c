/* Unit tests: trust.c, reaching files beneath folders ferry trusts without
 * following a link someone planted. Each test works in a fresh temporary
 * folder; the ones that need another owner than ours skip without root. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static char base[64];
static int base_fd = -1;

static void make_base(void)
{
        snprintf(base, sizeof(base), "/tmp/ferry-trust.XXXXXX");
        cr_assert_not_null(mkdtemp(base));
        base_fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cr_assert_geq(base_fd, 0);
}

static void remove_base(void)
{
        char command[128];

        close(base_fd);
        snprintf(command, sizeof(command), "rm -rf '%s'", base);
        (void)system(command);
}

static void write_text(const char *name, const char *text)
{
        int fd = openat(base_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        cr_assert_geq(fd, 0, "cannot make %s", name);
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static void read_text(const char *name, char *buffer, size_t size)
{
        int fd = openat(base_fd, name, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buffer, size - 1);

        if (fd >= 0)
                close(fd);
        buffer[n > 0 ? n : 0] = '\0';
}

TestSuite(trust, .init = make_base, .fini = remove_base);

Test(trust, relative_paths_that_stay_inside)
{
        const char *clean[] = {"a", "a/b", "a/b/c", ".hidden", "a/..b", "...", "a/b.."};
        const char *unclean[] = {"", "/a", "a/", "a//b", ".", "..", "a/.", "a/..", "../a", "a/../b", "./a"};

        for (size_t i = 0; i < sizeof(clean) / sizeof(*clean); i++)
                cr_assert(ferry__relative_is_clean(clean[i]), "'%s' refused", clean[i]);
        for (size_t i = 0; i < sizeof(unclean) / sizeof(*unclean); i++)
                cr_assert(!ferry__relative_is_clean(unclean[i]), "'%s' taken", unclean[i]);
        cr_assert(!ferry__relative_is_clean(NULL));
}

Test(trust, a_walk_never_follows_a_link)
{
        int fd = -1;

        cr_assert_eq(mkdirat(base_fd, "in", 0755), 0);
        cr_assert_eq(mkdirat(base_fd, "in/sub", 0755), 0);
        cr_assert_eq(mkdirat(base_fd, "secret", 0700), 0);
        write_text("secret/canary", "secret");
        cr_assert_eq(symlinkat("../secret", base_fd, "in/link"), 0);
        cr_assert_eq(symlinkat("/", base_fd, "in/root"), 0);

        int in_fd = openat(base_fd, "in", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        cr_assert_eq(ferry__open_beneath(in_fd, "sub", O_RDONLY | O_DIRECTORY, &fd), 0);
        close(fd);
        cr_assert_eq(ferry__open_beneath(in_fd, "link", O_RDONLY | O_DIRECTORY, &fd), -ELOOP);
        cr_assert_eq(ferry__open_beneath(in_fd, "link/canary", O_RDONLY, &fd), -ELOOP);
        cr_assert_eq(ferry__open_beneath(in_fd, "root/etc", O_RDONLY | O_DIRECTORY, &fd), -ELOOP);
        cr_assert_eq(ferry__open_beneath(in_fd, "../secret/canary", O_RDONLY, &fd), -EINVAL);
        cr_assert_eq(ferry__open_beneath(in_fd, "/etc", O_RDONLY, &fd), -EINVAL);
        close(in_fd);
}

Test(trust, a_note_is_never_written_through_a_planted_link)
{
        char text[64];
        struct stat st;

        write_text("target", "untouched");
        /* Every temporary name a note could take, planted as a link to target. */
        for (unsigned i = 0; i < 8; i++) {
                char name[64];

                snprintf(name, sizeof(name), ".ferry-tmp.%d.%u", (int)getpid(), i);
                cr_assert_eq(symlinkat("target", base_fd, name), 0);
        }
        cr_assert_lt(ferry__write_note(base_fd, "note", "hostile", 7), 0);
        read_text("target", text, sizeof(text));
        cr_assert_str_eq(text, "untouched");
        /* With a free name: written, private, and a link at the final name is replaced, not followed. */
        for (unsigned i = 0; i < 8; i++) {
                char name[64];

                snprintf(name, sizeof(name), ".ferry-tmp.%d.%u", (int)getpid(), i);
                cr_assert_eq(unlinkat(base_fd, name, 0), 0);
        }
        cr_assert_eq(symlinkat("target", base_fd, "note"), 0);
        cr_assert_eq(ferry__write_note(base_fd, "note", "note text", 9), 0);
        read_text("target", text, sizeof(text));
        cr_assert_str_eq(text, "untouched");
        cr_assert_eq(fstatat(base_fd, "note", &st, AT_SYMLINK_NOFOLLOW), 0);
        cr_assert(S_ISREG(st.st_mode));
        cr_assert_eq(st.st_mode & 0777, 0600);
}

Test(trust, a_note_that_is_a_fifo_is_not_read)
{
        char buffer[32];

        cr_assert_eq(mkfifoat(base_fd, "fifo", 0644), 0);
        cr_assert_eq(symlinkat("/etc/hostname", base_fd, "link"), 0);
        cr_assert_lt(ferry__read_note(base_fd, "fifo", buffer, sizeof(buffer)), 0);
        cr_assert_lt(ferry__read_note(base_fd, "link", buffer, sizeof(buffer)), 0);
        write_text("plain", "abc");
        cr_assert_eq(ferry__read_note(base_fd, "plain", buffer, sizeof(buffer)), 3);
        cr_assert_str_eq(buffer, "abc");
}

Test(trust, our_folder_is_made_private_and_a_link_is_refused)
{
        struct ferry__trust t = {0};
        struct stat st;
        int fd = -1;

        cr_assert_eq(ferry__trusted_dir(&t, base_fd, "own", 0711, true, "own", &fd), 0);
        cr_assert_eq(fstat(fd, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0711);
        close(fd);
        cr_assert_eq(mkdirat(base_fd, "elsewhere", 0700), 0);
        cr_assert_eq(symlinkat("elsewhere", base_fd, "linked"), 0);
        cr_assert_eq(ferry__trusted_dir(&t, base_fd, "linked", 0711, true, "B/linked", &fd), -ELOOP);
        cr_assert(strstr(t.why, "B/linked is a symbolic link"), "%s", t.why);
        write_text("file", "x");
        cr_assert_eq(ferry__trusted_dir(&t, base_fd, "file", 0711, true, "B/file", &fd), -ENOTDIR);
        cr_assert_eq(mkdirat(base_fd, "open", 0700), 0);
        cr_assert_eq(fchmodat(base_fd, "open", 0777, 0), 0);
        cr_assert_eq(ferry__trusted_dir(&t, base_fd, "open", 0711, true, "B/open", &fd), -EPERM);
        cr_assert(strstr(t.why, "writable by everyone"), "%s", t.why);
}

Test(trust, a_folder_someone_else_made_is_refused)
{
        struct ferry__trust t = {0};
        int fd = -1;

        if (geteuid() != 0)
                cr_skip_test("needs root (to give a folder to another user)");
        cr_assert_eq(mkdirat(base_fd, "theirs", 0755), 0);
        cr_assert_eq(fchownat(base_fd, "theirs", 65534, 65534, 0), 0);
        cr_assert_eq(ferry__trusted_dir(&t, base_fd, "theirs", 0711, true, "B/theirs", &fd), -EPERM);
        cr_assert(strstr(t.why, "not owned by uid 0 but by uid 65534"), "%s", t.why);
}

Test(trust, an_admin_folder_is_reached_only_through_trusted_links)
{
        struct ferry__trust t = {0};
        char path[256];
        struct stat st;
        int fd = -1;

        cr_assert_eq(mkdirat(base_fd, "real", 0700), 0);
        cr_assert_eq(mkdirat(base_fd, "real/done", 0700), 0);
        cr_assert_eq(symlinkat("real", base_fd, "ours"), 0);
        snprintf(path, sizeof(path), "%s/ours/done", base);
        cr_assert_eq(ferry__open_admin_dir(&t, path, 0, &fd), 0, "%s", t.why);
        cr_assert_eq(fstat(fd, &st), 0);
        close(fd);
        /* Missing folders are made, privately. */
        snprintf(path, sizeof(path), "%s/ours/new/deeper", base);
        cr_assert_eq(ferry__open_admin_dir(&t, path, 0700, &fd), 0, "%s", t.why);
        close(fd);
        cr_assert_eq(fstatat(base_fd, "real/new/deeper", &st, 0), 0);
        cr_assert_eq(st.st_mode & 0777, 0700);
        if (geteuid() != 0)
                return;
        /* A link made by someone else is not followed. */
        cr_assert_eq(symlinkat("real", base_fd, "theirs"), 0);
        cr_assert_eq(fchownat(base_fd, "theirs", 65534, 65534, AT_SYMLINK_NOFOLLOW), 0);
        snprintf(path, sizeof(path), "%s/theirs/done", base);
        cr_assert_eq(ferry__open_admin_dir(&t, path, 0700, &fd), -ELOOP);
        cr_assert(strstr(t.why, "symbolic link theirs"), "%s", t.why);
}

Test(trust, rename_never_replaces)
{
        char text[32];

        write_text("a", "first");
        write_text("b", "second");
        cr_assert_eq(ferry__rename_noreplace(base_fd, "a", base_fd, "b"), -EEXIST);
        read_text("b", text, sizeof(text));
        cr_assert_str_eq(text, "second");
        cr_assert_eq(ferry__rename_noreplace(base_fd, "a", base_fd, "c"), 0);
        read_text("c", text, sizeof(text));
        cr_assert_str_eq(text, "first");
}
