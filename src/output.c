/* output.c: writing events out: text lines, JSON lines, NUL-terminated paths,
 * or a user's format. Paths are bytes; each mode says how it keeps them
 * intact (see ferry-watch(1), OUTPUT). */
#include "cli.h"

#include <stdint.h>
#include <string.h>

/* Text mode: one event a line, so control bytes, backslash and non-ASCII are escaped. */
void output_escaped(FILE *out, const char *s, size_t n)
{
        size_t plain = 0; /* bytes since the last escaped one, written in one go */

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c >= 0x20 && c < 0x7f && c != '\\')
                        continue;
                fwrite(s + plain, 1, i - plain, out);
                plain = i + 1;
                if (c == '\\')
                        fputs("\\\\", out);
                else if (c == '\n')
                        fputs("\\n", out);
                else if (c == '\t')
                        fputs("\\t", out);
                else
                        fprintf(out, "\\x%02x", c);
        }
        fwrite(s + plain, 1, n - plain, out);
}

/* The path relative to the event's root. */
static const char *relative_path(const struct ferry_event *ev)
{
        size_t root_len = strlen(ev->root);

        while (root_len > 1 && ev->root[root_len - 1] == '/')
                root_len--;
        if (root_len && strncmp(ev->path, ev->root, root_len) == 0) {
                const char *rest = ev->path + root_len;

                if (*rest == '/')
                        return rest + 1;
                if (*rest == '\0')
                        return rest;
                if (root_len == 1 && ev->root[0] == '/')
                        return rest;
        }
        return ev->path;
}

static const char *last_component(const struct ferry_event *ev)
{
        const char *slash = strrchr(ev->path, '/');

        return slash ? slash + 1 : ev->path;
}

static void format_event(FILE *out, const char *format, const struct ferry_event *ev)
{
        for (const char *f = format; *f; f++) {
                if (*f == '\\' && f[1]) {
                        f++;
                        switch (*f) {
                        case 'n': fputc('\n', out); break;
                        case 't': fputc('\t', out); break;
                        case '0': fputc('\0', out); break;
                        default: fputc(*f, out); break;
                        }
                        continue;
                }
                if (*f != '%' || !f[1]) {
                        fputc(*f, out);
                        continue;
                }
                f++;
                switch (*f) {
                case 'e': fputs(ferry_event_type_name(ev->type), out); break;
                case 'p': fwrite(ev->path, 1, ev->path_len, out); break;
                case 'r': fputs(ev->root, out); break;
                case 'n': fputs(last_component(ev), out); break;
                case 'f': fputs(relative_path(ev), out); break;
                case 'o':
                        if (ev->old_path)
                                fwrite(ev->old_path, 1, ev->old_path_len, out);
                        break;
                case 's':
                        if (ev->size >= 0)
                                fprintf(out, "%lld", (long long)ev->size);
                        break;
                case '%': fputc('%', out); break;
                default: fputc('%', out), fputc(*f, out); break;
                }
        }
}

bool output_format_check(const char *format, char *bad, size_t size)
{
        for (const char *f = format; *f; f++) {
                if (*f != '%' && *f != '\\')
                        continue;
                if (!f[1] || !strchr(*f == '%' ? "eprnfos%" : "nt0\\", f[1])) {
                        snprintf(bad, size, "%c%.*s", *f, f[1] ? 1 : 0, f + 1);
                        return false;
                }
                f++;
        }
        return true;
}

/* Whether fmt writes the event name (%e): without it a special event would
 * look like a file's, or an empty line. */
static bool format_names_event(const char *fmt)
{
        for (const char *f = fmt; *f; f++)
                if (*f == '%' && f[1] == '%')
                        f++;
                else if (*f == '%' && f[1] == 'e')
                        return true;
        return false;
}

bool output_writes(const struct output *o, const struct ferry_event *ev)
{
        bool special = ev->type &
                       (FERRY_EVENT_RESCAN | FERRY_EVENT_ROOT_GONE | FERRY_EVENT_ROOT_BACK | FERRY_EVENT_ERROR);

        if (!special)
                return true;
        if (o->mode == OUTPUT_NULL)
                return false;
        return o->mode != OUTPUT_FORMAT || format_names_event(o->format);
}

void output_event(const struct output *o, const struct ferry_event *ev)
{
        FILE *out = o->stream;
        const char *name = ferry_event_type_name(ev->type);

        if (!output_writes(o, ev))
                return;
        switch (o->mode) {
        case OUTPUT_NULL:
                fwrite(ev->path, 1, ev->path_len, out);
                fputc('\0', out);
                return;
        case OUTPUT_FORMAT: format_event(out, o->format, ev); return;
        case OUTPUT_TEXT:
                fputs(name, out);
                if (ev->path_len) {
                        fputc(' ', out);
                        output_escaped(out, ev->path, ev->path_len);
                        if ((ev->flags & FERRY_EVENT_IS_DIR) && ev->path[ev->path_len - 1] != '/')
                                fputc('/', out);
                }
                fputc('\n', out);
                return;
        case OUTPUT_JSON:
                fprintf(out, "{\"event\":\"%s\"", name);
                /* Every object has path and root; a rescan concerns no one path. */
                ferry_json_field(out, "path", ev->path, ev->path_len);
                ferry_json_field(out, "root", ev->root, strlen(ev->root));
                if (ev->flags & FERRY_EVENT_IS_DIR)
                        fputs(",\"dir\":true", out);
                if (ev->flags & FERRY_EVENT_FOUND)
                        fputs(",\"found\":true", out);
                if (ev->old_path)
                        ferry_json_field(out, "from", ev->old_path, ev->old_path_len);
                if (ev->type == FERRY_EVENT_READY && ev->size >= 0)
                        fprintf(out, ",\"size\":%lld", (long long)ev->size);
                if (ev->error) {
                        fputs(",\"error\":", out);
                        ferry_json_string(out, strerror(-ev->error), strlen(strerror(-ev->error)));
                }
                fputs("}\n", out);
                return;
        }
}
