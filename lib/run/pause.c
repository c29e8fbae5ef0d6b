/* pause.c: a rule paused on every host at once.
 *
 * The flag is a file in the folder's own .ferry, DIR/.ferry/RULE.paused, so
 * that every worker of the rule, on this machine or another sharing the
 * folder, sees it: each looks once a second, and while it is there starts no
 * handler (no new claim, no retry, no claim taken over); handlers running go
 * on to their end. Its text says who paused the rule and when; its mtime is
 * when. Only who may write into .ferry (ferry's own user) can pause.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void flag_name(const char *rule, char *buf, size_t size)
{
        snprintf(buf, size, "%s.paused", rule);
}

int ferry_rule_pause(struct ferry_rule *rule, int paused)
{
        struct ferry__workarea wa = {.root_fd = -1, .ferry_fd = -1, .base_fd = -1, .work_fd = -1, .output_fd = -1};
        char name[300], text[512], host[256] = "";
        time_t now = time(NULL);
        struct tm tm;
        int r;

        if (!rule)
                return -EINVAL;
        rule->explanation[0] = '\0';
        r = ferry__workarea_home(&wa, rule->dir);
        if (r < 0) {
                snprintf(rule->explanation, sizeof(rule->explanation), "rule %s: %.400s", rule->name, wa.trust.why);
                ferry__workarea_close(&wa);
                return r;
        }
        flag_name(rule->name, name, sizeof(name));
        if (paused) {
                (void)gethostname(host, sizeof(host) - 1);
                gmtime_r(&now, &tm);
                snprintf(text, sizeof(text), "paused by %s (pid %d) at %04d-%02d-%02dT%02d:%02d:%02dZ\n", host,
                         (int)getpid(), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
                r = ferry__write_note(wa.ferry_fd, name, text, strlen(text));
        } else {
                r = unlinkat(wa.ferry_fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        }
        if (r < 0)
                snprintf(rule->explanation, sizeof(rule->explanation), "rule %s: cannot %s %s/.ferry/%s: %s",
                         rule->name, paused ? "write" : "remove", rule->dir, name, strerror(-r));
        ferry__workarea_close(&wa);
        return r;
}

int ferry_rule_paused(struct ferry_rule *rule, int64_t *ret_since)
{
        char name[320];
        struct stat st;
        int dir_fd, fd, r;

        if (!rule)
                return -EINVAL;
        dir_fd = open(rule->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        snprintf(name, sizeof(name), ".ferry/");
        flag_name(rule->name, name + 7, sizeof(name) - 7);
        /* Beneath DIR, through no link: a .ferry someone swapped for a link says nothing. */
        r = ferry__open_beneath(dir_fd, name, O_PATH, &fd);
        close(dir_fd);
        if (r == -ENOENT || r == -ELOOP)
                return 0;
        if (r < 0)
                return r;
        r = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode);
        close(fd);
        if (r > 0 && ret_since)
                *ret_since = (int64_t)st.st_mtim.tv_sec * FERRY__NSEC_PER_SEC + st.st_mtim.tv_nsec;
        return r;
}

bool ferry__paused(const struct ferry__workarea *wa, const char *rule)
{
        char name[300];
        struct stat st;

        flag_name(rule, name, sizeof(name));
        return wa->ferry_fd >= 0 && fstatat(wa->ferry_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}
