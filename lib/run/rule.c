/* rule.c: rules: which files of a folder go to which program, and how.
 *
 * Options are set from their text form by key, so that the command line
 * (--jobs 4) and a config file (jobs = 4) share one grammar and one set of
 * error messages. Every value is checked when it is set.
 */
#include "run.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The rule's explanation: one line, whatever values it quotes (a value with
 * a newline or a terminal escape in it is shown as \n, \xHH). */
static int fail(struct ferry_rule *rule, int error, const char *format, ...)
{
        char raw[sizeof(rule->explanation)];
        size_t o = 0, size = sizeof(rule->explanation);
        va_list ap;

        va_start(ap, format);
        vsnprintf(raw, sizeof(raw), format, ap);
        va_end(ap);
        for (const unsigned char *p = (const unsigned char *)raw; *p && o + 5 < size; p++) {
                if (*p == '\n')
                        o += (size_t)snprintf(rule->explanation + o, size - o, "\\n");
                else if (*p < 0x20 || *p == 0x7f)
                        o += (size_t)snprintf(rule->explanation + o, size - o, "\\x%02x", *p);
                else
                        rule->explanation[o++] = (char)*p;
        }
        rule->explanation[o] = '\0';
        return error;
}

int ferry_rule_new(struct ferry_rule **ret_rule, const char *name, const char *dir)
{
        struct ferry_rule *rule;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        if (!ret_rule || !name || !dir || !*dir || !*name)
                return -EINVAL;
        for (const char *p = name; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
                        return -EINVAL;
        rule = calloc(1, sizeof(*rule));
        if (!rule)
                return -ENOMEM;
        rule->name = strdup(name);
        /* "in/" and "in" are one folder: claims compare paths by this prefix. */
        size_t dir_len = strlen(dir);

        while (dir_len > 1 && dir[dir_len - 1] == '/')
                dir_len--;
        rule->dir = strndup(dir, dir_len);
        rule->ready = strdup("auto");
        (void)ferry__policy_parse("auto", &rule->policy);
        if (!rule->name || !rule->dir || !rule->ready) {
                ferry_rule_free(rule);
                return -ENOMEM;
        }
        rule->jobs = cpus > 0 ? (unsigned)cpus : 1;
        rule->kill_after_ns = 5 * FERRY__NSEC_PER_SEC;
        rule->retries = 2;
        rule->retry_delay_ns = 1 * FERRY__NSEC_PER_SEC;
        rule->lease_ns = 60 * FERRY__NSEC_PER_SEC;
        rule->poll_interval_ns = 2 * FERRY__NSEC_PER_SEC;
        rule->batch = 1;
        rule->max_folders = FERRY__DEFAULT_MAX_FOLDERS;
        rule->on_success = FERRY__ON_SUCCESS_DONE;
        rule->dedup_window_ns = 7 * 24 * 3600 * FERRY__NSEC_PER_SEC;
        *ret_rule = rule;
        return 0;
}

static void strings_free(char **list, size_t count)
{
        for (size_t i = 0; i < count; i++)
                free(list[i]);
        free(list);
}

void ferry_rule_free(struct ferry_rule *rule)
{
        if (!rule)
                return;
        free(rule->name);
        free(rule->dir);
        free(rule->ready);
        free(rule->done_dir);
        free(rule->done_layout);
        free(rule->failed_dir);
        free(rule->output_dir);
        free(rule->user);
        free(rule->backend);
        free(rule->require_file);
        strings_free(rule->match, rule->match_count);
        strings_free(rule->exclude, rule->exclude_count);
        strings_free(rule->command, rule->command_count);
        strings_free(rule->on_done, rule->on_done_count);
        strings_free(rule->on_failure, rule->on_failure_count);
        strings_free(rule->env, rule->env_count);
        strings_free(rule->pass_env, rule->pass_env_count);
        strings_free(rule->env_files, rule->env_file_count);
        strings_free(rule->priority, rule->priority_count);
        free(rule);
}

static int strings_add(struct ferry_rule *rule, char ***list, size_t *count, const char *value)
{
        char **items = realloc(*list, (*count + 2) * sizeof(*items));

        if (!items)
                return fail(rule, -ENOMEM, "out of memory");
        *list = items;
        items[*count] = strdup(value);
        if (!items[*count])
                return fail(rule, -ENOMEM, "out of memory");
        items[++*count] = NULL;
        return 0;
}

static int set_string(struct ferry_rule *rule, char **field, const char *key, const char *value)
{
        char *copy;

        if (!*value)
                return fail(rule, -EINVAL, "%s needs a value", key);
        copy = strdup(value);
        if (!copy)
                return fail(rule, -ENOMEM, "out of memory");
        free(*field);
        *field = copy;
        return 0;
}

static int set_bool(struct ferry_rule *rule, bool *field, const char *key, const char *value)
{
        static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false", "off", "0"};

        for (size_t i = 0; i < 4; i++) {
                if (strcasecmp(value, yes[i]) == 0)
                        return *field = true, 0;
                if (strcasecmp(value, no[i]) == 0)
                        return *field = false, 0;
        }
        return fail(rule, -EINVAL, "%s: '%s' is not yes or no", key, value);
}

static int set_count(struct ferry_rule *rule, unsigned *field, const char *key, const char *value, unsigned min,
                     unsigned max)
{
        char *end;
        unsigned long n;

        errno = 0;
        n = strtoul(value, &end, 10);
        if (!isdigit((unsigned char)*value) || *end || errno || n < min || n > max)
                return fail(rule, -EINVAL, "%s: '%s' is not a whole number from %u to %u", key, value, min, max);
        *field = (unsigned)n;
        return 0;
}

static int set_duration(struct ferry_rule *rule, int64_t *field, const char *key, const char *value)
{
        if (ferry_duration_parse(value, field) < 0)
                return fail(rule, -EINVAL, "%s: '%s' is not a duration (use e.g. 500ms, 30s, 5m, 1h)", key, value);
        return 0;
}

/* A size: bytes, or with K, M, G or T (powers of 1024; "KiB", "kB" and the like say the same). */
static int set_size(struct ferry_rule *rule, uint64_t *field, const char *key, const char *value)
{
        static const char units[] = "KMGT";
        char *end;
        unsigned long long n;
        uint64_t scale = 1;

        errno = 0;
        n = strtoull(value, &end, 10);
        if (isdigit((unsigned char)*value) && !errno && *end) {
                const char *u = strchr(units, toupper((unsigned char)*end));

                if (u && *u) {
                        for (const char *q = units; q <= u; q++)
                                scale *= 1024;
                        end++;
                        if (*end == 'i')
                                end++;
                        if (*end == 'B' || *end == 'b')
                                end++;
                }
        }
        if (!isdigit((unsigned char)*value) || errno || *end || n == 0 || n > UINT64_MAX / scale)
                return fail(rule, -EINVAL, "%s: '%s' is not a size (bytes above 0, or with K, M, G, T: e.g. 512K, 2G)",
                            key, value);
        *field = (uint64_t)n * scale;
        return 0;
}

/* rate = N/s, N/m (or N/min), N/h: handler starts in that time at most. */
static int set_rate(struct ferry_rule *rule, const char *value)
{
        static const struct {
                const char *unit;
                double seconds;
        } units[] = {{"s", 1}, {"sec", 1}, {"m", 60}, {"min", 60}, {"h", 3600}};
        const char *slash = strchr(value, '/');
        char *end;
        double n;

        errno = 0;
        n = slash ? strtod(value, &end) : 0;
        if (slash && end == slash && errno == 0 && n > 0 && n <= 1e6)
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                        if (strcmp(slash + 1, units[i].unit) == 0) {
                                rule->rate = n / units[i].seconds;
                                return 0;
                        }
        if (strcmp(value, "0") == 0 || strcmp(value, "none") == 0) {
                rule->rate = 0;
                return 0;
        }
        return fail(rule, -EINVAL, "rate: '%s' is not N/s, N/m or N/h (handler starts in that time, e.g. 20/s)", value);
}

/* Replaces the NULL-terminated list *field (*count items) by a copy of words. */
static int set_words(struct ferry_rule *rule, char ***field, size_t *count, char *const *words)
{
        char **copy = NULL;
        size_t n = 0;
        int r = 0;

        for (size_t i = 0; r == 0 && words[i]; i++)
                r = strings_add(rule, &copy, &n, words[i]);
        if (r < 0) {
                strings_free(copy, n);
                return r;
        }
        strings_free(*field, *count);
        *field = copy;
        *count = n;
        return 0;
}

/* command, on-done, on-failure = PROGRAM ARG...: one string, split into
 * words as ferry.conf(5) says, the same for each. */
static int set_command_line(struct ferry_rule *rule, const char *key, const char *value)
{
        const char *problem = "";
        char **words = NULL;
        int r = ferry__words_split(value, &words, &problem);

        if (r == -ENOMEM)
                return fail(rule, r, "out of memory");
        if (r < 0)
                return fail(rule, r, "%s: %s", key, problem);
        if (r == 0)
                r = fail(rule, -EINVAL, "%s is empty", key);
        else if (strcmp(key, "on-done") == 0)
                r = set_words(rule, &rule->on_done, &rule->on_done_count, words);
        else if (strcmp(key, "on-failure") == 0)
                r = set_words(rule, &rule->on_failure, &rule->on_failure_count, words);
        else
                r = ferry_rule_set_command(rule, words);
        ferry__argv_free(words);
        return r;
}

int ferry_rule_set(struct ferry_rule *rule, const char *key, const char *value)
{
        if (!rule || !key || !value)
                return -EINVAL;
        rule->explanation[0] = '\0';
        if (strcmp(key, "command") == 0 || strcmp(key, "on-done") == 0 || strcmp(key, "on-failure") == 0)
                return set_command_line(rule, key, value);
        if (strcmp(key, "match") == 0)
                return *value ? strings_add(rule, &rule->match, &rule->match_count, value)
                              : fail(rule, -EINVAL, "match needs a glob");
        if (strcmp(key, "exclude") == 0)
                return *value ? strings_add(rule, &rule->exclude, &rule->exclude_count, value)
                              : fail(rule, -EINVAL, "exclude needs a glob");
        if (strcmp(key, "recursive") == 0)
                return set_bool(rule, &rule->recursive, key, value);
        if (strcmp(key, "env") == 0) {
                const char *eq = strchr(value, '=');

                if (!eq || !ferry__env_name_ok(value, (size_t)(eq - value)))
                        return fail(rule, -EINVAL,
                                    "env: '%s' is not NAME=VALUE (a name is letters, digits and '_', not starting "
                                    "with a digit; FERRY_* names are ferry's own)",
                                    value);
                return strings_add(rule, &rule->env, &rule->env_count, value);
        }
        if (strcmp(key, "pass-env") == 0)
                return *value ? strings_add(rule, &rule->pass_env, &rule->pass_env_count, value)
                              : fail(rule, -EINVAL, "pass-env needs a name or a glob (e.g. AWS_*)");
        if (strcmp(key, "env-file") == 0)
                return *value ? strings_add(rule, &rule->env_files, &rule->env_file_count, value)
                              : fail(rule, -EINVAL, "env-file needs a file");
        if (strcmp(key, "ready") == 0) {
                struct ferry__policy p;

                int r;

                if (ferry__policy_parse(value, &p) < 0)
                        return fail(rule, -EINVAL,
                                    "ready: '%s' is not a policy (use auto, close[=GUARD], rename, "
                                    "done-file[=.SUFFIX|=MARKER] or settle=DURATION)",
                                    value);
                r = set_string(rule, &rule->ready, key, value);
                if (r == 0)
                        rule->policy = p;
                return r;
        }
        if (strcmp(key, "jobs") == 0) {
                rule->jobs_set = true;
                return set_count(rule, &rule->jobs, key, value, 1, 4096);
        }
        if (strcmp(key, "timeout") == 0)
                return set_duration(rule, &rule->timeout_ns, key, value);
        if (strcmp(key, "kill-after") == 0)
                return set_duration(rule, &rule->kill_after_ns, key, value);
        if (strcmp(key, "retries") == 0)
                return set_count(rule, &rule->retries, key, value, 0, 100);
        if (strcmp(key, "retry-delay") == 0)
                return set_duration(rule, &rule->retry_delay_ns, key, value);
        if (strcmp(key, "batch") == 0)
                return set_count(rule, &rule->batch, key, value, 1, 100000);
        if (strcmp(key, "rate") == 0)
                return set_rate(rule, value);
        if (strcmp(key, "order") == 0) {
                static const char *const orders[] = {"ready", "name", "mtime", "size"};
                size_t n = strlen(value);
                bool desc = n > 5 && strcmp(value + n - 5, "-desc") == 0;

                for (int i = 0; i < 4; i++)
                        if (strlen(orders[i]) == (desc ? n - 5 : n) &&
                            strncmp(value, orders[i], strlen(orders[i])) == 0 && !(desc && i == FERRY__ORDER_READY)) {
                                rule->order = i;
                                rule->order_descending = desc;
                                return 0;
                        }
                return fail(rule, -EINVAL,
                            "order: '%s' is not ready, name, mtime or size (those three also with -desc)", value);
        }
        if (strcmp(key, "priority") == 0)
                return *value ? strings_add(rule, &rule->priority, &rule->priority_count, value)
                              : fail(rule, -EINVAL, "priority needs a glob");
        if (strcmp(key, "min-size") == 0)
                return set_size(rule, &rule->min_size, key, value);
        if (strcmp(key, "max-size") == 0)
                return set_size(rule, &rule->max_size, key, value);
        if (strcmp(key, "max-age") == 0) {
                int r = set_duration(rule, &rule->max_age_ns, key, value);

                if (r == 0 && rule->max_age_ns <= 0)
                        return fail(rule, -EINVAL, "max-age: '%s' is not above 0", value);
                return r;
        }
        if (strcmp(key, "pause-when-free-below") == 0) {
                size_t len = strlen(value);

                rule->free_below_percent = 0;
                rule->free_below_bytes = 0;
                if (len && value[len - 1] == '%') {
                        char *end;
                        double p = strtod(value, &end);

                        if (!isdigit((unsigned char)*value) || end != value + len - 1 || !(p > 0 && p < 100))
                                return fail(rule, -EINVAL,
                                            "pause-when-free-below: '%s' is not a percentage above 0 and below 100 "
                                            "(e.g. 5%%) nor a size (e.g. 10G)",
                                            value);
                        rule->free_below_percent = p;
                        return 0;
                }
                return set_size(rule, &rule->free_below_bytes, key, value);
        }
        if (strcmp(key, "audit") == 0) {
                bool on = true;
                int r = set_bool(rule, &on, key, value);

                rule->audit_off = !on;
                return r;
        }
        if (strcmp(key, "done-layout") == 0) {
                char why[256];

                if (ferry__layout_check(value, why, sizeof(why)) < 0)
                        return fail(rule, -EINVAL, "done-layout: %s", why);
                return set_string(rule, &rule->done_layout, key, value);
        }
        if (strcmp(key, "done-retention") == 0 || strcmp(key, "failed-retention") == 0 ||
            strcmp(key, "audit-retention") == 0) {
                int64_t *field = key[0] == 'd'   ? &rule->done_retention_ns
                                 : key[0] == 'f' ? &rule->failed_retention_ns
                                                 : &rule->audit_retention_ns;
                int r = set_duration(rule, field, key, value);

                if (r == 0 && *field < FERRY__NSEC_PER_SEC)
                        return fail(rule, -EINVAL, "%s: '%s' is too short (at least 1s)", key, value);
                return r;
        }
        if (strcmp(key, "dedup") == 0) {
                if (strcmp(value, "sha256") == 0)
                        rule->dedup = true;
                else if (strcmp(value, "off") == 0)
                        rule->dedup = false;
                else
                        return fail(rule, -EINVAL, "dedup: '%s' is not sha256 or off", value);
                return 0;
        }
        if (strcmp(key, "dedup-window") == 0) {
                int r = set_duration(rule, &rule->dedup_window_ns, key, value);

                if (r == 0 && rule->dedup_window_ns < FERRY__NSEC_PER_SEC)
                        return fail(rule, -EINVAL, "dedup-window: '%s' is too short (at least 1s)", value);
                return r;
        }
        if (strcmp(key, "max-folders") == 0)
                return set_count(rule, &rule->max_folders, key, value, 1, 100000000);
        if (strcmp(key, "max-queue") == 0)
                return set_count(rule, &rule->max_queue, key, value, 0, 100000000);
        if (strcmp(key, "lease") == 0) {
                int r = set_duration(rule, &rule->lease_ns, key, value);

                if (r == 0 && rule->lease_ns < FERRY__NSEC_PER_SEC)
                        return fail(rule, -EINVAL, "lease: '%s' is too short (at least 1s)", value);
                return r;
        }
        if (strcmp(key, "backend") == 0) {
                if (strcmp(value, "auto") != 0 && strcmp(value, "inotify") != 0 && strcmp(value, "poll") != 0)
                        return fail(rule, -EINVAL, "backend: '%s' is not auto, inotify or poll", value);
                return set_string(rule, &rule->backend, key, value);
        }
        if (strcmp(key, "poll-interval") == 0) {
                int r = set_duration(rule, &rule->poll_interval_ns, key, value);

                if (r == 0 && rule->poll_interval_ns < 10 * FERRY__NSEC_PER_MSEC)
                        return fail(rule, -EINVAL, "poll-interval: '%s' is too short (at least 10ms)", value);
                return r;
        }
        if (strcmp(key, "symlinks") == 0)
                return set_bool(rule, &rule->follow_symlinks, key, value);
        if (strcmp(key, "require-file") == 0) {
                /* One name in DIR, never a glob: it is also left out of the files handled. */
                if (!*value || strchr(value, '/') || strcmp(value, ".") == 0 || strcmp(value, "..") == 0 ||
                    strcmp(value, ".ferry") == 0 || strpbrk(value, "*?[\\"))
                        return fail(rule, -EINVAL,
                                    "require-file: '%s' is not a plain file name in the folder (no '/', no glob "
                                    "characters), e.g. .ferry-root",
                                    value);
                return set_string(rule, &rule->require_file, key, value);
        }
        if (strcmp(key, "on-folder-lost") == 0) {
                if (strcmp(value, "wait") == 0)
                        rule->exit_when_lost = false;
                else if (strcmp(value, "exit") == 0)
                        rule->exit_when_lost = true;
                else
                        return fail(rule, -EINVAL, "on-folder-lost: '%s' is not wait or exit", value);
                return 0;
        }
        if (strcmp(key, "stdin") == 0)
                return set_bool(rule, &rule->use_stdin, key, value);
        if (strcmp(key, "on-success") == 0) {
                if (strcmp(value, "done") == 0)
                        rule->on_success = FERRY__ON_SUCCESS_DONE;
                else if (strcmp(value, "delete") == 0)
                        rule->on_success = FERRY__ON_SUCCESS_DELETE;
                else if (strcmp(value, "keep") == 0)
                        rule->on_success = FERRY__ON_SUCCESS_KEEP;
                else
                        return fail(rule, -EINVAL, "on-success: '%s' is not done, delete or keep", value);
                return 0;
        }
        if (strcmp(key, "done") == 0) /* with delete or keep: refused by ferry_rule_check(), in any order */
                return set_string(rule, &rule->done_dir, key, value);
        if (strcmp(key, "failed") == 0)
                return set_string(rule, &rule->failed_dir, key, value);
        if (strcmp(key, "output") == 0)
                return set_string(rule, &rule->output_dir, key, value);
        if (strcmp(key, "user") == 0) {
                struct passwd *pw = getpwnam(value);

                if (!pw)
                        return fail(rule, -EINVAL, "user: no user named '%s'", value);
                rule->uid = pw->pw_uid;
                rule->gid = pw->pw_gid;
                return set_string(rule, &rule->user, key, value);
        }
        return fail(rule, -ENOENT, "unknown option '%s'", key);
}

int ferry_rule_set_command(struct ferry_rule *rule, char *const *argv)
{
        int r;

        if (!rule || !argv || !argv[0] || !*argv[0])
                return rule ? fail(rule, -EINVAL, "the handler command is empty") : -EINVAL;
        strings_free(rule->command, rule->command_count);
        rule->command = NULL;
        rule->command_count = 0;
        for (size_t i = 0; argv[i]; i++) {
                r = strings_add(rule, &rule->command, &rule->command_count, argv[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

const char *ferry_rule_name(const struct ferry_rule *rule)
{
        return rule ? rule->name : NULL;
}

const char *ferry_rule_dir(const struct ferry_rule *rule)
{
        return rule ? rule->dir : NULL;
}

char *const *ferry_rule_program(const struct ferry_rule *rule, const char *which)
{
        if (!rule || !which)
                return NULL;
        if (strcmp(which, "command") == 0)
                return rule->command;
        if (strcmp(which, "on-done") == 0)
                return rule->on_done;
        if (strcmp(which, "on-failure") == 0)
                return rule->on_failure;
        return NULL;
}

const char *ferry_rule_explain(const struct ferry_rule *rule)
{
        return rule && rule->explanation[0] ? rule->explanation : "no error";
}

/* The folder rule->dir would watch the files put into folder: they would come
 * back as new work, for ever. Hidden and temporary folders are never watched. */
static bool watched_by(const struct ferry_rule *rule, const char *real_dir, const char *real_folder)
{
        size_t len = strlen(real_dir);
        const char *rest;

        if (strcmp(real_dir, real_folder) == 0)
                return true;
        if (strncmp(real_folder, real_dir, len) != 0 || (real_folder[len] != '/' && len != 1))
                return false;
        if (!rule->recursive)
                return false;
        rest = real_folder + len + (len != 1);
        for (const char *part = rest; *part; part = strchr(part, '/') ? strchr(part, '/') + 1 : part + strlen(part)) {
                size_t n = strcspn(part, "/");

                if (ferry__is_temp_name(part, n))
                        return false;
        }
        return true;
}

/* The real path folder will have: its nearest existing ancestor's real
 * path, and the names still to be made below it (written to real, PATH_MAX);
 * that ancestor's stat in *ret_st. False when nothing of it can be resolved. */
static bool real_path_to_be(const char *folder, char *real, struct stat *ret_st)
{
        char *copy = strdup(folder), *cut = NULL, existing[PATH_MAX];

        if (!copy)
                return false;
        /* Drop the last name until what is left exists. */
        for (;;) {
                if (realpath(copy[0] ? copy : "/", existing) && stat(existing, ret_st) == 0)
                        break;
                char *slash = strrchr(copy, '/');

                if (!slash) {
                        cut = copy;
                        if (!realpath(".", existing) || stat(existing, ret_st) < 0) {
                                free(copy);
                                return false;
                        }
                        break;
                }
                *slash = '\0';
                cut = slash;
        }
        /* What was dropped, from the original string. */
        const char *rest = cut ? folder + (cut - copy) + (cut == copy && folder[0] != '/' ? 0 : 1) : "";
        int n = snprintf(real, PATH_MAX, "%s%s%s", strcmp(existing, "/") ? existing : "", *rest ? "/" : "",
                         *rest ? rest : "");

        free(copy);
        if (n < 0 || n >= PATH_MAX)
                return false;
        if (!real[0])
                strcpy(real, "/");
        return true;
}

/* An outcome or output folder must not be watched by the rule, and done and
 * failed folders must be on the rule's file system: files get there by rename.
 * A folder not made yet is judged by its nearest existing ancestor: made
 * later, it will be on that one's file system, and inside the rule's folder
 * if that is. */
static int check_placement(struct ferry_rule *rule, const char *folder, const char *what, bool output)
{
        char real_dir[PATH_MAX], real_folder[PATH_MAX];
        struct stat dir_st, folder_st;

        if (!folder || !realpath(rule->dir, real_dir) || stat(real_dir, &dir_st) < 0 ||
            !real_path_to_be(folder, real_folder, &folder_st))
                return 0;
        if (watched_by(rule, real_dir, real_folder))
                return fail(rule, -EINVAL,
                            "rule %s: the %s folder %s is watched by the rule itself: its files would come back as "
                            "new work (use a folder outside %s%s)",
                            rule->name, what, folder, rule->dir, rule->recursive ? ", or a hidden one" : "");
        if (!output && folder_st.st_dev != dir_st.st_dev)
                return fail(rule, -EXDEV,
                            "rule %s: the %s folder %s is on another file system than %s: files move there by "
                            "rename (choose a folder on the same file system)",
                            rule->name, what, folder, rule->dir);
        return 0;
}

int ferry_rule_check(struct ferry_rule *rule)
{
        return ferry__rule_check(rule, true);
}

int ferry__rule_check(struct ferry_rule *rule, bool handler)
{
        struct stat st;
        int r;

        if (handler && !rule->command)
                return fail(rule, -EINVAL, "rule %s has no handler command", rule->name);
        if (!handler) {
                if (rule->command || rule->use_stdin || rule->output_dir || rule->batch > 1 || rule->user ||
                    rule->env || rule->pass_env || rule->env_files || rule->on_done || rule->on_failure)
                        return fail(rule, -EINVAL,
                                    "rule %s: a queue hands its files to its caller: no handler command, stdin, "
                                    "output folder, batch, user, environment or hooks",
                                    rule->name);
                r = 0;
        } else {
                r = ferry__argv_check(rule->command, rule->batch > 1);
        }
        if (r < 0)
                return fail(rule, r,
                            rule->batch > 1 ? "rule %s: with batch, the command takes the files as {paths}, a "
                                              "whole argument ({} and the like name one file)"
                                            : "rule %s: {paths} is for batch mode, {dest} and {note} for hooks; "
                                              "one file is {} (or {path}, {name}, {dir}, {stem}, {ext})",
                            rule->name);
        if ((rule->on_done && ferry__argv_check_hook(rule->on_done) < 0) ||
            (rule->on_failure && ferry__argv_check_hook(rule->on_failure) < 0))
                return fail(rule, -EINVAL,
                            "rule %s: a hook (on-%s) runs for one file: {paths} is the handler's, with batch (a "
                            "hook takes {} {path} {name} {dir} {stem} {ext} {dest} {note})",
                            rule->name,
                            rule->on_done && ferry__argv_check_hook(rule->on_done) < 0 ? "done" : "failure");
        if (rule->min_size && rule->max_size && rule->min_size > rule->max_size)
                return fail(rule, -EINVAL, "rule %s: min-size is above max-size: no file could pass", rule->name);
        if (rule->use_stdin && rule->batch > 1)
                return fail(rule, -EINVAL, "rule %s: stdin and batch exclude each other", rule->name);
        if (rule->on_success != FERRY__ON_SUCCESS_DONE && rule->done_dir)
                return fail(rule, -EINVAL, "rule %s: done DIR, delete and keep exclude each other", rule->name);
        if (rule->on_success != FERRY__ON_SUCCESS_DONE && (rule->done_layout || rule->done_retention_ns))
                return fail(rule, -EINVAL, "rule %s: done-layout and done-retention need a done folder (not %s)",
                            rule->name, rule->on_success == FERRY__ON_SUCCESS_KEEP ? "keep" : "delete");
        if (rule->output_dir && rule->batch > 1)
                return fail(rule, -EINVAL, "rule %s: output and batch exclude each other", rule->name);
        if (rule->max_queue && rule->on_success == FERRY__ON_SUCCESS_KEEP)
                return fail(rule, -EINVAL,
                            "rule %s: max-queue and keep exclude each other (files kept in place stay tracked, and "
                            "would hold the queue full for ever)",
                            rule->name);
        /* A duplicate is judged before its handler runs, one file at a time,
         * and goes where a done file goes: it needs claimed files, one a run. */
        if (rule->dedup && rule->on_success == FERRY__ON_SUCCESS_KEEP)
                return fail(rule, -EINVAL,
                            "rule %s: dedup and keep exclude each other (keep leaves files in place and records "
                            "them by version already): use a done folder, or delete",
                            rule->name);
        if (rule->dedup && rule->batch > 1)
                return fail(rule, -EINVAL,
                            "rule %s: dedup and batch exclude each other (a duplicate is judged one file at a "
                            "time, before its handler runs): drop batch, or dedup",
                            rule->name);
        if (rule->user && geteuid() != 0)
                return fail(rule, -EPERM, "rule %s: user %s needs ferry to run as root", rule->name, rule->user);
        if (rule->env_files) {
                char why[400];

                r = ferry__env_files_check(rule, why, sizeof(why));
                if (r < 0)
                        return fail(rule, r, "rule %s: %s", rule->name, why);
        }
        if (stat(rule->dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return fail(rule, -ENOENT, "rule %s: %s is not a folder (create it first)", rule->name, rule->dir);
        if (rule->output_dir && (stat(rule->output_dir, &st) < 0 || !S_ISDIR(st.st_mode)))
                return fail(rule, -ENOENT, "rule %s: output folder %s does not exist (create it first)", rule->name,
                            rule->output_dir);
        r = check_placement(rule, rule->output_dir, "output", true);
        if (r == 0)
                r = check_placement(rule, rule->done_dir, "done", false);
        if (r == 0)
                r = check_placement(rule, rule->failed_dir, "failed", false);
        return r;
}

/* Whether program is something that can be run: with a '/', as it is;
 * without, the first such file in PATH (absolute entries only, as the
 * handler's own search does). NULL when it is; else why not. */
static const char *handler_problem(const char *program, char *found, size_t size)
{
        const char *search = getenv("PATH");
        struct stat st;

        if (strchr(program, '/')) {
                if (stat(program, &st) < 0)
                        return errno == ENOENT ? "does not exist" : strerror(errno);
                if (!S_ISREG(st.st_mode))
                        return "is not a regular file";
                if (!(st.st_mode & 0111) || faccessat(AT_FDCWD, program, X_OK, AT_EACCESS) < 0)
                        return "is not executable (chmod +x it)";
                return NULL;
        }
        if (!search || !*search)
                search = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = search; *p; p += *p == ':') {
                size_t n = strcspn(p, ":");

                if (n && p[0] == '/' && snprintf(found, size, "%.*s/%s", (int)n, p, program) < (int)size &&
                    stat(found, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) &&
                    faccessat(AT_FDCWD, found, X_OK, AT_EACCESS) == 0)
                        return NULL;
                p += n;
        }
        snprintf(found, size, "%s", search);
        return "is not found in PATH";
}

int ferry_rule_check_system(struct ferry_rule *rule)
{
        char found[PATH_MAX];
        struct statvfs vfs;
        struct statfs fs;
        const char *why;
        int r;

        if (!rule)
                return -EINVAL;
        r = ferry_rule_check(rule);
        if (r < 0)
                return r;
        /* A placeholder as the program (the file itself run) is the user's business. */
        if (!strchr(rule->command[0], '{') && (why = handler_problem(rule->command[0], found, sizeof(found))))
                return fail(rule, -ENOENT,
                            strchr(rule->command[0], '/') ? "rule %s: the handler %s %s"
                                                          : "rule %s: the handler %s %s (%s)",
                            rule->name, rule->command[0], why, found);
        /* The hooks' programs, as the handler's: found and runnable. */
        for (int i = 0; i < 2; i++) {
                char *const *hook = i == 0 ? rule->on_done : rule->on_failure;

                if (hook && !strchr(hook[0], '{') && (why = handler_problem(hook[0], found, sizeof(found))))
                        return fail(rule, -ENOENT,
                                    strchr(hook[0], '/') ? "rule %s: the on-%s hook %s %s"
                                                         : "rule %s: the on-%s hook %s %s (%s)",
                                    rule->name, i == 0 ? "done" : "failure", hook[0], why, found);
        }
        /* ferry keeps its work in DIR/.ferry: DIR must be able to hold it. */
        if (statfs(rule->dir, &fs) == 0 &&
            (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC || fs.f_type == CGROUP2_SUPER_MAGIC ||
             fs.f_type == CGROUP_SUPER_MAGIC || fs.f_type == DEBUGFS_MAGIC))
                return fail(rule, -EROFS,
                            "rule %s: %s is on a kernel file system: ferry cannot keep its work "
                            "folder %s/.ferry there",
                            rule->name, rule->dir, rule->dir);
        if (statvfs(rule->dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
                return fail(rule, -EROFS,
                            "rule %s: %s is on a read-only file system: ferry keeps its work in "
                            "%s/.ferry",
                            rule->name, rule->dir, rule->dir);
        if (faccessat(AT_FDCWD, rule->dir, W_OK | X_OK, AT_EACCESS) < 0)
                return fail(rule, -EACCES,
                            "rule %s: uid %u cannot write into %s, where ferry keeps its work "
                            "(%s/.ferry)",
                            rule->name, (unsigned)geteuid(), rule->dir, rule->dir);
        /* A .ferry already there must be one ferry trusts (trust.c): checked, not made. */
        {
                struct ferry__trust trust = {0};
                char path[PATH_MAX];
                int dir_fd = open(rule->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1;

                snprintf(path, sizeof(path), "%s/.ferry", rule->dir);
                if (dir_fd >= 0 && faccessat(dir_fd, ".ferry", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                        r = ferry__trusted_dir(&trust, dir_fd, ".ferry", 0711, false, path, &fd);
                if (fd >= 0)
                        close(fd);
                if (dir_fd >= 0)
                        close(dir_fd);
                if (r < 0)
                        return fail(rule, r, "rule %s: %s", rule->name, trust.why);
        }
        return 0;
}

int ferry__rule_watch_new(const struct ferry_rule *rule, unsigned flags, struct ferry_watch **ret_watch)
{
        struct ferry_watch *w;
        int e = ferry_watch_new(&w, flags);

        if (e < 0)
                return e;
        e = ferry_watch_set_ready(w, rule->ready);
        if (e == 0)
                e = ferry_watch_set_backend(w, rule->backend ? rule->backend : "auto");
        if (e == 0)
                e = ferry_watch_set_poll_interval(w, rule->poll_interval_ns);
        if (e == 0)
                e = ferry_watch_set_max_dirs(w, rule->max_folders);
        if (e == 0 && rule->max_queue)
                e = ferry_watch_set_max_files(w, rule->max_queue);
        if (e == 0)
                e = ferry_watch_set_events(w, FERRY_EVENT_READY);
        for (size_t i = 0; e == 0 && i < rule->match_count; i++)
                e = ferry_watch_include(w, rule->match[i]);
        for (size_t i = 0; e == 0 && i < rule->exclude_count; i++)
                e = ferry_watch_exclude(w, rule->exclude[i]);
        if (e == 0 && rule->require_file)
                e = ferry_watch_exclude(w, rule->require_file);
        if (e < 0) {
                ferry_watch_free(w);
                return e;
        }
        *ret_watch = w;
        return 0;
}
