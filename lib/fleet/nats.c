/* nats.c: ferry's connection to NATS (the C client, libnats). URLs as NATS
 * users write them (nats://HOST:PORT, tls://HOST:PORT, several separated by
 * commas for a cluster; nats+tls:// is taken for tls://), credentials from a
 * .creds file, TLS checked against a CA file. The connection reconnects by
 * itself, for ever, waiting half a second (with jitter) between tries, and
 * keeps what is published meanwhile in the client's buffer. The client runs
 * threads of its own; ferry calls it from one thread only and sets no
 * callbacks, so that no state of ferry's is shared with them. */
#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 5000
#define RECONNECT_WAIT_MS 500

static int connections; /* open ones: the client's threads end with the last */

void ferry__nats_error(natsStatus s, char *why, size_t size)
{
        natsStatus last = NATS_OK;
        const char *detail = nats_GetLastError(&last);

        if (detail && *detail && last == s) {
                /* The client's own text begins with its source's place: "(conn.c:773): ". */
                const char *end = detail[0] == '(' ? strstr(detail, "): ") : NULL;

                snprintf(why, size, "%s", end ? end + 3 : detail);
        } else {
                snprintf(why, size, "%s", natsStatus_GetText(s));
        }
}

/* Whether url's scheme is one of NATS's (none: nats://). */
static bool scheme_ok(const char *url)
{
        const char *colon = strstr(url, "://");

        return !colon || strncmp(url, "nats://", 7) == 0 || strncmp(url, "tls://", 6) == 0 ||
               strncmp(url, "nats+tls://", 11) == 0;
}

/* A file the client is to read, looked at first: its errors name no file. */
static int readable(const char *what, const char *path, char *why, size_t size)
{
        FILE *f = fopen(path, "re");

        if (!f) {
                snprintf(why, size, "cannot read the %s %s: %s", what, path, strerror(errno));
                return -EINVAL;
        }
        fclose(f);
        return 0;
}

bool ferry__nats_subject_ok(const char *subject)
{
        bool token_empty = true;

        if (!subject || !*subject)
                return false;
        for (const char *p = subject; *p; p++) {
                unsigned char c = (unsigned char)*p;

                if (c == '.') {
                        if (token_empty)
                                return false;
                        token_empty = true;
                        continue;
                }
                if (c <= ' ' || c >= 0x7f || c == '*' || c == '>')
                        return false;
                token_empty = false;
        }
        return !token_empty;
}

/* The URLs of a comma-separated list, nats+tls:// written tls://; *ret_tls
 * when one asks for TLS. */
static int split_urls(const char *list, char ***ret_urls, int *ret_count, bool *ret_tls)
{
        char *copy = strdup(list), *save = NULL, **urls = NULL;
        int count = 0;

        *ret_tls = false;
        if (!copy)
                return -ENOMEM;
        for (char *url = strtok_r(copy, ",", &save); url; url = strtok_r(NULL, ",", &save)) {
                char **bigger = realloc(urls, (size_t)(count + 1) * sizeof(*urls));
                char *one;

                while (*url == ' ')
                        url++;
                if (!bigger)
                        goto nomem;
                if (!scheme_ok(url)) {
                        urls = bigger;
                        free(copy);
                        *ret_urls = urls;
                        *ret_count = count;
                        return -EPROTONOSUPPORT;
                }
                urls = bigger;
                if (strncmp(url, "nats+tls://", 11) == 0) {
                        if (asprintf(&one, "tls://%s", url + 11) < 0)
                                goto nomem;
                } else if (!(one = strdup(url))) {
                        goto nomem;
                }
                if (strncmp(one, "tls://", 6) == 0)
                        *ret_tls = true;
                urls[count++] = one;
        }
        free(copy);
        *ret_urls = urls;
        *ret_count = count;
        return count ? 0 : -EINVAL;
nomem:
        for (int i = 0; i < count; i++)
                free(urls[i]);
        free(urls);
        free(copy);
        return -ENOMEM;
}

static void free_urls(char **urls, int count)
{
        for (int i = 0; i < count; i++)
                free(urls[i]);
        free(urls);
}

