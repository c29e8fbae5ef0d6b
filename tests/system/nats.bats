#!/usr/bin/env bats
# nats.bats: `ferry watch --publish SUBJECT --nats URL`: each event's JSON sent to a real
# nats-server (Debian's, started here with JetStream on a file store in the test's folder,
# listening on loopback only): on core NATS to connected subscribers, into a JetStream stream
# when one takes the subject; a server that stops and comes back loses no event and stores
# none twice; and the errors a user can make.

load helpers

setup_file() {
        export NATS_SKIP=
        if ! command -v nats-server >/dev/null; then
                NATS_SKIP="nats-server is not installed (scripts/install-deps test)"
        elif ! pkg-config --exists libnats; then
                NATS_SKIP="libnats-dev is not installed (scripts/install-deps)"
        else
                local flags
                read -r -a flags <<<"$(pkg-config --cflags --libs libnats)"
                export NATS_CTL=$BATS_FILE_TMPDIR/nats-ctl
                cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -o "$NATS_CTL" \
                        "$BATS_TEST_DIRNAME/../tools/nats-ctl.c" "${flags[@]}"
        fi
}

setup() {
        [[ -z $NATS_SKIP ]] || skip "$NATS_SKIP"
        ferry_setup
}

ports_known() { compgen -G "$1/nats-server_*.ports" >/dev/null; }

