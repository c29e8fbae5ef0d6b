/* env.c: the environment a rule's handlers start with.
 *
 * Handlers do not inherit ferry's environment: only the basics (PATH, HOME,
 * USER, LOGNAME, LANG, LC_*, TZ, TMPDIR) are kept, then, later ones winning
 * on the same name: the variables of ferry's environment whose names match a
 * pass-env glob, the environment files in the order given (systemd's
 * EnvironmentFile= format), and the env NAME=VALUE settings. ferry's own
 * FERRY_* variables come last, and no rule may set them.
 */
#include "run.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

bool ferry__env_name_ok(const char *name, size_t len)
{
        if (len == 0 || (name[0] >= '0' && name[0] <= '9'))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
                      (name[i] >= '0' && name[i] <= '9')))
                        return false;
        return !(len >= 6 && strncmp(name, "FERRY_", 6) == 0);
}

bool ferry__env_secret(const char *name, size_t len)
{
        static const char *const words[] = {"KEY", "TOKEN", "SECRET", "PASSWORD"};

        for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
                size_t n = strlen(words[w]);

                for (size_t i = 0; i + n <= len; i++)
                        if (strncasecmp(name + i, words[w], n) == 0)
                                return true;
        }
        return false;
}

/* ---- a list of NAME=VALUE, the last of a name winning ---------------------- */

struct env {
        char **items; /* NULL-terminated */
        size_t count, capacity;
};

/* Adds NAME=VALUE (len bytes of name), replacing the item of that name. */
static int env_put(struct env *e, const char *name, size_t len, const char *value)
{
        char *item;

        if (asprintf(&item, "%.*s=%s", (int)len, name, value) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < e->count; i++)
                if (strncmp(e->items[i], item, len + 1) == 0) {
                        free(e->items[i]);
                        e->items[i] = item;
                        return 0;
                }
        if (e->count + 2 > e->capacity) {
                size_t capacity = e->capacity ? 2 * e->capacity : 32;
                char **bigger = realloc(e->items, capacity * sizeof(*bigger));

                if (!bigger) {
                        free(item);
                        return -ENOMEM;
                }
                e->items = bigger;
                e->capacity = capacity;
        }
        e->items[e->count++] = item;
        e->items[e->count] = NULL;
        return 0;
}

/* Adds an item "NAME=VALUE" as it is. */
static int env_put_item(struct env *e, const char *item)
{
        const char *eq = strchr(item, '=');

        return eq ? env_put(e, item, (size_t)(eq - item), eq + 1) : 0;
}

char *ferry__env_pair(const char *name, const char *value)
{
        char *s;

        return asprintf(&s, "%s=%s", name, value) < 0 ? NULL : s;
}

void ferry__env_free(char **env)
{
        for (size_t i = 0; env && env[i]; i++)
                free(env[i]);
        free(env);
}

/* ---- environment files ------------------------------------------------------ */

/* One line of an environment file, from *p; advances *p past it (and the
 * lines a trailing backslash joins to it). Returns 1 with a variable, 0 for a
 * blank or comment line, -EINVAL with why. */
static int env_line(const char **p, char *name, size_t name_size, char **ret_value, const char **why)
{
        const char *s = *p, *start;
        size_t len = 0, cap = 64, kept = 0; /* kept: bytes quoted or escaped, never trimmed */
        char *value;

        while (*s == ' ' || *s == '\t')
                s++;
        if (*s == '\n' || *s == '\0' || *s == '#' || *s == ';') {
                s += strcspn(s, "\n");
                *p = *s ? s + 1 : s;
                return 0;
        }
        start = s;
        while (*s && *s != '=' && *s != '\n' && *s != ' ' && *s != '\t')
                s++;
        if (!ferry__env_name_ok(start, (size_t)(s - start)) || (size_t)(s - start) >= name_size) {
                *why = (size_t)(s - start) >= 6 && strncmp(start, "FERRY_", 6) == 0
                               ? "FERRY_* variables are ferry's own"
                               : "not NAME=VALUE (a name is letters, digits and '_', not starting with a digit)";
                s += strcspn(s, "\n");
                *p = *s ? s + 1 : s;
                return -EINVAL;
        }
        memcpy(name, start, (size_t)(s - start));
        name[s - start] = '\0';
        while (*s == ' ' || *s == '\t')
                s++;
        if (*s != '=') {
                *why = "not NAME=VALUE (no '=')";
                s += strcspn(s, "\n");
                *p = *s ? s + 1 : s;
                return -EINVAL;
        }
        s++;
        while (*s == ' ' || *s == '\t')
                s++;
        value = malloc(cap);
        if (!value)
                return -ENOMEM;
#define PUT(c)                                                   \
        do {                                                     \
                if (len + 2 > cap) {                             \
                        char *bigger = realloc(value, cap *= 2); \
                        if (!bigger) {                           \
                                free(value);                     \
                                return -ENOMEM;                  \
                        }                                        \
                        value = bigger;                          \
                }                                                \
                value[len++] = (c);                              \
        } while (0)
        for (;;) {
                if (*s == '\'' || *s == '"') {
                        char quote = *s++;

                        while (*s && *s != quote) {
                                /* In double quotes a backslash keeps the next character: \" \\ \$ \` */
                                if (quote == '"' && *s == '\\' && s[1] && strchr("\"\\$`\n", s[1])) {
                                        if (s[1] != '\n')
                                                PUT(s[1]);
                                        s += 2;
                                        continue;
                                }
                                PUT(*s++);
                        }
                        if (*s != quote) {
                                free(value);
                                *why = "a quote is not closed";
                                *p = s;
                                return -EINVAL;
                        }
                        s++;
                        kept = len;
                } else if (*s == '\\' && s[1] == '\n') {
                        s += 2; /* the value goes on on the next line */
                } else if (*s == '\\' && s[1]) {
                        PUT(s[1]);
                        s += 2;
                        kept = len;
                } else if (*s == '\n' || *s == '\0') {
                        break;
                } else {
                        PUT(*s++);
                }
        }
#undef PUT
        /* Unquoted trailing blanks are not part of the value, nor a CR of a file edited on Windows. */
        while (len > kept && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r'))
                len--;
        value[len] = '\0';
        *p = *s ? s + 1 : s;
        *ret_value = value;
        return 1;
}

/* Reads path's variables into e; -errno with why (FILE:LINE: ...) in buf. */
static int env_file(struct env *e, const char *path, char *buf, size_t size)
{
        char name[256], *text = NULL, *value;
        const char *p, *why = NULL;
        size_t len = 0;
        unsigned line = 1;
        FILE *f = fopen(path, "re");
        int r = 0;

        if (!f) {
                r = -errno;
                snprintf(buf, size, "env-file %s: %s", path, strerror(errno));
                return r;
        }
        {
                size_t cap = 0;
                char chunk[4096];
                size_t n;

                while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
                        if (len + n + 1 > cap) {
                                char *bigger;

                                cap = 2 * (len + n + 1);
                                bigger = realloc(text, cap);
                                if (!bigger) {
                                        r = -ENOMEM;
                                        break;
                                }
                                text = bigger;
                        }
                        memcpy(text + len, chunk, n);
                        len += n;
                }
        }
        fclose(f);
        if (r < 0 || !text) {
                free(text);
                return r; /* empty: nothing to set */
        }
        text[len] = '\0';
        if (strlen(text) != len) {
                free(text);
                snprintf(buf, size, "env-file %s: holds a NUL byte: not an environment file", path);
                return -EINVAL;
        }
        for (p = text; *p;) {
                const char *at = p;
                unsigned at_line = line;

                r = env_line(&p, name, sizeof(name), &value, &why);
                for (const char *c = at; c < p; c++)
                        line += *c == '\n';
                if (r < 0) {
                        if (r == -EINVAL)
                                snprintf(buf, size, "env-file %s:%u: %s", path, at_line, why);
                        break;
                }
                if (r > 0) {
                        r = env_put(e, name, strlen(name), value);
                        free(value);
                        if (r < 0)
                                break;
                }
                r = 0;
        }
        free(text);
        return r;
}

