/* nats-ctl.c: the tests' NATS client (libnats), for what ferry publishes.
 *   nats-ctl URL stream NAME SUBJECT  add a JetStream stream NAME (file
 *                                     storage) on SUBJECT
 *   nats-ctl URL sub SUBJECT FILE     append each message on SUBJECT and a
 *                                     newline to FILE; print "subscribed" once
 *                                     the server has the subscription; until
 *                                     SIGTERM
 *   nats-ctl URL dump NAME            every message stored in stream NAME,
 *                                     each and a newline, in order
 * Exit status 0, or 1 with the client's error on stderr. */
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
        (void)sig;
        stop = 1;
}

static int fail(const char *what, natsStatus s)
{
        fprintf(stderr, "nats-ctl: %s: %s\n", what, natsStatus_GetText(s));
        return 1;
}

int main(int argc, char **argv)
{
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        jsErrCode jerr = 0;
        natsStatus s;

        if (argc < 4)
                return 2;
        s = natsConnection_ConnectTo(&nc, argv[1]);
        if (s == NATS_OK)
                s = natsConnection_JetStream(&js, nc, NULL);
        if (s != NATS_OK)
                return fail("connect", s);
        if (strcmp(argv[2], "stream") == 0 && argc == 5) {
                jsStreamConfig cfg;
                jsStreamInfo *si = NULL;
                const char *subjects[] = {argv[4]};

                jsStreamConfig_Init(&cfg);
                cfg.Name = argv[3];
                cfg.Subjects = subjects;
                cfg.SubjectsLen = 1;
                cfg.Storage = js_FileStorage;
                s = js_AddStream(&si, js, &cfg, NULL, &jerr);
                jsStreamInfo_Destroy(si);
                if (s != NATS_OK)
                        return fail("stream", s);
        } else if (strcmp(argv[2], "sub") == 0 && argc == 5) {
                natsSubscription *sub = NULL;
                FILE *out = fopen(argv[4], "a");

                if (!out)
                        return 1;
                signal(SIGTERM, on_term);
                s = natsConnection_SubscribeSync(&sub, nc, argv[3]);
                if (s == NATS_OK)
                        s = natsConnection_Flush(nc);
                if (s != NATS_OK)
                        return fail("sub", s);
                printf("subscribed\n");
                fflush(stdout);
                while (!stop) {
                        natsMsg *msg = NULL;

                        s = natsSubscription_NextMsg(&msg, sub, 200);
                        if (s == NATS_TIMEOUT)
                                continue;
                        if (s != NATS_OK)
                                return fail("next", s);
                        fwrite(natsMsg_GetData(msg), 1, (size_t)natsMsg_GetDataLength(msg), out);
                        fputc('\n', out);
                        fflush(out);
                        natsMsg_Destroy(msg);
                }
                natsSubscription_Destroy(sub);
                fclose(out);
        } else if (strcmp(argv[2], "dump") == 0 && argc == 4) {
                jsStreamInfo *si = NULL;

                s = js_GetStreamInfo(&si, js, argv[3], NULL, &jerr);
                if (s != NATS_OK)
                        return fail("info", s);
                for (uint64_t seq = si->State.FirstSeq; si->State.Msgs && seq <= si->State.LastSeq; seq++) {
                        natsMsg *msg = NULL;

                        if (js_GetMsg(&msg, js, argv[3], seq, NULL, &jerr) != NATS_OK)
                                continue; /* deleted */
                        fwrite(natsMsg_GetData(msg), 1, (size_t)natsMsg_GetDataLength(msg), stdout);
                        fputc('\n', stdout);
                        natsMsg_Destroy(msg);
                }
                jsStreamInfo_Destroy(si);
        } else {
                return 2;
        }
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        return 0;
}
