/* db.c: SQLite databases are opened through a folder's held descriptor, not
 * by the folder's path: a folder swapped after it was opened (here: a file
 * system mounted over it, in a mount namespace of the test's own) does not
 * lead the database elsewhere. */
#include "scratch.h"

#include "run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* In a child with a mount namespace of its own: holds FOLDER/d open, mounts
 * a tmpfs over FOLDER/d, then makes the database through the descriptor.
 * Exit status: 0 done, 2 no namespace or mount (skip), 1 failed. */
static int make_behind_mount(const char *d)
{
        sqlite3 *db;
        int fd;

        if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 2;
        fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return 1;
        if (mount("tmpfs", d, "tmpfs", 0, "size=1m") < 0)
                return 2;
        if (ferry__db_open(fd, "x.db", false, &db) < 0)
                return 1;
        if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (a); INSERT INTO t VALUES (1);", NULL, NULL,
                         NULL) != SQLITE_OK)
                return 1;
        sqlite3_close(db);
        return 0;
}

Test(db, opens_through_the_descriptor_not_the_path, .init = make_folder, .fini = remove_folder)
{
        char d[300], x[320];
        struct stat st;
        pid_t pid;
        int status;

        snprintf(d, sizeof(d), "%s/d", folder);
        cr_assert_eq(mkdir(d, 0700), 0);
        if (geteuid() != 0) {
                remove_folder(); /* a skip leaves without running the suite's fini */
                cr_skip_test("needs root (a mount namespace and a mount)");
        }
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
                _exit(make_behind_mount(d));
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status));
        if (WEXITSTATUS(status) == 2) {
                remove_folder();
                cr_skip_test("cannot make a mount namespace or mount a tmpfs here");
        }
        cr_assert_eq(WEXITSTATUS(status), 0);
        /* The folder held, not the tmpfs over its path (gone with the namespace). */
        snprintf(x, sizeof(x), "%s/x.db", d);
        cr_assert_eq(stat(x, &st), 0, "the database is not in the folder held: %s", x);
        cr_assert_gt(st.st_size, 0);
}

Test(db, refuses_a_name_with_a_slash_and_opens_no_missing_database_read_only, .init = make_folder,
     .fini = remove_folder)
{
        sqlite3 *db = NULL;
        int fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        cr_assert_geq(fd, 0);
        cr_assert_eq(ferry__db_open(fd, "a/b.db", false, &db), -EINVAL);
        cr_assert_eq(ferry__db_open(fd, "", false, &db), -EINVAL);
        cr_assert_eq(ferry__db_open(fd, "none.db", true, &db), -ENOENT);
        cr_assert_eq(ferry__db_open(fd, "new.db", false, &db), 0);
        cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t (a)", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        cr_assert_eq(ferry__db_open(fd, "new.db", true, &db), 0);
        sqlite3_close(db);
        close(fd);
}