int ferry__env_files_check(const struct ferry_rule *rule, char *buf, size_t size)
{
        struct env e = {0};
        int r = 0;

        for (size_t i = 0; i < rule->env_file_count && r == 0; i++)
                r = env_file(&e, rule->env_files[i], buf, size);
        ferry__env_free(e.items);
        return r;
}

int ferry__env_build(const struct ferry_rule *rule, char ***ret_env, size_t *ret_count, char *buf, size_t size)
{
        static const char *const keep[] = {"PATH=", "HOME=", "USER=", "LOGNAME=", "LANG=", "LC_", "TZ=", "TMPDIR="};
        struct env e = {0};
        bool have_path = false;
        int r = 0;

        for (char **v = environ; v && *v && r == 0; v++)
                for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
                        if (strncmp(*v, keep[i], strlen(keep[i])) == 0) {
                                r = env_put_item(&e, *v);
                                have_path |= i == 0;
                                break;
                        }
        if (r == 0 && !have_path)
                r = env_put_item(&e, "PATH=/usr/local/bin:/usr/bin:/bin");
        for (char **v = environ; v && *v && r == 0; v++) {
                const char *eq = strchr(*v, '=');
                char name[256];

                if (!eq || (size_t)(eq - *v) >= sizeof(name) || !ferry__env_name_ok(*v, (size_t)(eq - *v)))
                        continue;
                memcpy(name, *v, (size_t)(eq - *v));
                name[eq - *v] = '\0';
                for (size_t i = 0; i < rule->pass_env_count; i++)
                        if (fnmatch(rule->pass_env[i], name, 0) == 0) {
                                r = env_put_item(&e, *v);
                                break;
                        }
        }
        for (size_t i = 0; i < rule->env_file_count && r == 0; i++)
                r = env_file(&e, rule->env_files[i], buf, size);
        for (size_t i = 0; i < rule->env_count && r == 0; i++)
                r = env_put_item(&e, rule->env[i]);
        if (r == 0 && !e.items)
                r = -ENOMEM;
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(buf, size, "out of memory");
                ferry__env_free(e.items);
                return r;
        }
        *ret_env = e.items;
        *ret_count = e.count;
        return 0;
}

int ferry_rule_env(struct ferry_rule *rule, ferry_env_cb callback, void *userdata)
{
        struct env e = {0};
        int r = 0;

        if (!rule || !callback)
                return -EINVAL;
        rule->explanation[0] = '\0';
        for (size_t i = 0; i < rule->env_file_count && r == 0; i++)
                r = env_file(&e, rule->env_files[i], rule->explanation, sizeof(rule->explanation));
        for (size_t i = 0; i < rule->env_count && r == 0; i++)
                r = env_put_item(&e, rule->env[i]);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(rule->explanation, sizeof(rule->explanation), "out of memory");
                ferry__env_free(e.items);
                return r;
        }
        for (size_t i = 0; i < e.count; i++) {
                char *eq = strchr(e.items[i], '=');

                *eq = '\0';
                callback(userdata, e.items[i], eq + 1, ferry__env_secret(e.items[i], (size_t)(eq - e.items[i])));
                *eq = '=';
        }
        for (size_t i = 0; i < rule->pass_env_count; i++)
                callback(userdata, rule->pass_env[i], NULL, 0);
        ferry__env_free(e.items);
        return 0;
}
