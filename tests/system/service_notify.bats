#!/usr/bin/env bats
# shellcheck disable=SC2016 # single-quoted handler lines are meant literally
# service_notify.bats: `ferry run` under a systemd-style notify socket ($NOTIFY_SOCKET, the
# datagram protocol of sd_notify(3)): READY=1 once the files present at start-up are known,
# STATUS= lines with counts, STOPPING=1 on SIGTERM, WATCHDOG=1 every half of $WATCHDOG_USEC,
# RELOADING=1 then READY=1 on SIGHUP. The listener is a datagram socket made by the test.

load helpers

# start_listener ADDRESS LOG: binds an AF_UNIX datagram socket at ADDRESS (a path, or @NAME in
# the abstract namespace) and appends each datagram to LOG as one line, its newlines turned
# into tabs. Returns once the socket is bound.
start_listener() {
        bg python3 -c '
import socket, sys
address, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + address[1:] if address.startswith("@") else address)
open(log + ".bound", "w").close()
with open(log, "a") as out:
    while True:
        data = s.recv(65536)
        out.write(data.decode("utf-8", "replace").replace("\n", "\t") + "\n")
        out.flush()
' "$1" "$2"
        wait_for file_exists "$2.bound" 10
}

# line_of LOG PATTERN: the number of the first line of LOG that matches the extended regular
# expression PATTERN (empty when none).
line_of() { grep -anE -m 1 -- "$2" "$1" | cut -d: -f1; }

# count_matching LOG PATTERN: lines of LOG that match PATTERN.
count_matching() { grep -acE -- "$2" "$1" 2>/dev/null || true; }
has_matching() { (($(count_matching "$1" "$2") >= $3)); }

show_notes() {
        echo "--- datagrams:" >&2
        cat -A -- "$1" >&2
        [[ -f $T/ferry.err ]] && { echo "--- ferry stderr:" >&2; tail -20 -- "$T/ferry.err" | cat -v >&2; }
        return 1
}

@test "notify: READY=1 with the 20 files present at start, STATUS= counts, all handled, STOPPING=1 on SIGTERM" {
        D=$T/in
        mkdir "$D"
        make_numbered "$D" job 1 20
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"' 'env >"$1.env"'
        start_listener "$T/notify.sock" "$T/notes"

        NOTIFY_SOCKET=$T/notify.sock start_ferry "$T/ferry" run -j 4 "$D" -- "$T/h.sh" "$T/handled"
        wait_for has_line "$T/notes" $'READY=1\tSTATUS=watching: 20 files present at start; 0 queued, 0 running, 0 done, 0 failed' 30 ||
                show_notes "$T/notes"
        # Nothing said READY before the start-up scan: the only earlier line is the start.
        [[ $(line_of "$T/notes" '^READY=1') -eq 2 && $(line_of "$T/notes" '^STATUS=starting') -eq 1 ]] ||
                show_notes "$T/notes"

        # The files are handled, and a STATUS= line says so (counts are sent at most once a second).
        wait_files "$D/.ferry/done" 20 30
        wait_for has_line "$T/notes" 'STATUS=0 queued, 0 running, 20 done, 0 failed' 10 || show_notes "$T/notes"
        numbered_names job 1 20 >"$T/want"
        assert_same_nul_set "$T/want" "$T/handled"
        # What was meant for ferry is not passed on to its handlers.
        if grep -q '^NOTIFY_SOCKET=' "$T/h.env"; then
                echo "a handler got NOTIFY_SOCKET" >&2
                return 1
        fi

        stop_ferry "$T/ferry"
        last=$(tail -n 1 "$T/notes")
        [[ $last == STOPPING=1$'\t'STATUS=stopping:* ]] || show_notes "$T/notes"
        # Every STATUS= line of counts has all four.
        if grep -aE '^STATUS=[0-9]' "$T/notes" |
                grep -avE '^STATUS=[0-9]+ queued, [0-9]+ running, ([0-9]+ waiting to retry, )?[0-9]+ done, [0-9]+ failed$'; then
                show_notes "$T/notes"
        fi
}

@test "notify: WATCHDOG=1 every WATCHDOG_USEC/2 when WATCHDOG_PID is ferry's; none for another pid" {
        D=$T/in
        mkdir "$D"
        start_listener "$T/notify.sock" "$T/notes"
        # WATCHDOG_PID is the pid of the shell that execs ferry: ferry's own.
        NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=200000 bash -c 'export WATCHDOG_PID=$$; exec "$@"' sh \
                "$FERRY" run "$D" -- true >"$T/ferry" 2>"$T/ferry.err" </dev/null 3>&- 9>&- &
        FERRY_PID=$!
        BG_PIDS+=("$FERRY_PID")
        start=$(now_us)
        wait_for has_matching "$T/notes" '^WATCHDOG=1$' 3 10 || show_notes "$T/notes"
        took=$(elapsed_ms "$start")
        # Ten pings come about 100 ms apart: not in a burst, and without stopping.
        wait_for has_matching "$T/notes" '^WATCHDOG=1$' 10 10 || show_notes "$T/notes"
        took=$(($(elapsed_ms "$start") - took))
        ((took >= 500)) || { echo "7 pings in ${took} ms: faster than every 100 ms" >&2; show_notes "$T/notes"; }
        stop_ferry "$T/ferry"

        # WATCHDOG_PID of another process: the watchdog is not ferry's to feed.
        : >"$T/notes" # the listener appends: the file starts over
        printf 'x\n' >"$D/one"
        NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=100000 WATCHDOG_PID=1 start_ferry "$T/ferry2" run "$D" -- true
        # The count of 1 done comes at least a second after READY=1: ten watchdog periods.
        wait_for has_line "$T/notes" 'STATUS=0 queued, 0 running, 1 done, 0 failed' 10 || show_notes "$T/notes"
        stop_ferry "$T/ferry2"
        [[ $(count_matching "$T/notes" '^WATCHDOG=') -eq 0 ]] || show_notes "$T/notes"
}