int ferry__nats_connect(const struct ferry_nats_options *o, struct ferry__nats **ret, char *why, size_t size)
{
        struct ferry__nats *n = calloc(1, sizeof(*n));
        natsOptions *opts = NULL;
        char **urls = NULL, name[128], host[64] = "";
        int count = 0, r;
        bool tls;
        natsStatus s;

        *ret = NULL;
        if (!n || !(n->url = strdup(o->url))) {
                free(n);
                snprintf(why, size, "out of memory");
                return -ENOMEM;
        }
        r = split_urls(o->url, &urls, &count, &tls);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(why, size, "out of memory");
                else
                        snprintf(why, size, "'%s' is no NATS URL: write nats://HOST:PORT or tls://HOST:PORT", o->url);
                r = r == -ENOMEM ? r : -EINVAL;
                goto fail;
        }
        if ((o->creds && (r = readable("NATS credentials file", o->creds, why, size)) < 0) ||
            (o->ca && (r = readable("CA file", o->ca, why, size)) < 0))
                goto fail;
        (void)gethostname(host, sizeof(host) - 1);
        snprintf(name, sizeof(name), "ferry %s %d", host, (int)getpid());
        s = natsOptions_Create(&opts);
        if (s == NATS_OK)
                s = natsOptions_SetServers(opts, (const char **)urls, count);
        if (s != NATS_OK) {
                ferry__nats_error(s, why, size);
                snprintf(why + strlen(why), size - strlen(why),
                         " (NATS URL '%s': write nats://HOST:PORT or tls://HOST:PORT)", o->url);
                r = -EINVAL;
                goto fail;
        }
        s = natsOptions_SetName(opts, name);
        if (s == NATS_OK)
                s = natsOptions_SetTimeout(opts, CONNECT_TIMEOUT_MS);
        if (s == NATS_OK)
                s = natsOptions_SetMaxReconnect(opts, -1);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectWait(opts, RECONNECT_WAIT_MS);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectJitter(opts, 100, 1000);
        if (s == NATS_OK && tls)
                s = natsOptions_SetSecure(opts, true);
        if (s == NATS_OK && o->ca && (s = natsOptions_LoadCATrustedCertificates(opts, o->ca)) != NATS_OK) {
                ferry__nats_error(s, why, size);
                snprintf(why + strlen(why), size - strlen(why), " (the CA file %s)", o->ca);
                r = -EINVAL;
                goto fail;
        }
        if (s == NATS_OK && o->creds &&
            (s = natsOptions_SetUserCredentialsFromFiles(opts, o->creds, NULL)) != NATS_OK) {
                ferry__nats_error(s, why, size);
                snprintf(why + strlen(why), size - strlen(why), " (the credentials file %s)", o->creds);
                r = -EINVAL;
                goto fail;
        }
        if (s != NATS_OK) {
                ferry__nats_error(s, why, size);
                r = -EINVAL;
                goto fail;
        }
        s = natsConnection_Connect(&n->nc, opts);
        if (s == NATS_OK)
                s = natsConnection_JetStream(&n->js, n->nc, NULL);
        if (s != NATS_OK) {
                char detail[256];

                ferry__nats_error(s, detail, sizeof(detail));
                snprintf(why, size, "cannot reach NATS at %s: %s (is nats-server running there, and %s?)", o->url,
                         detail, o->creds ? "do the credentials fit" : "does it want credentials");
                r = -ECONNREFUSED;
                goto fail;
        }
        natsOptions_Destroy(opts);
        free_urls(urls, count);
        connections++;
        *ret = n;
        return 0;
fail:
        natsOptions_Destroy(opts);
        free_urls(urls, count);
        if (n->js)
                jsCtx_Destroy(n->js);
        natsConnection_Destroy(n->nc);
        free(n->url);
        free(n);
        if (!connections)
                (void)nats_CloseAndWait(2000);
        return r;
}

void ferry__nats_close(struct ferry__nats *n, int64_t timeout_ms)
{
        if (!n)
                return;
        if (timeout_ms > 0)
                (void)natsConnection_FlushTimeout(n->nc, timeout_ms);
        jsCtx_Destroy(n->js);
        natsConnection_Close(n->nc);
        natsConnection_Destroy(n->nc);
        free(n->url);
        free(n);
        if (--connections == 0)
                (void)nats_CloseAndWait(2000);
}
