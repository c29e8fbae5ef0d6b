/* publish.c: a publisher, messages to one NATS subject: into the JetStream
 * stream that takes the subject, acknowledged and de-duplicated by a
 * Nats-Msg-Id unique to each message (HOST.PID.START.N: the same when a
 * message is sent again), or, where no stream takes it, on core NATS.
 * Which of the two is asked of JetStream ($JS.API.STREAM.NAMES filtered by
 * the subject) at the first message, every 10 s after, and after a stream
 * did not acknowledge: a publish to a subject that a plain subscriber
 * listens on but no stream takes would wait for an acknowledgement that
 * never comes. */
#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STREAM_ASK_AGAIN_NS (10 * FERRY__NSEC_PER_SEC) /* how long an answer on streams holds */

struct ferry_publisher {
        struct ferry__nats *nats;
        char *subject;
        char id_prefix[128];
        uint64_t seq;   /* the next message's number */
        bool core;      /* no JetStream stream takes the subject: core NATS */
        int64_t ask_at; /* when to ask that again (ferry__now(); 0: at the next message) */
};

int ferry_publisher_new(struct ferry_publisher **ret, const struct ferry_nats_options *options, const char *subject,
                        char *why, size_t size)
{
        struct ferry_publisher *p;
        struct timespec now;
        char host[64] = "";
        int r;

        *ret = NULL;
        if (!ferry__nats_subject_ok(subject)) {
                snprintf(why, size,
                         "'%s' is no subject to publish to: tokens of printable ASCII separated by dots, without "
                         "spaces or the wildcards * and >",
                         subject ? subject : "");
                return -EINVAL;
        }
        p = calloc(1, sizeof(*p));
        if (!p || !(p->subject = strdup(subject))) {
                free(p);
                snprintf(why, size, "out of memory");
                return -ENOMEM;
        }
        r = ferry__nats_connect(options, &p->nats, why, size);
        if (r < 0) {
                free(p->subject);
                free(p);
                return r;
        }
        (void)gethostname(host, sizeof(host) - 1);
        clock_gettime(CLOCK_REALTIME, &now);
        snprintf(p->id_prefix, sizeof(p->id_prefix), "%s.%d.%lld%09ld", host, (int)getpid(), (long long)now.tv_sec,
                 now.tv_nsec);
        *ret = p;
        return 0;
}

/* Asks JetStream whether a stream takes the subject (p->core when none
 * does, or JetStream is off): -EAGAIN with why when nobody answered. */
static int ask_stream(struct ferry_publisher *p, int64_t wait_ms, char *why, size_t size)
{
        char request[512];
        natsMsg *reply = NULL;
        natsStatus s;

        snprintf(request, sizeof(request), "{\"subject\":\"%s\"}", p->subject);
        s = natsConnection_RequestString(&reply, p->nats->nc, "$JS.API.STREAM.NAMES", request, wait_ms);
        if (s == NATS_NO_RESPONDERS) {
                p->core = true; /* a server without JetStream */
                return 0;
        }
        if (s != NATS_OK) {
                ferry__nats_error(s, why, size);
                return -EAGAIN;
        }
        {
                /* {"type":"...stream_names_response","total":N,...,"streams":[...]} */
                int len = natsMsg_GetDataLength(reply);
                char *text = strndup(natsMsg_GetData(reply), len > 0 ? (size_t)len : 0);
                const char *total = text ? strstr(text, "\"total\":") : NULL;

                p->core = !total || strtol(total + 8, NULL, 10) <= 0;
                free(text);
        }
        natsMsg_Destroy(reply);
        return 0;
}

int ferry_publisher_send(struct ferry_publisher *p, const void *data, size_t len, int64_t wait_ns, char *why,
                         size_t size)
{
        int64_t now = ferry__now(), wait_ms = wait_ns / 1000000 > 0 ? wait_ns / 1000000 : 1;
        natsStatus s;
        int r;

        if (len > INT32_MAX) {
                snprintf(why, size, "a message of %zu bytes is too big for NATS", len);
                return -EMSGSIZE;
        }
        if (now >= p->ask_at) {
                r = ask_stream(p, wait_ms, why, size);
                if (r < 0)
                        return r;
                p->ask_at = now + STREAM_ASK_AGAIN_NS;
        }
        if (!p->core) {
                char id[sizeof(p->id_prefix) + 32];
                jsPubOptions po;
                jsPubAck *ack = NULL;
                jsErrCode jerr = 0;

                snprintf(id, sizeof(id), "%s.%llu", p->id_prefix, (unsigned long long)p->seq);
                jsPubOptions_Init(&po);
                po.MsgId = id;
                po.MaxWait = wait_ms;
                s = js_Publish(&ack, p->nats->js, p->subject, data, (int)len, &po, &jerr);
                jsPubAck_Destroy(ack);
                if (s != NATS_OK) {
                        /* Unreachable, or the stream went: asked again at the next try. */
                        ferry__nats_error(s, why, size);
                        p->ask_at = 0;
                        return -EAGAIN;
                }
        } else if ((s = natsConnection_Publish(p->nats->nc, p->subject, data, (int)len)) != NATS_OK) {
                ferry__nats_error(s, why, size);
                return -EAGAIN;
        }
        p->seq++;
        return 0;
}

int ferry_publisher_stored(const struct ferry_publisher *p)
{
        return !p->core;
}

void ferry_publisher_free(struct ferry_publisher *p)
{
        if (!p)
                return;
        ferry__nats_close(p->nats, 2000);
        free(p->subject);
        free(p);
}
