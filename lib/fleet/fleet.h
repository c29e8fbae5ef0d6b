/* fleet.h: lib/fleet's private header: ferry and NATS. */
#ifndef FERRY_FLEET_H
#define FERRY_FLEET_H

#include "common.h"
#include "ferry.h"

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A connection to a NATS server (or cluster), with JetStream's context. It
 * reconnects by itself, for ever, and keeps what is published meanwhile in
 * the client's buffer. */
struct ferry__nats {
        natsConnection *nc;
        jsCtx *js;
        char *url; /* as the user gave it, for messages */
};

/* Connects as o says; on failure, why gets one line naming the URL and what
 * to do (at most size bytes), and the result is -ECONNREFUSED, -EINVAL (a URL
 * or option that cannot be used) or -ENOMEM. */
int ferry__nats_connect(const struct ferry_nats_options *o, struct ferry__nats **ret, char *why, size_t size);
/* Sends what is buffered (waiting up to timeout_ms), closes, frees. */
void ferry__nats_close(struct ferry__nats *n, int64_t timeout_ms);
/* One line for a failed NATS call: the status's text and the client's last error. */
void ferry__nats_error(natsStatus s, char *why, size_t size);
/* Whether subject may be published to: tokens of printable ASCII without
 * spaces and without the wildcards * and >, separated by single dots. */
bool ferry__nats_subject_ok(const char *subject);

#endif
