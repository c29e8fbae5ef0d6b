#!/usr/bin/env bats
# auto_quiet.bats: under auto, a file written and never closed (nfs-ganesha's NFSv3 writes keep
# the server's fd open for minutes) is ready once it stayed unchanged for the quiet time, when
# only a file server holds it open; a local program holding it open is still waited for.

load helpers

@test "auto: a file held open by a file server (smbd here) is ready after the quiet time" {
        mkdir "$T/in" "$T/bin"
        # A stand-in server: its process name is smbd; it writes, then keeps the fd open.
        make_handler "$T/bin/smbd" 'exec 3>>"$1"' 'printf "payload\n" >&3' 'sleep 60 3>&-'
        start_ferry "$T/out" watch --ready=auto=1s "$T/in"
        wait_watches "$FERRY_PID" 1 30
        bg "$T/bin/smbd" "$T/in/held.csv"
        server=$BG_PID
        wait_line "$T/out" "ready $T/in/held.csv" 30
        proc_alive "$server" || { echo "the server let go of the file: the test proves nothing" >&2; return 1; }
        stop_ferry "$T/out"
}

@test "auto: a local program holding the file open is waited for, whatever the quiet time" {
        mkdir "$T/in"
        start_ferry "$T/out" watch --ready=auto=500ms "$T/in"
        wait_watches "$FERRY_PID" 1 30
        # Writes once, keeps it open 2.5 s (five quiet times), then writes the rest and closes.
        bg bash -c 'exec 3>"$1"; printf "part\n" >&3; sleep 2.5; printf "rest\n" >&3; exec 3>&-; printf x >"$1.closed"' \
                writer "$T/in/local.csv"
        wait_for file_exists "$T/in/local.csv.closed" 30
        wait_line "$T/out" "ready $T/in/local.csv" 30
        stop_ferry "$T/out"
        # Reported once, after the close: with the whole content.
        [[ $(grep -c "local.csv\$" "$T/out") -eq 1 ]]
}

@test "auto: a file whose writers cannot be asked (another owner's, ferry not root) waits the blind guard, even where other files' leases answer" {
        id nobody >/dev/null 2>&1 || skip "no user nobody on this machine"
        [[ $(id -u) == 0 ]] || skip "needs root, to run ferry as nobody beside root's writer"
        chmod o+x "$T"
        D=$T/in
        mkdir "$D"
        chown nobody "$D"
        as_nobody=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups --)
        "${as_nobody[@]}" "$FERRY" watch --ready --format '%e %s %p\n' "$D" >"$T/out" 2>"$T/out.err" </dev/null 3>&- 9>&- &
        FERRY_PID=$!
        wait_watches "$FERRY_PID" 1 30
        # A file of ferry's own user: its lease answers.
        "${as_nobody[@]}" bash -c 'printf own >"$1"' own "$D/own.txt"
        wait_line "$T/out" "ready 3 $D/own.txt" 30
        # root's file, closed by one writer while another still has it open and writes again
        # 0.4 s later: ferry (nobody) cannot take its lease, so only the guard of at least 1 s
        # sees the second writer.
        bash -c 'exec 3>"$1" 4>>"$1"; printf "part\n" >&3; exec 3>&-; sleep 0.4; printf "rest\n" >&4; exec 4>&-; : >"$2"' \
                writer "$D/foreign.txt" "$T/closed"
        wait_for file_exists "$T/closed" 30
        wait_line "$T/out" "ready 10 $D/foreign.txt" 30
        stop_ferry "$T/out"
        # Once, with the whole content: never the first writer's part alone.
        [[ $(grep -c "foreign.txt\$" "$T/out") -eq 1 ]] || { cat "$T/out" >&2; return 1; }
}
