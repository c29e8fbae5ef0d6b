/* Unit tests: the folder as a queue (ferry_queue_*, ferry_claim_*) through the
 * public API, on real folders, with real processes sharing one folder. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ferry.h>

#include "scratch.h"

static void write_file(const char *name, const char *content)
{
        char path[512], temp[520];
        FILE *f;

        /* Renamed into place: ready at once. */
        snprintf(path, sizeof(path), "%s/%s", folder, name);
        snprintf(temp, sizeof(temp), "%s/.%s.tmp", folder, name);
        f = fopen(temp, "w");
        cr_assert_not_null(f);
        fputs(content, f);
        cr_assert_eq(fclose(f), 0);
        cr_assert_eq(rename(temp, path), 0);
}

static bool exists(const char *relative)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/%s", folder, relative);
        return access(path, F_OK) == 0;
}

static struct ferry_queue *open_queue(const char *retries)
{
        struct ferry_rule *rule;
        struct ferry_queue *q;
        int e;

        cr_assert_eq(ferry_rule_new(&rule, "q", folder), 0);
        if (retries)
                cr_assert_eq(ferry_rule_set(rule, "retries", retries), 0);
        cr_assert_eq(ferry_rule_set(rule, "lease", "2s"), 0);
        e = ferry_queue_open(&q, rule, NULL, NULL);
        cr_assert_eq(e, 0, "ferry_queue_open: %s", strerror(-e));
        return q;
}

static const char *base(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash ? slash + 1 : path;
}

Test(queue, done_moves_each_file_once_then_nothing_is_left, .init = make_folder, .fini = remove_folder)
{
        struct ferry_queue *q = open_queue(NULL);
        struct ferry_claim *c;
        int seen = 0;

        write_file("a", "1");
        write_file("b", "2");
        write_file("c", "3");
        while (seen < 3) {
                cr_assert_eq(ferry_queue_take(q, 5000, &c), 0);
                cr_assert(strncmp(ferry_claim_original_path(c), folder, strlen(folder)) == 0);
                cr_assert(access(ferry_claim_path(c), R_OK) == 0, "the claim's file is readable where it is");
                cr_assert(strstr(ferry_claim_path(c), "/.ferry/work/") != NULL);
                cr_assert_eq(ferry_claim_done(c), 0);
                seen++;
        }
        cr_assert_eq(ferry_queue_take(q, 200, &c), -ETIMEDOUT);
        cr_assert(exists(".ferry/done/a") && exists(".ferry/done/b") && exists(".ferry/done/c"));
        cr_assert(!exists("a") && !exists("b") && !exists("c"));
        ferry_queue_close(q);
}

Test(queue, fail_retries_then_goes_to_failed_with_the_reason, .init = make_folder, .fini = remove_folder)
{
        struct ferry_queue *q = open_queue("1");
        struct ferry_claim *c;
        char note[4096] = "";
        FILE *f;

        write_file("bad", "x");
        cr_assert_eq(ferry_queue_take(q, 5000, &c), 0);
        cr_assert_eq(ferry_claim_fail(c, "the customer is unknown"), 0);
        /* One retry: the same file comes again, after the rule's delay. */
        cr_assert_eq(ferry_queue_take(q, 10000, &c), 0);
        cr_assert_str_eq(base(ferry_claim_original_path(c)), "bad");
        cr_assert_eq(ferry_claim_fail(c, "the customer is unknown"), 0);
        cr_assert_eq(ferry_queue_take(q, 300, &c), -ETIMEDOUT);
        cr_assert(exists(".ferry/failed/bad"));
        f = fopen(strcat(strcpy(note, folder), "/.ferry/failed/bad.ferry-error"), "r");
        cr_assert_not_null(f);
        size_t n = fread(note, 1, sizeof(note) - 1, f);
        note[n] = '\0';
        fclose(f);
        cr_assert(strstr(note, "reason: the customer is unknown\n") != NULL, "note: %s", note);
        cr_assert(strstr(note, "attempts: 2\n") != NULL, "note: %s", note);
        ferry_queue_close(q);
}

static void claim_pid(void *userdata, const struct ferry_claim_info *claim)
{
        *(int *)userdata = claim->pid;
}