@test "notify: SIGHUP with -c gives RELOADING=1 with MONOTONIC_USEC, then READY=1; a rejected file too" {
        D=$T/in
        mkdir "$D"
        make_handler "$T/h.sh" 'printf "%s\0" "$FERRY_NAME" >>"$1"'
        printf '[rule first]\ndir = %s\ncommand = %s %s {}\n' "$D" "$T/h.sh" "$T/handled" >"$T/ferry.conf"
        start_listener "$T/notify.sock" "$T/notes"
        NOTIFY_SOCKET=$T/notify.sock start_ferry "$T/ferry" run -c "$T/ferry.conf"
        wait_for has_matching "$T/notes" '^READY=1' 1 30 || show_notes "$T/notes"

        printf '[rule second]\ndir = %s\ncommand = %s %s {}\n' "$D" "$T/h.sh" "$T/handled" >"$T/ferry.conf"
        kill -HUP "$FERRY_PID"
        wait_for has_matching "$T/notes" '^READY=1' 2 30 || show_notes "$T/notes"
        reloading=$(line_of "$T/notes" '^RELOADING=1')
        second=$(grep -anE '^READY=1' "$T/notes" | sed -n 2p | cut -d: -f1)
        [[ -n $reloading && $reloading -lt $second ]] || show_notes "$T/notes"
        grep -aq $'^READY=1\tSTATUS=reloaded: ' "$T/notes" || show_notes "$T/notes"
        # MONOTONIC_USEC is CLOCK_MONOTONIC in microseconds, taken at the reload.
        usec=$(grep -a '^RELOADING=1' "$T/notes" | tr '\t' '\n' | sed -n 's/^MONOTONIC_USEC=//p')
        now=$(python3 -c 'import time; print(int(time.monotonic() * 1e6))')
        [[ $usec =~ ^[0-9]+$ ]] && ((usec <= now && usec > now - 60000000)) ||
                { echo "MONOTONIC_USEC=$usec, now $now" >&2; show_notes "$T/notes"; }
        # The new rule runs.
        printf 'x\n' >"$D/after-reload"
        wait_for file_exists "$D/.ferry/done/after-reload" 30
        assert_log_has "$T/ferry" "claimed [second] $D/after-reload"

        # A bad file: RELOADING=1, then READY=1 saying the rules in force keep running.
        printf '[rule third]\ndir = %s\njobs = many\ncommand = true\n' "$D" >"$T/ferry.conf"
        kill -HUP "$FERRY_PID"
        wait_for has_matching "$T/notes" '^READY=1' 3 30 || show_notes "$T/notes"
        [[ $(count_matching "$T/notes" '^RELOADING=1') -eq 2 ]] || show_notes "$T/notes"
        tail -n 1 "$T/notes" | grep -aq $'^READY=1\tSTATUS=new config rejected, the rules in force keep running: ' ||
                show_notes "$T/notes"
        stop_ferry "$T/ferry"
}

@test "notify: an abstract socket (@NAME) works; a NOTIFY_SOCKET that is not a socket path is said and ignored" {
        D=$T/in
        mkdir "$D"
        printf 'x\n' >"$D/a"
        name="@ferry-test-$$-$RANDOM"
        start_listener "$name" "$T/notes"
        NOTIFY_SOCKET=$name start_ferry "$T/ferry" run "$D" -- true
        wait_for has_line "$T/notes" $'READY=1\tSTATUS=watching: 1 file present at start; 0 queued, 0 running, 0 done, 0 failed' 30 ||
                show_notes "$T/notes"
        stop_ferry "$T/ferry"
        [[ $(tail -n 1 "$T/notes") == STOPPING=1* ]] || show_notes "$T/notes"

        # Not an AF_UNIX path: one line on stderr, and the files are handled all the same.
        printf 'y\n' >"$D/b"
        NOTIFY_SOCKET=vsock:2:1234 start_ferry "$T/ferry2" run "$D" -- true
        wait_for file_exists "$D/.ferry/done/b" 30
        stop_ferry "$T/ferry2"
        assert_log_has "$T/ferry2" "ferry: NOTIFY_SOCKET=vsock:2:1234 is not an AF_UNIX socket path; systemd will not hear from ferry"
}