# start_nats [PORT]: a nats-server with JetStream, its store in $T/js, on 127.0.0.1 (a port
# of its choosing the first time, PORT again after). Sets NATS_URL, NATS_PORT, NATS_PID.
start_nats() {
        mkdir -p "$T/nats"
        rm -f "$T"/nats/nats-server_*.ports
        bg nats-server -js -sd "$T/js" -a 127.0.0.1 -p "${1:--1}" --ports_file_dir "$T/nats" -l "$T/nats/log"
        NATS_PID=$BG_PID
        wait_for ports_known "$T/nats" 30
        NATS_URL=$(python3 -c 'import glob, json, sys; print(json.load(open(glob.glob(sys.argv[1])[0]))["nats"][0])' \
                "$T/nats/nats-server_*.ports")
        NATS_PORT=${NATS_URL##*:}
}

# publish_into_stream: a server, a stream EVENTS on ferry.events with a subscriber writing
# to $T/got, and ferry watch --ready=close=0 publishing $T/in to it, seen to work.
publish_into_stream() {
        start_nats
        "$NATS_CTL" "$NATS_URL" stream EVENTS ferry.events
        subscribe ferry.events "$T/got"
        mkdir "$T/in"
        start_ferry "$T/out" watch --ready=close=0 --publish ferry.events --nats "$NATS_URL" "$T/in"
        probe_until_seen "$T/in" "$T/got"
}

# stream_has NAME TEXT: stream NAME holds a message with TEXT (its messages dumped to $T/stored).
stream_has() { "$NATS_CTL" "$NATS_URL" dump "$1" >"$T/stored" 2>/dev/null && has_text "$T/stored" "$2"; }

# subscribe SUBJECT FILE: every message on SUBJECT appended to FILE, a line each.
subscribe() {
        bg "$NATS_CTL" "$NATS_URL" sub "$1" "$2" >"$2.ready"
        wait_for has_text "$2.ready" subscribed 30
}

@test "nats: --publish on core NATS: a subscriber gets each ready file once, its name's bytes intact" {
        start_nats
        subscribe ferry.ready "$T/got"
        mkdir "$T/in"
        start_ferry "$T/out" watch --ready=close=0 --publish ferry.ready --nats "$NATS_URL" "$T/in"
        probe_until_seen "$T/in" "$T/got"
        python3 - "$T/in" "$T/want" <<'PY'
import os, sys
d, want = sys.argv[1], sys.argv[2]
names = [b"plain-%03d" % i for i in range(200)] + [b"new\nline", b"caf\xc3\xa9", b"bad\xff\xfe", b"sp ace", b"-dash"]
with open(want, "wb") as w:
    for n in names:
        with open(os.path.join(d.encode(), n), "wb") as f:
            f.write(b"x")
        w.write(os.path.join(d.encode(), n) + b"\0")
PY
        end_probe "$T/in" "$T/got"
        grep -av -e ready-probe- -e end-probe- "$T/got" >"$T/events" || true
        json_paths "$T/events" ready "$T/paths"
        assert_same_nul_set "$T/want" "$T/paths"
        (($(count_nul "$T/paths") == 205))
        assert_log_has "$T/out" "publishing to ferry.ready on core NATS"
        [[ ! -s $T/out ]] # published, not printed
        stop_ferry "$T/out"
}

@test "nats: --publish into a JetStream stream; the server stopped and started again mid-stream: every event stored once" {
        publish_into_stream
        for i in $(seq 1 100); do printf x >"$T/in/before-$i"; done
        wait_for has_lines "$T/got" 101 30
        # A clean stop: what the server acknowledged is on its disk (a kill -9 could lose
        # the last writes it had not flushed, which is the server's own matter).
        kill -TERM "$NATS_PID"
        wait_exit "$NATS_PID" 30
        for i in $(seq 1 100); do printf x >"$T/in/while-down-$i"; done
        wait_for has_text "$T/out.err" "does not take events now" 30
        start_nats "$NATS_PORT"
        for i in $(seq 1 100); do printf x >"$T/in/after-$i"; done
        wait_for has_text "$T/out.err" "takes events again" 60
        # The subscriber went with the server: the stream itself tells when all is in.
        make_probe "$T/in" end-probe-last write
        wait_for stream_has EVENTS end-probe-last 60
        grep -av -e ready-probe- -e end-probe- "$T/stored" >"$T/events" || true
        json_paths "$T/events" ready "$T/paths"
        for p in before while-down after; do
                for i in $(seq 1 100); do printf '%s\0' "$T/in/$p-$i"; done
        done >"$T/want"
        assert_same_nul_set "$T/want" "$T/paths"
        (($(count_nul "$T/paths") == 300)) # none stored twice
        assert_log_has "$T/out" "into the JetStream stream that takes it"
        stop_ferry "$T/out"
}

@test "nats: a server too slow to acknowledge: the event sent again keeps its Nats-Msg-Id and is stored once" {
        publish_into_stream
        # Stopped, the server reads nothing: ferry's publish, which waits 2 s for its
        # acknowledgement, and what ferry asks after it wait in the socket; the server takes
        # the publish when it goes on, and then the same event again, sent once it answers.
        kill -STOP "$NATS_PID"
        wait_for proc_stopped "$NATS_PID" 30
        printf x >"$T/in/slow"
        wait_for has_text "$T/out.err" "does not take events now" 30
        kill -CONT "$NATS_PID"
        wait_for has_text "$T/out.err" "takes events again" 60
        make_probe "$T/in" end-probe-last write
        wait_for stream_has EVENTS end-probe-last 60
        (($(grep -ac "\"path\":\"$T/in/slow\"" "$T/stored") == 1))
        stop_ferry "$T/out"
}

@test "nats: a stop while the server is away says which event was not published, exit 1" {
        start_nats
        mkdir "$T/in"
        "$NATS_CTL" "$NATS_URL" stream X ferry.x
        subscribe ferry.x "$T/got"
        start_ferry "$T/out" watch --ready=close=0 --publish ferry.x --nats "$NATS_URL" "$T/in"
        probe_until_seen "$T/in" "$T/got"
        kill -TERM "$NATS_PID"
        wait_exit "$NATS_PID" 30
        printf x >"$T/in/held"
        wait_for has_text "$T/out.err" "does not take events now" 30
        kill -TERM "$FERRY_PID"
        wait_exit "$FERRY_PID" 30
        ((EXIT_RC == 1))
        assert_log_has "$T/out" "$T/in/held: stopped before NATS at $NATS_URL took this ready event: not published"
}

@test "nats: usage errors and an unreachable server get one line naming what to fix" {
        mkdir "$T/in"
        run "$FERRY" watch --publish ev "$T/in"
        ((status == 2))
        [[ $output == *"--publish needs the NATS server: --nats nats://HOST:PORT"* ]]
        run "$FERRY" watch --nats nats://127.0.0.1:4222 "$T/in"
        ((status == 2))
        [[ $output == *"--nats, --nats-creds and --nats-ca go with --publish SUBJECT"* ]]
        run "$FERRY" watch --json --publish ev --nats nats://127.0.0.1:4222 "$T/in"
        ((status == 2))
        [[ $output == *"--publish sends the JSON that --json prints"* ]]
        for bad in 'ev.*' 'ev.>' 'two words' 'ev..x' '.ev'; do
                run "$FERRY" watch --publish "$bad" --nats nats://127.0.0.1:1 "$T/in"
                ((status == 2))
                [[ $output == *"'$bad' is no subject to publish to"* ]]
        done
        run "$FERRY" watch --publish ev --nats http://127.0.0.1:1 "$T/in"
        ((status == 2))
        [[ $output == "ferry: 'http://127.0.0.1:1' is no NATS URL: write nats://HOST:PORT or tls://HOST:PORT" ]]
        run "$FERRY" watch --publish ev --nats nats://127.0.0.1:1 --nats-creds "$T/none.creds" "$T/in"
        ((status == 2))
        [[ $output == "ferry: cannot read the NATS credentials file $T/none.creds: No such file or directory" ]]
        run "$FERRY" watch --publish ev --nats nats://127.0.0.1:1 --nats-ca "$T/none.pem" "$T/in"
        ((status == 2))
        [[ $output == "ferry: cannot read the CA file $T/none.pem: No such file or directory" ]]
        # Port 1 on loopback: nobody listens there.
        run "$FERRY" watch --publish ev --nats nats://127.0.0.1:1 "$T/in"
        ((status == 1))
        [[ $output == "ferry: cannot reach NATS at nats://127.0.0.1:1: "*"(is nats-server running there, and does it want credentials?)" ]]
        [[ $output != *"("*".c:"*"): "* ]] # not the client's source lines
        (($(wc -l <<<"$output") == 1))
}