Test(queue, release_and_close_give_claims_back_untouched, .init = make_folder, .fini = remove_folder)
{
        struct ferry_queue *q = open_queue(NULL);
        struct ferry_claim *c;

        write_file("one", "1");
        cr_assert_eq(ferry_queue_take(q, 5000, &c), 0);
        /* ferry status sees it in flight, in this process. */
        struct ferry_rule *rule;
        struct ferry_rule_status status;
        int pid = 0;

        cr_assert_eq(ferry_rule_new(&rule, "q", folder), 0);
        cr_assert_eq(ferry_rule_status(rule, &status, claim_pid, NULL, &pid), 0);
        ferry_rule_free(rule);
        cr_assert_eq(status.in_flight, 1);
        cr_assert_eq(pid, getpid());
        cr_assert_eq(ferry_claim_release(c), 0);
        cr_assert(exists("one"), "released: back in the folder");
        cr_assert_eq(ferry_queue_take(q, 5000, &c), 0, "and taken again");
        cr_assert_str_eq(base(ferry_claim_original_path(c)), "one");
        ferry_queue_close(q); /* still held: given back */
        cr_assert(exists("one"));
        cr_assert(!exists(".ferry/done/one"));
}

Test(queue, a_rule_with_a_handler_command_is_no_queue, .init = make_folder, .fini = remove_folder)
{
        struct ferry_rule *rule;
        struct ferry_queue *q = NULL;
        char *argv[] = {"/bin/true", NULL};

        cr_assert_eq(ferry_rule_new(&rule, "q", folder), 0);
        cr_assert_eq(ferry_rule_set_command(rule, argv), 0);
        cr_assert_eq(ferry_queue_open(&q, rule, NULL, NULL), -EINVAL);
        cr_assert_null(q);
}

/* A consumer process: takes claims until none comes for a while, writes each
 * name it got to its own file, one per line, then exits. */
static void consume(const char *out, int die_after)
{
        struct ferry_queue *q = open_queue(NULL);
        struct ferry_claim *c;
        FILE *f = fopen(out, "w");
        int taken = 0;

        if (!f)
                _exit(2);
        while (ferry_queue_take(q, 3000, &c) == 0) {
                if (die_after && ++taken == die_after) {
                        fflush(f);
                        kill(getpid(), SIGKILL); /* mid-claim: never marked */
                }
                fprintf(f, "%s\n", base(ferry_claim_original_path(c)));
                if (ferry_claim_done(c) < 0)
                        _exit(3);
        }
        fclose(f);
        ferry_queue_close(q);
        _exit(0);
}

static int count_names(const char *path, int *counts, int n)
{
        char line[256];
        FILE *f = fopen(path, "r");
        int lines = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f)) {
                int i = atoi(line + 1);

                if (i >= 0 && i < n)
                        counts[i]++;
                lines++;
        }
        fclose(f);
        return lines;
}

Test(queue, two_processes_share_one_folder_each_file_handled_once, .init = make_folder, .fini = remove_folder)
{
        enum { FILES = 10000 };
        static int counts[FILES];
        char out[2][300];
        pid_t pid[2];
        int status;

        for (int p = 0; p < 2; p++) {
                snprintf(out[p], sizeof(out[p]), "%s.out%d", folder, p);
                pid[p] = fork();
                cr_assert(pid[p] >= 0);
                if (pid[p] == 0)
                        consume(out[p], 0);
        }
        for (int i = 0; i < FILES; i++) {
                char name[32];

                snprintf(name, sizeof(name), "f%05d", i);
                write_file(name, "data");
        }
        for (int p = 0; p < 2; p++) {
                cr_assert_eq(waitpid(pid[p], &status, 0), pid[p]);
                cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "consumer %d: status %d", p, status);
        }
        int total = count_names(out[0], counts, FILES) + count_names(out[1], counts, FILES);
        unlink(out[0]);
        unlink(out[1]);
        for (int i = 0; i < FILES; i++)
                cr_assert_eq(counts[i], 1, "f%05d handled %d times", i, counts[i]);
        cr_assert_eq(total, FILES);
}

Test(queue, a_consumer_killed_mid_claim_loses_nothing_its_claim_is_taken_over, .init = make_folder,
     .fini = remove_folder)
{
        enum { FILES = 20 };
        static int counts[FILES];
        char out[2][300];
        pid_t pid;
        int status;

        for (int i = 0; i < FILES; i++) {
                char name[32];

                snprintf(name, sizeof(name), "f%05d", i);
                write_file(name, "data");
        }
        snprintf(out[0], sizeof(out[0]), "%s.out0", folder);
        snprintf(out[1], sizeof(out[1]), "%s.out1", folder);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0)
                consume(out[0], 5); /* killed holding its fifth claim */
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0)
                consume(out[1], 0);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        int total = count_names(out[0], counts, FILES) + count_names(out[1], counts, FILES);
        unlink(out[0]);
        unlink(out[1]);
        cr_assert_eq(total, FILES, "4 before the kill, the other 16 after it, the killed one's among them");
        for (int i = 0; i < FILES; i++)
                cr_assert_eq(counts[i], 1, "f%05d handled %d times", i, counts[i]);
        for (int i = 0; i < FILES; i++) {
                char name[64];

                snprintf(name, sizeof(name), ".ferry/done/f%05d", i);
                cr_assert(exists(name), "%s", name);
        }
}
