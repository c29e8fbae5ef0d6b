/* words.c: a command line given as one string (ferry.conf's command, a
 * hook's) split into words as systemd splits ExecStart=: blanks separate
 * words; '...' keeps everything literally; "..." and bare words take
 * backslash escapes (\\ \" \' \n \t \xHH and a backslash-blank); quoted and
 * bare parts next to each other make one word. No variable expansion, no
 * globbing, no redirection: there is no shell, and the words become the
 * program's argv as they are.
 */
#include "run.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int hex_digit(char c)
{
        return isdigit((unsigned char)c)    ? c - '0'
               : isxdigit((unsigned char)c) ? tolower((unsigned char)c) - 'a' + 10
                                            : -1;
}

/* One backslash escape at s (after the backslash); returns bytes consumed or -1. */
static int unescape(const char *s, char *out)
{
        switch (*s) {
        case 'n': *out = '\n'; return 1;
        case 't': *out = '\t'; return 1;
        case '\\':
        case '"':
        case '\'':
        case ' ': *out = *s; return 1;
        case 'x':
                if (hex_digit(s[1]) < 0 || hex_digit(s[2]) < 0 || (s[1] == '0' && s[2] == '0'))
                        return -1;
                *out = (char)(hex_digit(s[1]) * 16 + hex_digit(s[2]));
                return 3;
        default: return -1;
        }
}

int ferry__words_split(const char *text, char ***ret_words, const char **ret_problem)
{
        size_t count = 0, len = strlen(text);
        char **words = calloc(len / 2 + 2, sizeof(char *));
        const char *s = text;

        if (!words)
                return -ENOMEM;
        while (*s) {
                char *word, *w;

                while (isspace((unsigned char)*s))
                        s++;
                if (!*s)
                        break;
                word = w = malloc(len + 1);
                if (!word)
                        goto nomem;
                words[count++] = word;
                while (*s && !isspace((unsigned char)*s)) {
                        if (*s == '\'') {
                                const char *end = strchr(s + 1, '\'');

                                if (!end)
                                        goto bad_quote;
                                memcpy(w, s + 1, (size_t)(end - s - 1));
                                w += end - s - 1;
                                s = end + 1;
                        } else if (*s == '"') {
                                for (s++; *s && *s != '"'; s++) {
                                        if (*s == '\\') {
                                                int n = unescape(s + 1, w);

                                                if (n < 0)
                                                        goto bad_escape;
                                                w++;
                                                s += n;
                                        } else {
                                                *w++ = *s;
                                        }
                                }
                                if (!*s)
                                        goto bad_quote;
                                s++;
                        } else if (*s == '\\') {
                                int n = unescape(s + 1, w);

                                if (n < 0)
                                        goto bad_escape;
                                w++;
                                s += n + 1;
                        } else {
                                *w++ = *s++;
                        }
                }
                *w = '\0';
        }
        words[count] = NULL;
        *ret_words = words;
        return (int)count;
bad_quote:
        *ret_problem = "a quote is not closed";
        ferry__argv_free(words);
        return -EINVAL;
bad_escape:
        *ret_problem = "unknown backslash escape (use \\\\ \\\" \\' \\n \\t \\xHH or a backslash-blank)";
        ferry__argv_free(words);
        return -EINVAL;
nomem:
        ferry__argv_free(words);
        return -ENOMEM;
}
