/* json.c: file names and other bytes as JSON strings, the same way in the
 * event stream, the log and the audit trail: valid UTF-8 as it is (control
 * characters escaped), anything else as U+FFFD, with the exact bytes beside
 * it in base64. */
#include "common.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
        size_t len;
        uint32_t cp;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                len = 2, cp = s[0] & 0x1f;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                len = 3, cp = s[0] & 0x0f;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                len = 4, cp = s[0] & 0x07;
        else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

static bool is_utf8(const char *s, size_t n)
{
        for (size_t i = 0; i < n;) {
                size_t len = utf8_sequence((const unsigned char *)s + i, n - i);

                if (!len)
                        return false;
                i += len;
        }
        return true;
}

/* A JSON string; bytes that are not valid UTF-8 become U+FFFD. Runs that
 * need no escape are written in one go. */
void ferry_json_string(FILE *out, const char *s, size_t n)
{
        size_t plain = 0; /* start of the run not written yet */

        fputc('"', out);
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char)s[i];
                size_t len = utf8_sequence((const unsigned char *)s + i, n - i);

                if (len && c != '"' && c != '\\' && c >= 0x20 && c != 0x7f) {
                        i += len;
                        continue;
                }
                fwrite(s + plain, 1, i - plain, out);
                if (!len)
                        fputs("\xef\xbf\xbd", out);
                else if (c == '"' || c == '\\')
                        fprintf(out, "\\%c", c);
                else if (c == '\n')
                        fputs("\\n", out);
                else if (c == '\t')
                        fputs("\\t", out);
                else
                        fprintf(out, "\\u%04x", c);
                i += len ? len : 1;
                plain = i;
        }
        fwrite(s + plain, 1, n - plain, out);
        fputc('"', out);
}

static void base64(FILE *out, const char *s, size_t n)
{
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *p = (const unsigned char *)s;

        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                             (i + 2 < n ? p[i + 2] : 0);

                fputc(alphabet[v >> 18 & 63], out);
                fputc(alphabet[v >> 12 & 63], out);
                fputc(i + 1 < n ? alphabet[v >> 6 & 63] : '=', out);
                fputc(i + 2 < n ? alphabet[v & 63] : '=', out);
        }
}

/* "key":"value" and, when value is not UTF-8, "key_base64":"exact bytes". */
void ferry_json_field(FILE *out, const char *key, const char *s, size_t n)
{
        fprintf(out, ",\"%s\":", key);
        ferry_json_string(out, s, n);
        if (!is_utf8(s, n)) {
                fprintf(out, ",\"%s_base64\":\"", key);
                base64(out, s, n);
                fputc('"', out);
        }
}

/* ,"key":[words...] and, when a word is not UTF-8, ,"key_base64":[every word's bytes]. */
void ferry_json_words(FILE *out, const char *key, char *const *words)
{
        bool all_utf8 = true;

        fprintf(out, ",\"%s\":[", key);
        for (size_t i = 0; words[i]; i++) {
                size_t n = strlen(words[i]);

                fputs(i ? "," : "", out);
                ferry_json_string(out, words[i], n);
                all_utf8 = all_utf8 && is_utf8(words[i], n);
        }
        fputc(']', out);
        if (all_utf8)
                return;
        fprintf(out, ",\"%s_base64\":[", key);
        for (size_t i = 0; words[i]; i++) {
                fputs(i ? ",\"" : "\"", out);
                base64(out, words[i], strlen(words[i]));
                fputc('"', out);
        }
        fputc(']', out);
}
